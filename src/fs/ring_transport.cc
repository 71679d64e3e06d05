#include "ring_transport.h"

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <liburing.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "fuse_ops.h"
#include "log.h"

namespace blobfs {

// The kernel's ring interface (include/uapi/linux/fuse.h of Linux 6.14),
// which Debian 12's headers predate.
namespace abi {
constexpr uint64_t kOverIoUring = uint64_t{1} << 41;  // an INIT flag, in flags2 as bit 9
constexpr uint32_t kInitExt = uint32_t{1} << 30;      // FUSE_INIT_EXT: flags2 is read
constexpr uint32_t kCmdRegister = 1, kCmdCommitAndFetch = 2;
struct EntInOut {
  uint64_t flags;
  uint64_t commit_id;
  uint32_t payload_sz;
  uint32_t padding;
  uint64_t reserved;
};
struct ReqHeader {
  char in_out[128];  // fuse_in_header in, fuse_out_header out
  char op_in[128];   // the opcode's own header
  EntInOut ent;
};
struct CmdReq {  // in the 80-byte command area of a 128-byte SQE
  uint64_t flags;
  uint64_t commit_id;
  uint16_t qid;
  uint8_t padding[6];
};
}  // namespace abi

struct RingTransport::Entry {
  abi::ReqHeader* header = nullptr;  // page-aligned, registered with the kernel
  char* payload = nullptr;
  iovec iov[2]{};
  uint32_t last_cmd = abi::kCmdRegister;
  uint64_t commit_id = 0;
  uint64_t unique = 0;
  bool replied = false;
};

struct RingTransport::Queue {
  unsigned qid = 0;
  io_uring ring{};
  bool ring_ok = false;
  int stop_fd = -1;
  std::vector<Entry> entries;
  std::vector<char> request;  // a request laid out as /dev/fuse delivers it
  std::thread thread;
};

namespace {

thread_local RingTransport::Entry* t_entry = nullptr;  // the ring entry this thread is answering

// A user_data that is no entry: the stop eventfd's poll.
constexpr uint64_t kStopTag = 1;

}  // namespace

char* ring_reply_buffer(size_t size) {
  return t_entry && size <= t_entry->iov[1].iov_len ? t_entry->payload : nullptr;
}

namespace {

void* map_buffer(size_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void prep_cmd(io_uring_sqe* sqe, RingTransport::Entry& e, unsigned qid) {
  std::memset(sqe, 0, sizeof *sqe);  // the command area past it is ours below
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->flags = IOSQE_FIXED_FILE;
  sqe->fd = 0;  // the registered /dev/fuse descriptor
  sqe->cmd_op = e.last_cmd;
  io_uring_sqe_set_data(sqe, &e);
  if (e.last_cmd == abi::kCmdRegister) {
    sqe->addr = reinterpret_cast<uint64_t>(e.iov);
    sqe->len = 2;
  }
  abi::CmdReq req{};
  req.qid = static_cast<uint16_t>(qid);
  req.commit_id = e.last_cmd == abi::kCmdCommitAndFetch ? e.commit_id : 0;
  std::memcpy(sqe->cmd, &req, sizeof req);
}

}  // namespace

RingTransport::RingTransport(fuse_session* se, size_t queues, size_t depth, size_t payload)
    : se_(se), depth_(depth), payload_(payload) {
  for (size_t q = 0; q < queues; ++q) {
    auto queue = std::make_unique<Queue>();
    queue->qid = static_cast<unsigned>(q);
    queues_.push_back(std::move(queue));
  }
}

RingTransport::~RingTransport() {
  stop();
  const size_t header = (sizeof(abi::ReqHeader) + 4095) / 4096 * 4096;
  for (auto& q : queues_) {
    if (q->ring_ok) io_uring_queue_exit(&q->ring);
    if (q->stop_fd >= 0) ::close(q->stop_fd);
    for (auto& e : q->entries) {
      if (e.header) ::munmap(e.header, header);
      if (e.payload) ::munmap(e.payload, payload_);
    }
  }
}

void RingTransport::install() {
  fuse_custom_io io{};
  io.read = hook_read;
  io.writev = hook_writev;
  // The session keeps its descriptor; the hooks only look at what passes.
  if (fuse_session_custom_io(se_, &io, fuse_session_fd(se_)) != 0)
    throw std::runtime_error("transport: cannot install the io_uring hooks on the FUSE session");
}

ssize_t RingTransport::hook_read(int fd, void* buf, size_t len, void* userdata) {
  return static_cast<MountState*>(userdata)->ring->on_read(fd, buf, len);
}

ssize_t RingTransport::hook_writev(int fd, iovec* iov, int count, void* userdata) {
  return static_cast<MountState*>(userdata)->ring->on_writev(fd, iov, count);
}

// INIT comes first on /dev/fuse: note whether the kernel offers the ring.
ssize_t RingTransport::on_read(int fd, void* buf, size_t len) {
  const ssize_t n = ::read(fd, buf, len);
  if (init_unique_.load(std::memory_order_relaxed) == 0 &&
      n >= static_cast<ssize_t>(sizeof(fuse_in_header) + sizeof(fuse_init_in))) {
    const auto* in = static_cast<const fuse_in_header*>(buf);
    if (in->opcode == FUSE_INIT) {
      fuse_init_in init;
      std::memcpy(&init, static_cast<const char*>(buf) + sizeof(fuse_in_header), sizeof init);
      offered_ = (init.flags & abi::kInitExt) && (init.flags2 & (abi::kOverIoUring >> 32));
      init_unique_ = in->unique;
    }
  }
  return n;
}

ssize_t RingTransport::on_writev(int fd, iovec* iov, int count) {
  size_t total = 0;
  for (int k = 0; k < count; ++k) total += iov[k].iov_len;
  if (count < 1 || iov[0].iov_len < sizeof(fuse_out_header)) return ::writev(fd, iov, count);
  const auto* out = static_cast<const fuse_out_header*>(iov[0].iov_base);
  if (Entry* e = t_entry; e && out->unique == e->unique) {
    // The reply to the request this ring thread holds: into its entry.
    std::memcpy(e->header->in_out, out, sizeof(fuse_out_header));
    size_t used = 0;
    for (int k = 1; k < count; ++k) {
      if (used + iov[k].iov_len > e->iov[1].iov_len) {
        auto* o = reinterpret_cast<fuse_out_header*>(e->header->in_out);
        o->error = -EIO;
        used = 0;
        log_once(LogLevel::kError, "ring reply too large", "io_uring: a reply larger than the ring buffer; EIO");
        break;
      }
      // A reply built in the entry's buffer (ring_reply_buffer) is there already.
      if (iov[k].iov_base != e->payload + used) std::memmove(e->payload + used, iov[k].iov_base, iov[k].iov_len);
      used += iov[k].iov_len;
    }
    e->header->ent.payload_sz = static_cast<uint32_t>(used);
    e->replied = true;
    return static_cast<ssize_t>(total);
  }
  const uint64_t init = init_unique_.load();
  const bool is_init = init != 0 && out->unique == init && !init_replied_.exchange(true);
  if (is_init && offered_ && count >= 2 && iov[1].iov_len >= offsetof(fuse_init_out, flags2) + sizeof(uint32_t) &&
      out->error == 0) {
    // libfuse 3.14 does not know the flag: the ring is agreed to here.
    auto* reply = static_cast<fuse_init_out*>(iov[1].iov_base);
    reply->flags |= abi::kInitExt;
    reply->flags2 |= static_cast<uint32_t>(abi::kOverIoUring >> 32);
    agreed_ = true;
  }
  const ssize_t n = ::writev(fd, iov, count);
  if (is_init) {
    std::lock_guard<std::mutex> lock(mu_);
    init_done_ = true;
    init_cv_.notify_all();
  }
  return n;
}

bool RingTransport::wait_for_init() {
  std::unique_lock<std::mutex> lock(mu_);
  init_cv_.wait(lock, [&] { return init_done_ || stopping_; });
  return !stopping_ && agreed_;
}

void RingTransport::start() {
  for (auto& q : queues_) {
    q->stop_fd = ::eventfd(0, EFD_CLOEXEC);
    if (q->stop_fd < 0) throw std::runtime_error(std::string("transport: eventfd: ") + std::strerror(errno));
    Queue* queue = q.get();
    q->thread = std::thread([this, queue] { run(*queue); });
  }
}

void RingTransport::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    init_cv_.notify_all();
  }
  for (auto& q : queues_) {
    const uint64_t one = 1;
    if (q->stop_fd >= 0 && ::write(q->stop_fd, &one, sizeof one) < 0) {
    }
    if (q->thread.joinable()) q->thread.join();
  }
}

void RingTransport::handle(Queue& q, Entry& e) {
  const auto* in = reinterpret_cast<const fuse_in_header*>(e.header->in_out);
  const uint32_t payload = e.header->ent.payload_sz;
  e.commit_id = e.header->ent.commit_id;
  e.unique = in->unique;
  e.replied = false;
  const std::optional<size_t> op = ring_op_header_size(in->len, payload);
  if (op && payload <= payload_) {
    const size_t len = sizeof(fuse_in_header) + *op + payload;
    if (q.request.size() < len) q.request.resize(len);
    std::memcpy(q.request.data(), in, sizeof(fuse_in_header));
    std::memcpy(q.request.data() + sizeof(fuse_in_header), e.header->op_in, *op);
    std::memcpy(q.request.data() + sizeof(fuse_in_header) + *op, e.payload, payload);
    fuse_buf buf{};
    buf.mem = q.request.data();
    buf.size = len;
    t_entry = &e;
    fuse_session_process_buf(se_, &buf);
    t_entry = nullptr;
    requests_.fetch_add(1, std::memory_order_relaxed);
  } else {
    log_once(LogLevel::kError, "ring request malformed",
             "io_uring: a request whose lengths do not add up (len " + std::to_string(in->len) + ", payload " +
                 std::to_string(payload) + "); EIO");
  }
  if (!e.replied) {  // never leave the kernel waiting
    fuse_out_header out{};
    out.len = sizeof out;
    out.error = -EIO;
    out.unique = e.unique;
    std::memcpy(e.header->in_out, &out, sizeof out);
    e.header->ent.payload_sz = 0;
  }
  e.last_cmd = abi::kCmdCommitAndFetch;
}

void RingTransport::run(Queue& q) {
  // Signals are the main thread's business (signals.h), except the faults
  // a read can raise: a block file cut under its mapping must reach the
  // fault guard as a SIGBUS on this thread (and cost EIO, not the daemon).
  sigset_t blocked;
  sigfillset(&blocked);
  for (int sig : {SIGBUS, SIGSEGV, SIGILL, SIGFPE}) sigdelset(&blocked, sig);
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
  if (q.qid < CPU_SETSIZE) {
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    CPU_SET(q.qid, &cpus);
    ::sched_setaffinity(0, sizeof cpus, &cpus);  // a CPU that is offline: left unpinned
  }
  if (!wait_for_init()) {
    // The switch was on when blobfs started, but this mount's INIT did not
    // offer the ring (turned off since, or refused): say where requests go.
    if (q.qid == 0 && init_replied_ && !agreed_)
      log(LogLevel::kWarning, "transport: /dev/fuse after all: the kernel did not offer io_uring in INIT");
    return;
  }
  io_uring_params params{};
  params.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE;
  params.cq_entries = static_cast<unsigned>(2 * (depth_ + 1));
  if (int rc = io_uring_queue_init_params(static_cast<unsigned>(depth_ + 1), &q.ring, &params); rc < 0) {
    log(LogLevel::kError, "io_uring queue " + std::to_string(q.qid) + ": " + std::strerror(-rc) +
                              "; its requests stay on /dev/fuse");
    return;
  }
  q.ring_ok = true;
  int fuse_fd = fuse_session_fd(se_);
  if (io_uring_register_files(&q.ring, &fuse_fd, 1) < 0) {
    log(LogLevel::kError, "io_uring queue " + std::to_string(q.qid) + ": cannot register /dev/fuse");
    return;
  }
  const size_t header = (sizeof(abi::ReqHeader) + 4095) / 4096 * 4096;
  q.entries.resize(depth_);
  for (auto& e : q.entries) {
    e.header = static_cast<abi::ReqHeader*>(map_buffer(header));
    e.payload = static_cast<char*>(map_buffer(payload_));
    if (!e.header || !e.payload) {
      log(LogLevel::kError, "io_uring queue " + std::to_string(q.qid) + ": out of memory for its buffers");
      return;
    }
    e.iov[0] = {e.header, sizeof(abi::ReqHeader)};
    e.iov[1] = {e.payload, payload_};
    prep_cmd(io_uring_get_sqe(&q.ring), e, q.qid);
  }
  io_uring_sqe* stop = io_uring_get_sqe(&q.ring);
  io_uring_prep_poll_add(stop, q.stop_fd, POLLIN);
  io_uring_sqe_set_data64(stop, kStopTag);
  for (;;) {
    // One system call per turn: the commits of the last turn (each also
    // fetches the entry's next request) go in, and it waits for one.
    const int rc = io_uring_submit_and_wait(&q.ring, 1);
    if (rc == -EINTR) continue;
    if (rc < 0) break;
    io_uring_cqe* cqe = nullptr;
    unsigned head, seen = 0;
    bool done = false;
    io_uring_for_each_cqe(&q.ring, head, cqe) {
      ++seen;
      if (io_uring_cqe_get_data64(cqe) == kStopTag) {
        done = true;
        continue;
      }
      auto* e = static_cast<Entry*>(io_uring_cqe_get_data(cqe));
      if (cqe->res == -EAGAIN || cqe->res == -EINTR) {  // registered before the kernel was ready: again
        prep_cmd(io_uring_get_sqe(&q.ring), *e, q.qid);
        continue;
      }
      if (cqe->res < 0) {
        // ENOTCONN and ECANCELED: unmounted, or the ring is going away.
        if (cqe->res != -ENOTCONN && cqe->res != -ECANCELED)
          log_once(LogLevel::kError, "ring cqe " + std::to_string(cqe->res),
                   std::string("io_uring queue: ") + std::strerror(-cqe->res));
        done = true;
        continue;
      }
      handle(q, *e);
      prep_cmd(io_uring_get_sqe(&q.ring), *e, q.qid);
    }
    io_uring_cq_advance(&q.ring, seen);
    if (done) break;
  }
}

}  // namespace blobfs
