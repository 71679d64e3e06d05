// RAII owners for the POSIX resources the store holds (descriptors, mappings)
// and the few file operations whose exact sequence matters for crash safety.
// Every function throws tensorblob::Error naming the path on failure.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

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

// Owns one read-only shared mapping of the first `size` bytes of a file.
class Mapping {
 public:
  Mapping(int fd, size_t size, const std::string& path);
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();

  const std::byte* data() const { return static_cast<const std::byte*>(addr_); }
  size_t size() const { return size_; }

 private:
  void* addr_ = nullptr;
  size_t size_ = 0;
};

// openat with O_CLOEXEC|O_NOFOLLOW; `path` is only for messages.
ScopedFd open_at(int dir_fd, const std::string& name, int flags, const std::string& path, mode_t mode = 0644);

// The whole content of `name` under dir_fd (a small file: .conf, .stat).
std::string read_small_file(int dir_fd, const std::string& name, const std::string& path);

// Replaces `name` under dir_fd with `content` so that a crash leaves either the
// old or the new bytes: write a temp file, fsync it, rename over, fsync the dir.
void replace_file_atomically(int dir_fd, const std::string& name, std::string_view content,
                             const std::string& dir_path);

// pwrite of all `size` bytes, retrying on EINTR and short writes.
void pwrite_all(int fd, const void* data, size_t size, off_t offset, const std::string& path);

// Gives a new, empty file `size` bytes of zeros with its disk space reserved
// (fallocate), so a full disk is reported now, naming the file, instead of
// when the kernel writes the pages back; first writes into reserved space are
// also cheaper (ext4 need not account each page as it is dirtied). Where the
// filesystem cannot reserve space, the file is only sized (ftruncate).
void size_block(int fd, off_t size, const std::string& path);

// mkdir -p.
void make_directories(const std::string& path);

}  // namespace tensorblob

namespace tensorblob {

// Copies the first `size` bytes of src_fd into dst_fd (both at offset 0),
// in the kernel where it can (copy_file_range), else through a buffer.
void copy_file_prefix(int src_fd, int dst_fd, size_t size, const std::string& src_path,
                      const std::string& dst_path);

}  // namespace tensorblob

namespace tensorblob {

// Writes a new file under a temporary name beside `path` and publishes it with
// commit(): fsync, rename over `path`, fsync of the directory. Destroyed
// without commit() (an error on the way), it removes the temporary file, so
// `path` is never seen half-written.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path, mode_t mode = 0644);
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();

  void write(const void* data, size_t size);
  void commit();
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_; }

 private:
  std::string path_, temp_;
  ScopedFd fd_;
  off_t offset_ = 0;
  bool committed_ = false;
};

}  // namespace tensorblob
