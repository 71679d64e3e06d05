#include "tensorblob/fault_guard.h"

#include <setjmp.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <cstring>
#include <mutex>

namespace tensorblob {

namespace {

std::atomic<bool> g_installed{false};
thread_local sigjmp_buf* t_jump = nullptr;
struct sigaction g_previous {};  // the handler installed before ours

void on_sigbus(int sig, siginfo_t* info, void* context) {
  // A SIGBUS sent with kill() is not a fault in a copy: pass it on.
  sigjmp_buf* jump = info && info->si_code > 0 ? t_jump : nullptr;
  if (jump) {
    t_jump = nullptr;
    siglongjmp(*jump, 1);
  }
  // Not inside a guarded copy: whoever handled SIGBUS before us (a daemon's
  // last-resort handler) decides, else die as the default action would.
  if ((g_previous.sa_flags & SA_SIGINFO) && g_previous.sa_sigaction) return g_previous.sa_sigaction(sig, info, context);
  if (!(g_previous.sa_flags & SA_SIGINFO) && g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN &&
      g_previous.sa_handler)
    return g_previous.sa_handler(sig);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

void install_fault_guard() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    // SA_NODEFER: SIGBUS stays unblocked after the long jump, so sigsetjmp
    // need not save the signal mask (which would be a syscall per copy).
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, &g_previous);
    g_installed = true;
  });
}

bool fault_guard_installed() { return g_installed.load(std::memory_order_relaxed); }

bool run_fault_guarded(void (*fn)(void*), void* ctx) {
  if (!g_installed.load(std::memory_order_relaxed)) {
    fn(ctx);
    return true;
  }
  sigjmp_buf jump;
  if (sigsetjmp(jump, 0) != 0) return false;  // arrived here from on_sigbus
  t_jump = &jump;
  fn(ctx);
  t_jump = nullptr;
  return true;
}

bool guarded_copy(void* dst, const void* src, size_t n) {
  struct Args {
    void* dst;
    const void* src;
    size_t n;
  } a{dst, src, n};
  return run_fault_guarded([](void* p) {
    auto* x = static_cast<Args*>(p);
    std::memcpy(x->dst, x->src, x->n);
  }, &a);
}

}  // namespace tensorblob
