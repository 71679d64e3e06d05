// Surviving files that shrink under a mapping. Reading a mapped page past
// the end of a file that was truncated after it was mapped raises SIGBUS,
// which would kill the process. With the guard installed, the store's copies
// out of mappings catch that fault and throw Error(kIo) naming the file
// instead, so a daemon keeps serving everything else.
//
// Process-wide: install_fault_guard() takes over SIGBUS; a fault outside a
// guarded copy goes to the handler installed before it (a daemon installs
// its last-resort handler first), or kills the process as usual.
// Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tensorblob {

// Installs the SIGBUS handler; idempotent.
void install_fault_guard();
// Whether it is installed.
bool fault_guard_installed();

// Runs fn(ctx). Returns false if it faulted with SIGBUS while the guard is
// installed (fn was cut short), true otherwise. Without the guard a fault
// kills the process as usual.
bool run_fault_guarded(void (*fn)(void*), void* ctx);

// memcpy that reports a SIGBUS in the source as false.
bool guarded_copy(void* dst, const void* src, size_t n);

}  // namespace tensorblob
