#include "shared_work.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>

namespace tensorblob {

namespace {

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// One loop being shared: the steps not yet taken are [front, back), packed
// into one word so both ends are claimed with one compare-and-swap.
struct Loop {
  const std::function<void(size_t, int)>* step = nullptr;
  std::atomic<uint64_t> span{0};  // front << 32 | back
  uint64_t claim_size = 8;        // steps taken per claim
  std::atomic<bool> released{false};  // the helper took it and is done with it
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

// The helper and its hand-over. A loop is posted into one slot; the helper
// takes it with a compare-and-swap, and a caller that finishes first takes
// it back the same way, so exactly one of them owns the hand-over. The helper
// that took a loop sets its `released` flag once it no longer touches it.
//
// After a loop the helper waits kLinger for the next one before it sleeps:
// gathers often come back to back (a data loader filling its queue), and a
// sleeping helper needs a wake-up (tens of microseconds on a VM whose idle
// vCPUs halt) that a 100 us gather cannot afford. At most kLinger of one
// core's time per shared loop, which itself takes longer than that.
//
// Leaked on purpose: the helper blocks on these until the process ends, so
// they must outlive static destructors.
struct Helper {
  static constexpr auto kLinger = std::chrono::microseconds(100);
  std::atomic<Loop*> posted{nullptr};
  std::atomic<bool> sleeping{false};
  std::mutex mu;                  // guards the sleep, with `wake` and `done`
  std::condition_variable wake;   // a loop was posted while the helper slept
  std::condition_variable done;   // a loop was released
  bool started = false;           // guarded by mu

  Loop* take() {
    Loop* loop = posted.load(std::memory_order_relaxed);
    if (loop != nullptr && posted.compare_exchange_strong(loop, nullptr, std::memory_order_acquire))
      return loop;
    return nullptr;
  }

  Loop* next_loop() {
    const auto until = std::chrono::steady_clock::now() + kLinger;
    do {
      for (int i = 0; i < 64; ++i) {
        if (Loop* loop = take()) return loop;
        cpu_relax();
      }
    } while (std::chrono::steady_clock::now() < until);
    std::unique_lock<std::mutex> l(mu);
    for (;;) {
      // Dekker-style with post(): either the poster sees `sleeping` and
      // notifies under the mutex, or this thread sees its loop here.
      sleeping.store(true);
      if (posted.load() != nullptr) {
        sleeping.store(false);
        if (Loop* loop = take()) return loop;
        continue;
      }
      wake.wait(l);
      sleeping.store(false);
      if (Loop* loop = take()) return loop;
    }
  }

  void serve() {
    for (;;) {
      Loop* loop = next_loop();
      loop->run(-1);
      {
        std::lock_guard<std::mutex> g(mu);  // so a caller between its check and its wait hears this
        loop->released.store(true, std::memory_order_release);
      }
      done.notify_all();
    }
  }

  // Offers `loop` to the helper; false if another caller's loop is waiting.
  bool post(Loop* loop) {
    Loop* empty = nullptr;
    if (!posted.compare_exchange_strong(empty, loop)) return false;
    if (sleeping.load()) {
      std::lock_guard<std::mutex> g(mu);
      wake.notify_one();
    }
    return true;
  }

  // Returns once the helper no longer touches `loop`: at once if it never
  // took it.
  void retract(Loop* loop) {
    Loop* mine = loop;
    if (posted.compare_exchange_strong(mine, nullptr)) return;
    // The helper is on its last step at most: wait for that without sleeping,
    // since a sleeping thread wakes slowly, which is what this avoids.
    for (int spins = 0; spins < 100000; ++spins) {
      if (loop->released.load(std::memory_order_acquire)) return;
      cpu_relax();
    }
    std::unique_lock<std::mutex> l(mu);
    done.wait(l, [&] { return loop->released.load(std::memory_order_acquire); });
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
  bool have_helper;
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
    have_helper = h.started;
  }
  const bool posted = have_helper && h.post(&loop);
  loop.run(+1);
  if (posted) h.retract(&loop);  // the loop lives on this stack
  if (loop.error) std::rethrow_exception(loop.error);
}

}  // namespace tensorblob
