#include "signals.h"

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstring>
#include <vector>

namespace blobfs {

namespace {

fuse_session* g_session = nullptr;
char g_mountpoint[PATH_MAX + 1];
char g_fusermount[PATH_MAX + 1];  // found at install: no PATH search in a handler
std::atomic<int> g_ending{0};

const int kEnding[] = {SIGHUP,  SIGINT, SIGTERM, SIGQUIT,   SIGALRM, SIGVTALRM,
                       SIGPROF, SIGIO,  SIGPWR,  SIGSTKFLT, SIGXCPU};
const int kFaults[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS};
const int kIgnored[] = {SIGUSR1, SIGUSR2, SIGPIPE, SIGXFSZ};

void end_session(int sig) {
  int expected = 0;
  g_ending.compare_exchange_strong(expected, sig);
  // Sets a flag the session loop checks; the main thread's wait is
  // interrupted by this very signal (no SA_RESTART), so the loop sees it.
  if (g_session) fuse_session_exit(g_session);
}

void on_ending(int sig) { end_session(sig); }

// Only async-signal-safe calls from here on.
void on_fault(int sig, siginfo_t* info, void*) {
  // Sent by another process with kill(): a request to stop. abort() and
  // assertion failures raise SIGABRT from this process: a crash.
  if (info && info->si_code <= 0 && info->si_pid != ::getpid()) {
    end_session(sig);
    return;
  }
  // A real fault: the process cannot go on, but its mount need not outlive
  // it. A lazy unmount works for root; otherwise fusermount3 does it.
  if (g_mountpoint[0] && ::umount2(g_mountpoint, MNT_DETACH) != 0 && g_fusermount[0]) {
    pid_t pid = ::_Fork();  // unlike fork(), runs no atfork handlers: safe here
    if (pid == 0) {
      char* const argv[] = {const_cast<char*>("fusermount3"), const_cast<char*>("-uz"), g_mountpoint, nullptr};
      char* const envp[] = {nullptr};
      ::execve(g_fusermount, argv, envp);
      ::_exit(127);
    }
    if (pid > 0) ::waitpid(pid, nullptr, 0);
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

bool inherited_ignored(int sig) {
  struct sigaction old {};
  return ::sigaction(sig, nullptr, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_IGN;
}

void set_handler(int sig, void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: the session loop's wait must be interrupted
  ::sigaction(sig, &sa, nullptr);
}

std::vector<int> ending_signals() {
  std::vector<int> out(std::begin(kEnding), std::end(kEnding));
  for (int s = SIGRTMIN; s <= SIGRTMAX; ++s) out.push_back(s);
  return out;
}

}  // namespace

void install_signal_handlers(fuse_session* session, const std::string& mountpoint) {
  g_session = session;
  std::strncpy(g_mountpoint, mountpoint.c_str(), PATH_MAX);
  g_mountpoint[PATH_MAX] = '\0';
  g_fusermount[0] = '\0';
  for (const char* dir : {"/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin", "/sbin"}) {
    const std::string candidate = std::string(dir) + "/fusermount3";
    if (::access(candidate.c_str(), X_OK) == 0) {
      std::strncpy(g_fusermount, candidate.c_str(), PATH_MAX);
      break;
    }
  }
  for (int sig : ending_signals()) {
    // Shells start background jobs with SIGINT and SIGQUIT ignored, yet
    // they must still unmount; only nohup's ignored SIGHUP is meant.
    if (sig == SIGHUP && inherited_ignored(sig)) continue;
    set_handler(sig, on_ending);
  }
  for (int sig : kIgnored) set_handler(sig, SIG_IGN);
  for (int sig : kFaults) {
    struct sigaction sa {};
    sa.sa_sigaction = on_fault;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    ::sigaction(sig, &sa, nullptr);
  }
}

void remove_signal_handlers() {
  g_session = nullptr;
  for (int sig : ending_signals()) set_handler(sig, SIG_DFL);
}

int ending_signal() { return g_ending.load(); }

}  // namespace blobfs
