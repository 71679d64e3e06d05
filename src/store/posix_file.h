// RAII owner of a file descriptor and the few raw POSIX helpers the POSIX
// storage (posix_storage.cc) is built from. Private to the store: everything
// above the storage seam goes through storage.h. Every function throws
// tensorblob::Error naming the path, with its errno, on failure.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

namespace tensorblob {

// Owns one file descriptor; closes it on destruction.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(ScopedFd&& o) noexcept : fd_(o.release()) {}
  ScopedFd& operator=(ScopedFd&& o) noexcept;
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd();

  int get() const { return fd_; }
  int release();
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// openat with O_CLOEXEC|O_NOFOLLOW, retried on EINTR; `path` is only for messages.
ScopedFd open_at(int dir_fd, const std::string& name, int flags, const std::string& path, mode_t mode = 0644);

// pwrite of all `size` bytes, retrying on EINTR and short writes.
void pwrite_all(int fd, const void* data, size_t size, off_t offset, const std::string& path);

// Copies the first `size` bytes of src_fd into dst_fd (both at offset 0),
// in the kernel where it can (copy_file_range, a reflink on filesystems
// that share extents), else through a buffer.
void copy_file_prefix(int src_fd, int dst_fd, size_t size, const std::string& src_path, const std::string& dst_path);

// mkdir -p.
void make_directories(const std::string& path);

}  // namespace tensorblob
