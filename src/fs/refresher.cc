#include "refresher.h"

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "filesystem.h"
#include "log.h"
#include "store_inodes.h"
#include "tensorblob/error.h"

namespace blobfs {

// Tells the kernel; a file or name it does not hold is not an error.
void Refresher::apply(const Invalidation& store_plan) {
  const Invalidation plan = inodes_.to_kernel(store_plan);
  for (const auto& i : plan.inodes) fuse_lowlevel_notify_inval_inode(session_, i.ino, i.offset, i.length);
  for (const auto& e : plan.entries)
    fuse_lowlevel_notify_inval_entry(session_, e.parent, e.name.c_str(), e.name.size());
}

Refresher::Refresher(Filesystem& fs, fuse_session* session, const StoreInodes& inodes)
    : fs_(fs), session_(session), inodes_(inodes) {
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  pending_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  fs_.on_pending([fd = pending_fd_] {
    const uint64_t one = 1;
    if (::write(fd, &one, sizeof one) < 0) {
    }
  });
  thread_ = std::thread([this] { run(); });
}

Refresher::~Refresher() {
  const uint64_t one = 1;
  if (stop_fd_ >= 0 && ::write(stop_fd_, &one, sizeof one) < 0) {
  }
  if (thread_.joinable()) thread_.join();
  fs_.on_pending(nullptr);
  for (int fd : {stop_fd_, pending_fd_})
    if (fd >= 0) ::close(fd);
}

void Refresher::apply_pending() {
  for (const Filesystem::Refresh& r : fs_.take_pending()) {
    apply(r.plan);
    ++commits_;
    log(LogLevel::kDebug, "followed a commit: " + std::to_string(r.before) + " -> " + std::to_string(r.after) +
                              " items, " + std::to_string(r.plan.inodes.size()) + " files and " +
                              std::to_string(r.plan.entries.size()) + " names invalidated");
  }
  // Lookups answered from a view a commit had just replaced.
  if (auto late = fs_.nodes().take_late(); !late.empty()) apply(fs_.plan_late(late));
}

void Refresher::refresh_once() {
  try {
    const auto t0 = std::chrono::steady_clock::now();
    if (fs_.refresh_and_queue()) {
      apply_pending();
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      log(LogLevel::kDebug, "refresh took " + std::to_string(ms) + " ms");
    }
  } catch (const tensorblob::Error& e) {
    // A damaged commit (a .stat cut by a crash, a writer mid-publish): the
    // mount keeps serving the last good one and says so once.
    log_once(LogLevel::kWarning, std::string("refresh: ") + e.what(),
             std::string("serving the last good commit: ") + e.what());
  } catch (const std::exception& e) {
    log_once(LogLevel::kError, e.what(), std::string("refresh failed: ") + e.what());
  }
}

void Refresher::run() {
  // Signals are the main thread's business (signals.h).
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::unique_ptr<tensorblob::ChangeWatch> watch;
  if (fs_.options().inotify) watch = fs_.store().storage().watch();
  log(LogLevel::kDebug, std::string("following the source: ") + (watch ? "inotify and " : "") + "a poll every " +
                            std::to_string(fs_.options().refresh_interval) + " s");
  const std::vector<std::string> names = fs_.store().commit_names();
  const int interval_ms = std::max(1, static_cast<int>(std::lround(fs_.options().refresh_interval * 1000)));
  auto next_poll = std::chrono::steady_clock::now() + std::chrono::milliseconds(interval_ms);
  for (;;) {
    pollfd fds[3] = {{stop_fd_, POLLIN, 0}, {pending_fd_, POLLIN, 0}, {watch ? watch->fd() : -1, POLLIN, 0}};
    const int wait_ms = static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(next_poll - std::chrono::steady_clock::now()).count()));
    const int n = ::poll(fds, 3, wait_ms);
    if (n > 0 && (fds[0].revents & POLLIN)) return;
    if (n > 0 && (fds[1].revents & POLLIN)) {  // a request handler found a commit
      uint64_t count;
      if (::read(pending_fd_, &count, sizeof count) < 0) {
      }
      apply_pending();
    }
    bool due = std::chrono::steady_clock::now() >= next_poll;
    if (n > 0 && (fds[2].revents & POLLIN)) {
      for (const auto& name : watch->drain())
        // An empty name: the directory itself, or events were lost.
        if (name.empty() || std::find(names.begin(), names.end(), name) != names.end()) due = true;
    }
    if (!due) continue;
    refresh_once();
    next_poll = std::chrono::steady_clock::now() + std::chrono::milliseconds(interval_ms);
  }
}

}  // namespace blobfs
