#include "posix_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "tensorblob/error.h"

namespace tensorblob {

ScopedFd& ScopedFd::operator=(ScopedFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

ScopedFd::~ScopedFd() {
  if (fd_ >= 0) ::close(fd_);
}

int ScopedFd::release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

ScopedFd open_at(int dir_fd, const std::string& name, int flags, const std::string& path, mode_t mode) {
  int fd;
  do {
    fd = ::openat(dir_fd, name.c_str(), flags | O_CLOEXEC | O_NOFOLLOW, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw_errno("open", path);
  return ScopedFd(fd);
}

void pwrite_all(int fd, const void* data, size_t size, off_t offset, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd, p, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("write", path);
    p += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
}

void make_directories(const std::string& path) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string part = path.substr(0, pos);
    if (::mkdir(part.c_str(), 0777) != 0 && errno != EEXIST) throw_errno("mkdir", part);
  }
}

}  // namespace tensorblob

namespace tensorblob {

void copy_file_prefix(int src_fd, int dst_fd, size_t size, const std::string& src_path,
                      const std::string& dst_path) {
  off_t in_off = 0, out_off = 0;
  while (static_cast<size_t>(in_off) < size) {
    ssize_t n = ::copy_file_range(src_fd, &in_off, dst_fd, &out_off, size - static_cast<size_t>(in_off), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) continue;
    if (n == 0) throw Error(Errc::kFormat, src_path + ": file ended before " + std::to_string(size) + " bytes");
    if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
      throw_errno("copy", src_path + " -> " + dst_path);
    break;  // this filesystem pair cannot copy in the kernel; finish through a buffer
  }
  char buf[1 << 16];
  while (static_cast<size_t>(in_off) < size) {
    size_t want = std::min(sizeof buf, size - static_cast<size_t>(in_off));
    ssize_t n = ::pread(src_fd, buf, want, in_off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("read", src_path);
    if (n == 0) throw Error(Errc::kFormat, src_path + ": file ended before " + std::to_string(size) + " bytes");
    pwrite_all(dst_fd, buf, static_cast<size_t>(n), out_off, dst_path);
    in_off += n;
    out_off += n;
  }
}

}  // namespace tensorblob

