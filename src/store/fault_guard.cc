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

void on_sigbus(int sig, siginfo_t*, void*) {
  if (sigjmp_buf* jump = t_jump) {
    t_jump = nullptr;
    siglongjmp(*jump, 1);
  }
  // Not inside a guarded copy: die as the default action would.
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
    ::sigaction(SIGBUS, &sa, nullptr);
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

bool mapped_file_reaches(int dir_fd, const char* name, uint64_t end) {
  if (!fault_guard_installed()) return true;
  struct stat st;
  return ::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && static_cast<uint64_t>(st.st_size) >= end;
}

bool copy_from_mapped_file(void* dst, const void* src, size_t n, int dir_fd, const char* name, uint64_t end) {
  return guarded_copy(dst, src, n) && mapped_file_reaches(dir_fd, name, end);
}

}  // namespace tensorblob
