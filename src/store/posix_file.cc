#include "posix_file.h"

#include <fcntl.h>
#include <sys/mman.h>
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

Mapping::Mapping(int fd, size_t size, const std::string& path) : size_(size) {
  if (size == 0) return;
  addr_ = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (addr_ == MAP_FAILED) {
    addr_ = nullptr;
    throw_errno("mmap", path);
  }
}

Mapping::~Mapping() {
  if (addr_) ::munmap(addr_, size_);
}

ScopedFd open_at(int dir_fd, const std::string& name, int flags, const std::string& path, mode_t mode) {
  int fd;
  do {
    fd = ::openat(dir_fd, name.c_str(), flags | O_CLOEXEC | O_NOFOLLOW, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw_errno("open", path);
  return ScopedFd(fd);
}

std::string read_small_file(int dir_fd, const std::string& name, const std::string& path) {
  ScopedFd fd = open_at(dir_fd, name, O_RDONLY, path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) throw_errno("stat", path);
  if (!S_ISREG(st.st_mode)) throw Error(Errc::kFormat, path + ": not a regular file");
  // .conf and .stat are a few hundred bytes per thousand blocks; refuse absurd
  // sizes rather than allocate what a damaged file claims.
  constexpr off_t kLimit = off_t{1} << 30;
  if (st.st_size > kLimit) throw Error(Errc::kFormat, path + ": file is larger than 1 GiB");
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("read", path);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (static_cast<off_t>(out.size()) > kLimit) throw Error(Errc::kFormat, path + ": file is larger than 1 GiB");
  }
  return out;
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

void size_block(int fd, off_t size, const std::string& path) {
  if (size == 0) return;
  int r;
  do {
    r = ::fallocate(fd, 0, 0, size);
  } while (r != 0 && errno == EINTR);
  if (r == 0) return;
  if (errno != EOPNOTSUPP && errno != ENOSYS) throw_errno("fallocate", path);
  if (::ftruncate(fd, size) != 0) throw_errno("ftruncate", path);
}

void replace_file_atomically(int dir_fd, const std::string& name, std::string_view content,
                             const std::string& dir_path) {
  // A fixed temp name is safe: only the lock holder writes, and readers never
  // look at it. A crash leaves at most this file behind, which is ignored.
  const std::string tmp = name + ".tmp";
  const std::string tmp_path = dir_path + "/" + tmp;
  {
    ScopedFd fd = open_at(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC, tmp_path, 0666);
    pwrite_all(fd.get(), content.data(), content.size(), 0, tmp_path);
    if (::fsync(fd.get()) != 0) throw_errno("fsync", tmp_path);
  }
  if (::renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) throw_errno("rename", dir_path + "/" + name);
  if (::fsync(dir_fd) != 0) throw_errno("fsync", dir_path);
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

namespace tensorblob {

AtomicFileWriter::AtomicFileWriter(std::string path, mode_t mode)
    : path_(std::move(path)), temp_(path_ + ".tmp." + std::to_string(::getpid())) {
  int fd = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) throw_errno("create", temp_);
  fd_ = ScopedFd(fd);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFileWriter::write(const void* data, size_t size) {
  pwrite_all(fd_.get(), data, size, offset_, temp_);
  offset_ += static_cast<off_t>(size);
}

void AtomicFileWriter::commit() {
  if (::fsync(fd_.get()) != 0) throw_errno("fsync", temp_);
  fd_ = ScopedFd();
  if (::rename(temp_.c_str(), path_.c_str()) != 0) throw_errno("rename", path_);
  committed_ = true;
  std::string dir = path_.find('/') == std::string::npos ? "." : path_.substr(0, path_.rfind('/'));
  if (dir.empty()) dir = "/";
  ScopedFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d || ::fsync(d.get()) != 0) throw_errno("fsync", dir);
}

}  // namespace tensorblob
