// FUSE over io_uring (Linux 6.14+) on top of libfuse 3.14, which predates
// it. INIT, FORGET, INTERRUPT and notifications stay on /dev/fuse; once the
// kernel agreed to the ring in INIT, one queue per possible CPU is
// registered (FUSE_IO_URING_CMD_REGISTER, 128-byte SQEs) and served by a
// thread pinned to that CPU: the kernel puts a request in the ring of the
// CPU its caller runs on, the thread answers it with COMMIT_AND_FETCH,
// which also takes the next. No read or write system call per request and
// no wake-up of another CPU.
//
// Requests are answered by the same code whatever carries them: a ring
// request is laid out as /dev/fuse would deliver it and handed to libfuse's
// dispatcher (fuse_session_process_buf), and the reply that dispatcher
// writes is caught on the way out (fuse_session_custom_io) and put into the
// ring entry instead. blobfs's handlers reply before they return, so the
// reply is written on the thread that holds the entry.
//
// Thread safety: the hooks run on every libfuse worker and ring thread;
// start() and stop() are called from the main thread only.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "transport.h"

struct fuse_session;

namespace blobfs {

// Where a handler on a ring thread may build a reply of `size` bytes so
// that sending it copies nothing (the entry's own payload buffer); null on
// any other thread, or when the reply would not fit.
char* ring_reply_buffer(size_t size);

class RingTransport {
 public:
  // Prepares the hooks for `se` (not yet mounted or not yet looping).
  // `queues`: possible CPUs; `depth`: entries per queue; `payload`: bytes
  // of each entry's payload buffer (at least the largest request or reply).
  RingTransport(fuse_session* se, size_t queues, size_t depth, size_t payload);
  ~RingTransport();  // stop()
  RingTransport(const RingTransport&) = delete;
  RingTransport& operator=(const RingTransport&) = delete;

  // Installs the read and writev hooks on the session's /dev/fuse
  // descriptor. Call once, after mounting and before the session loop.
  void install();
  // Starts the queue threads; they register once INIT has been answered
  // and the kernel offered the ring. Returns at once.
  void start();
  // Stops and joins the queue threads (the session loop has ended).
  void stop();

  // Whether INIT agreed to the ring, and how many requests it carried.
  bool agreed() const { return agreed_.load(); }
  uint64_t requests() const { return requests_.load(); }

  // The hooks (userdata is the session's, from which the transport is found).
  static ssize_t hook_read(int fd, void* buf, size_t len, void* userdata);
  static ssize_t hook_writev(int fd, iovec* iov, int count, void* userdata);
  ssize_t on_read(int fd, void* buf, size_t len);
  ssize_t on_writev(int fd, iovec* iov, int count);

  struct Entry;
  struct Queue;

 private:
  void run(Queue& q);
  bool wait_for_init();
  void handle(Queue& q, Entry& e);

  fuse_session* se_;
  size_t depth_, payload_;
  std::vector<std::unique_ptr<Queue>> queues_;
  std::atomic<uint64_t> init_unique_{0};
  std::atomic<bool> offered_{false};
  std::atomic<bool> agreed_{false};
  std::atomic<bool> init_replied_{false};
  std::atomic<uint64_t> requests_{0};
  std::mutex mu_;
  std::condition_variable init_cv_;
  bool init_done_ = false;
  bool stopping_ = false;
};

}  // namespace blobfs
