#include "shared_work.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>

namespace tensorblob {

namespace {

// One loop being shared: the steps not yet taken are [front, back), packed
// into one word so both ends are claimed with one compare-and-swap.
struct Loop {
  const std::function<void(size_t, int)>* step = nullptr;
  std::atomic<uint64_t> span{0};  // front << 32 | back
  uint64_t claim_size = 8;        // steps taken per claim
  std::exception_ptr error;       // first failure; guarded by error_mu
  std::mutex error_mu;

  static uint64_t pack(uint64_t front, uint64_t back) { return front << 32 | back; }

  // Claims up to claim_size steps from the front (dir +1) or the back (dir -1):
  // [first, last) in the order they should run.
  bool claim(int dir, size_t& first, size_t& last) {
    uint64_t s = span.load(std::memory_order_relaxed);
    for (;;) {
      uint64_t front = s >> 32, back = s & 0xffffffffu;
      if (front >= back) return false;
      uint64_t take = std::min(claim_size, back - front);
      uint64_t next = dir > 0 ? pack(front + take, back) : pack(front, back - take);
      if (span.compare_exchange_weak(s, next, std::memory_order_relaxed)) {
        first = dir > 0 ? front : back - take;
        last = first + take;
        return true;
      }
    }
  }

  void stop() { span.store(0, std::memory_order_relaxed); }

  void run(int dir) {
    size_t first, last;
    try {
      while (claim(dir, first, last)) {
        if (dir > 0)
          for (size_t k = first; k < last; ++k) (*step)(k, dir);
        else
          for (size_t k = last; k-- > first;) (*step)(k, dir);
      }
    } catch (...) {
      stop();
      std::lock_guard<std::mutex> g(error_mu);
      if (!error) error = std::current_exception();
    }
  }
};

// The helper and its hand-over. Leaked on purpose: the helper blocks on
// these until the process ends, so they must outlive static destructors.
struct Helper {
  std::mutex mu;
  std::condition_variable wake;  // a loop was posted
  std::condition_variable done;  // the helper let go of its loop
  Loop* posted = nullptr;
  std::atomic<bool> busy{false}; // the helper holds a loop (changed under mu)
  bool started = false;

  void serve() {
    for (;;) {
      Loop* loop;
      {
        std::unique_lock<std::mutex> l(mu);
        wake.wait(l, [&] { return posted != nullptr; });
        loop = posted;
        posted = nullptr;
        busy.store(true, std::memory_order_relaxed);
      }
      loop->run(-1);
      {
        std::lock_guard<std::mutex> g(mu);
        busy.store(false, std::memory_order_release);
      }
      done.notify_all();
    }
  }
};

// The child of a fork has none of its parent's threads, and a condition
// variable that a vanished thread waited on cannot be trusted: the child gets
// a fresh Helper. The parent's is locked across fork() so the child never
// copies it half-changed.
Helper* g_helper = nullptr;

Helper& helper() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_helper = new Helper;
    pthread_atfork([] { g_helper->mu.lock(); }, [] { g_helper->mu.unlock(); }, [] { g_helper = new Helper; });
  });
  return *g_helper;
}

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Whether this thread may run on more than one CPU: its affinity, not the
// machine's CPU count, since a process pinned to one CPU (taskset, a cgroup
// cpuset) would only make the two threads take turns on it. Asked on every
// shared loop, as the affinity can change; one syscall against a loop of
// 512 KB or more.
bool may_use_another_cpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return false;
  return CPU_COUNT(&set) > 1;
}

}  // namespace

void run_shared(size_t n, bool share, const std::function<void(size_t, int)>& step, size_t claim) {
  if (!share || n < 2 || n > 0xffffffffu || !may_use_another_cpu()) {
    for (size_t k = 0; k < n; ++k) step(k, +1);
    return;
  }
  Loop loop;
  loop.step = &step;
  loop.claim_size = std::max<size_t>(1, claim);
  loop.span.store(Loop::pack(0, n), std::memory_order_relaxed);
  Helper& h = helper();
  bool posted = false;
  {
    std::lock_guard<std::mutex> g(h.mu);
    if (!h.started) {
      try {
        std::thread([&h] { h.serve(); }).detach();
        h.started = true;
      } catch (const std::system_error&) {
        // No thread to be had: run alone.
      }
    }
    if (h.started && !h.busy.load(std::memory_order_relaxed) && h.posted == nullptr) {
      h.posted = &loop;
      posted = true;
    }
  }
  if (posted) h.wake.notify_one();
  loop.run(+1);
  if (posted) {
    // The loop lives on this stack: the helper must be done with it first.
    // It is on its last step at most, so wait for that without sleeping:
    // a sleeping thread wakes slowly, which is what this whole thing avoids.
    for (int spins = 0; spins < 100000 && h.busy.load(std::memory_order_acquire); ++spins) cpu_relax();
    std::unique_lock<std::mutex> l(h.mu);
    if (h.posted == &loop) {
      h.posted = nullptr;  // it never woke up for this one
    } else {
      h.done.wait(l, [&] { return !h.busy.load(std::memory_order_relaxed); });
    }
  }
  if (loop.error) std::rethrow_exception(loop.error);
}

}  // namespace tensorblob
