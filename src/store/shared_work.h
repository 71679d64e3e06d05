// Splits one loop of independent, memory-bound steps between the calling
// thread and one process-wide helper thread. Large random gathers are bound
// by how many cache misses one core keeps in flight, and writes into fresh
// page-cache pages by one core's kernel copy and page accounting; a second
// core nearly doubles either. The caller takes steps from the front and the
// helper from the back as soon as it is awake, so a helper that wakes late
// (tens of microseconds on a VM whose idle vCPUs halt) costs nothing but its
// share. While the helper is busy with another caller's loop, one more loop
// may wait for it; a caller whose loop is still waiting when it is done takes
// it back. After a loop the helper waits 100 us for the next before it sleeps.
//
// The helper is started on first use and again in a forked child (forking
// keeps only the forking thread). Steps run on either thread, so `step` must
// be safe to call concurrently for different k; a step that throws stops
// the loop, and the first exception is rethrown to the caller once the
// helper has let go of the loop.
#pragma once

#include <cstddef>
#include <functional>

namespace tensorblob {

// Runs step(k, dir) once for every k in [0, n) and returns when all have
// run. dir is +1 on the thread walking forward, -1 on the one walking back:
// the direction a step should prefetch in. Uses the helper only when `share`
// is set and the calling thread may run on another CPU. Each thread takes
// `claim` steps at a time: small steps want several, so the two threads do
// not bounce the shared claim word between their caches on every step; steps
// of milliseconds want one, so neither is left with the other's last share.
void run_shared(size_t n, bool share, const std::function<void(size_t k, int dir)>& step, size_t claim = 8);

}  // namespace tensorblob
