// The thread of a live mount that follows the store: it wakes when the
// source's directory reports a change (inotify, where the filesystem has
// it) and at least every refresh_interval (a poll, for filesystems without
// it), reloads the store, and tells the kernel what to forget. Never from a
// request handler: the kernel may wait, while invalidating, on a lock that
// a request in flight holds.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "invalidation.h"

struct fuse_session;

namespace blobfs {

class Filesystem;
class StoreInodes;

class Refresher {
 public:
  // Starts the thread. `session` is where notifications go, in the
  // kernel's numbers as `inodes` gives them.
  Refresher(Filesystem& fs, fuse_session* session, const StoreInodes& inodes);
  ~Refresher();  // stops and joins the thread
  Refresher(const Refresher&) = delete;
  Refresher& operator=(const Refresher&) = delete;

  // Refreshes done that found a commit (for tests and metrics).
  uint64_t commits_seen() const { return commits_.load(); }

 private:
  void run();
  void refresh_once();
  void apply_pending();

  void apply(const Invalidation& plan);

  Filesystem& fs_;
  fuse_session* session_;
  const StoreInodes& inodes_;
  int stop_fd_ = -1;     // eventfds: written to stop the thread,
  int pending_fd_ = -1;  // and when a request handler queued a plan
  std::atomic<uint64_t> commits_{0};
  std::thread thread_;
};

}  // namespace blobfs
