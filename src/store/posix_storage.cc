// Storage on the local filesystem: one directory descriptor, every file
// opened relative to it with O_NOFOLLOW, nothing opened in a way that can
// block (a FIFO or device where a store file should be is refused before it
// is opened), and reads out of mappings guarded against files that shrink.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <climits>
#include <cstring>

#include "filenames.h"
#include "posix_file.h"
#include "tensorblob/error.h"
#include "tensorblob/fault_guard.h"
#include "tensorblob/storage.h"

namespace tensorblob {

namespace {

FileKind kind_of(mode_t mode) {
  if (S_ISREG(mode)) return FileKind::kRegular;
  if (S_ISDIR(mode)) return FileKind::kDirectory;
  if (S_ISLNK(mode)) return FileKind::kSymlink;
  if (S_ISFIFO(mode)) return FileKind::kFifo;
  if (S_ISCHR(mode)) return FileKind::kCharDevice;
  if (S_ISBLK(mode)) return FileKind::kBlockDevice;
  if (S_ISSOCK(mode)) return FileKind::kSocket;
  return FileKind::kOther;
}

FileInfo info_of(const struct stat& st) {
  FileInfo f;
  f.size = static_cast<uint64_t>(st.st_size);
  f.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  f.inode = static_cast<uint64_t>(st.st_ino);
  f.kind = kind_of(st.st_mode);
  return f;
}

[[noreturn]] void not_regular(const std::string& path, mode_t mode) {
  throw Error(Errc::kFormat, path + ": not a regular file (" + describe(kind_of(mode)) + ")");
}

// Opens `name` under dir_fd (AT_FDCWD: a path) for reading, refusing anything
// but a regular file. fstatat first, so a FIFO or a device is never opened
// (opening some devices has effects); O_NONBLOCK as well, for a file
// swapped for a FIFO in between; then fstat of what was opened.
// A store's own files are never followed through a symbolic link
// (`follow` false); a path a user names (an input, a config) is, as cp does.
ScopedFd open_regular(int dir_fd, const std::string& name, const std::string& path, struct stat* st,
                      bool follow = false) {
  if (::fstatat(dir_fd, name.c_str(), st, follow ? 0 : AT_SYMLINK_NOFOLLOW) != 0) throw_errno("open", path);
  if (!S_ISREG(st->st_mode)) not_regular(path, st->st_mode);
  int fd;
  do {
    fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | (follow ? 0 : O_NOFOLLOW));
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == ELOOP) throw Error(Errc::kFormat, path + ": is a symbolic link", ELOOP);
    throw_errno("open", path);
  }
  ScopedFd owned(fd);
  if (::fstat(fd, st) != 0) throw_errno("stat", path);
  if (!S_ISREG(st->st_mode)) not_regular(path, st->st_mode);
  return owned;
}

// Whether mapping `size` more bytes leaves the process room under its
// address-space limit (ulimit -v) for everything else it allocates: a third
// of the limit, at least 64 MiB. A daemon whose readers held mappings up to
// the limit would fail its own next allocation (libfuse's buffers) instead.
bool address_space_allows(uint64_t size) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return true;
  const uint64_t limit = rl.rlim_cur, headroom = std::max<uint64_t>(uint64_t{64} << 20, limit / 3);
  uint64_t pages = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%lu", &pages) != 1) pages = 0;
    std::fclose(f);
  }
  const uint64_t used = pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return used + size + headroom <= limit;
}

// The mapping of a whole file, shared by the file and every view into it.
struct MappedRegion {
  void* addr = nullptr;
  size_t size = 0;
  ~MappedRegion() {
    if (addr) ::munmap(addr, size);
  }
};

class PosixReadableFile final : public ReadableFile {
 public:
  PosixReadableFile(ScopedFd fd, std::string path, uint64_t size, Access access)
      : fd_(std::move(fd)), path_(std::move(path)), size_(size) {
    if (access == Access::kMapped && size_ > 0 && address_space_allows(size_)) {
      void* addr = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd_.get(), 0);
      // Out of address space (ulimit -v): read with pread instead; slower,
      // never an error.
      if (addr != MAP_FAILED) {
        region_ = std::make_shared<MappedRegion>();
        region_->addr = addr;
        region_->size = size_;
      } else if (errno != ENOMEM) {
        throw_errno("mmap", path_);
      }
    }
  }

  const std::string& path() const override { return path_; }
  uint64_t size() const override { return size_; }

  void read(uint64_t offset, size_t n, void* dst) const override {
    if (n == 0) return;
    if (region_ && offset <= size_ && n <= size_ - offset) {
      // A file cut after it was mapped faults (caught by the guard) where
      // whole pages vanished, and reads as zeros in the page the cut falls
      // in, which only the file's size can tell apart from data.
      if (!guarded_copy(dst, static_cast<const std::byte*>(region_->addr) + offset, n) ||
          (fault_guard_installed() && !reaches(offset + n)))
        shrank();
      return;
    }
    auto* p = static_cast<char*>(dst);
    for (size_t got = 0; got < n;) {
      ssize_t k = ::pread(fd_.get(), p + got, n - got, static_cast<off_t>(offset + got));
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) throw_errno("read", path_);
      if (k == 0) shrank();
      got += static_cast<size_t>(k);
    }
  }

  ByteView view(uint64_t offset, size_t n) const override {
    if (region_ && offset <= size_ && n <= size_ - offset) {
      const std::byte* p = static_cast<const std::byte*>(region_->addr) + offset;
      return ByteView{std::shared_ptr<const void>(region_, p), p, n};
    }
    auto buf = std::shared_ptr<std::byte[]>(new std::byte[n ? n : 1]);
    read(offset, n, buf.get());
    return ByteView{std::shared_ptr<const void>(buf, buf.get()), buf.get(), n};
  }

  const std::byte* mapped() const override {
    return region_ ? static_cast<const std::byte*>(region_->addr) : nullptr;
  }

  bool reaches(uint64_t end) const override {
    struct stat st;
    return ::fstat(fd_.get(), &st) == 0 && static_cast<uint64_t>(st.st_size) >= end;
  }

  FileInfo info() const override {
    struct stat st;
    if (::fstat(fd_.get(), &st) != 0) throw_errno("stat", path_);
    return info_of(st);
  }

  int fd() const { return fd_.get(); }

 private:
  [[noreturn]] void shrank() const {
    // ENODATA, not EIO: it tells "the file lost those bytes" apart from a
    // failing disk, for callers that name the file more precisely.
    throw Error(Errc::kIo, path_ + ": file shrank while it was read (truncated by another process?)", ENODATA);
  }

  ScopedFd fd_;
  std::string path_;
  uint64_t size_;
  std::shared_ptr<MappedRegion> region_;
};

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(ScopedFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  const std::string& path() const override { return path_; }

  void write(uint64_t offset, const void* data, size_t n) override {
    pwrite_all(fd_.get(), data, n, static_cast<off_t>(offset), path_);
  }

  void reserve(uint64_t offset, uint64_t n) override {
    if (n == 0) return;
    int r;
    do {
      r = ::fallocate(fd_.get(), 0, static_cast<off_t>(offset), static_cast<off_t>(n));
    } while (r != 0 && errno == EINTR);
    if (r != 0 && errno != EOPNOTSUPP && errno != ENOSYS) throw_errno("fallocate", path_);
  }

  void resize(uint64_t size) override {
    if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) throw_errno("ftruncate", path_);
  }

  void copy_from(const ReadableFile& src, uint64_t n) override {
    if (auto* p = dynamic_cast<const PosixReadableFile*>(&src)) {
      copy_file_prefix(p->fd(), fd_.get(), n, src.path(), path_);
      return;
    }
    std::vector<std::byte> buf(std::min<uint64_t>(n, 8 << 20));
    for (uint64_t off = 0; off < n;) {
      size_t k = static_cast<size_t>(std::min<uint64_t>(buf.size(), n - off));
      src.read(off, k, buf.data());
      write(off, buf.data(), k);
      off += k;
    }
  }

  void sync() override {
    if (::fdatasync(fd_.get()) != 0) throw_errno("fdatasync", path_);
  }

 private:
  ScopedFd fd_;
  std::string path_;
};

class PosixLock final : public StorageLock {
 public:
  explicit PosixLock(ScopedFd fd) : fd_(std::move(fd)) {}

 private:
  ScopedFd fd_;  // closing it releases the flock
};

class InotifyWatch final : public ChangeWatch {
 public:
  explicit InotifyWatch(ScopedFd fd) : fd_(std::move(fd)) {}
  int fd() const override { return fd_.get(); }
  std::vector<std::string> drain() override {
    std::vector<std::string> names;
    alignas(struct inotify_event) char buf[16384];
    for (;;) {
      ssize_t n = ::read(fd_.get(), buf, sizeof buf);
      if (n <= 0) break;  // EAGAIN: nothing more pending
      for (ssize_t at = 0; at < n;) {
        auto* e = reinterpret_cast<const struct inotify_event*>(buf + at);
        if (e->len) names.emplace_back(e->name);
        else names.emplace_back();  // the directory itself (moved, deleted) or an overflow
        at += static_cast<ssize_t>(sizeof(struct inotify_event) + e->len);
      }
    }
    return names;
  }

 private:
  ScopedFd fd_;
};

class PosixStorage final : public Storage {
 public:
  PosixStorage(std::string location, ScopedFd dir, const struct stat& st)
      : location_(std::move(location)), dir_(std::move(dir)),
        identity_("posix:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)) {}

  const std::string& location() const override { return location_; }
  std::string identity() const override { return identity_; }

  std::optional<FileInfo> stat(const std::string& name) const override {
    struct stat st;
    if (::fstatat(dir_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
      throw_errno("stat", path_of(name));
    }
    return info_of(st);
  }

  std::unique_ptr<ReadableFile> open(const std::string& name, Access access) const override {
    const std::string p = path_of(name);
    struct stat st;
    ScopedFd fd = open_regular(dir_.get(), name, p, &st);
    return std::make_unique<PosixReadableFile>(std::move(fd), p, static_cast<uint64_t>(st.st_size), access);
  }

  std::string read_small(const std::string& name, size_t limit) const override {
    const std::string p = path_of(name);
    struct stat st;
    ScopedFd fd = open_regular(dir_.get(), name, p, &st);
    return read_bounded(fd.get(), p, limit);
  }

  std::vector<std::string> list() const override {
    int fd = ::openat(dir_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw_errno("open", location_);
    DIR* d = ::fdopendir(fd);
    if (!d) {
      ::close(fd);
      throw_errno("opendir", location_);
    }
    std::vector<std::string> names;
    errno = 0;
    while (dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
    }
    int err = errno;
    ::closedir(d);
    if (err) throw_errno(err, "readdir", location_);
    return names;
  }

  std::unique_ptr<WritableFile> create(const std::string& name, mode_t mode) override {
    const std::string p = path_of(name);
    ScopedFd fd = open_at(dir_.get(), name, O_RDWR | O_CREAT | O_EXCL, p, mode);
    return std::make_unique<PosixWritableFile>(std::move(fd), p);
  }

  std::unique_ptr<WritableFile> open_writable(const std::string& name) override {
    const std::string p = path_of(name);
    struct stat st;
    if (::fstatat(dir_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) throw_errno("open", p);
    if (!S_ISREG(st.st_mode)) not_regular(p, st.st_mode);
    ScopedFd fd = open_at(dir_.get(), name, O_RDWR | O_NONBLOCK, p);
    if (::fstat(fd.get(), &st) != 0) throw_errno("stat", p);
    if (!S_ISREG(st.st_mode)) not_regular(p, st.st_mode);
    return std::make_unique<PosixWritableFile>(std::move(fd), p);
  }

  void rename(const std::string& from, const std::string& to) override {
    if (::renameat(dir_.get(), from.c_str(), dir_.get(), to.c_str()) != 0) throw_errno("rename", path_of(from));
  }

  void remove(const std::string& name) override {
    if (::unlinkat(dir_.get(), name.c_str(), 0) != 0 && errno != ENOENT) throw_errno("unlink", path_of(name));
  }

  void sync() override {
    if (::fsync(dir_.get()) != 0) throw_errno("fsync", location_);
  }

  std::unique_ptr<StorageLock> lock() override {
    // A descriptor of its own: flock belongs to the open file, so two writers
    // in one process sharing dir_ would both "hold" it.
    int fd = ::openat(dir_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw_errno("open", location_);
    ScopedFd owned(fd);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) throw Error(Errc::kBusy, location_ + ": another writer has this blob open", EBUSY);
      throw_errno("lock", location_);
    }
    return std::make_unique<PosixLock>(std::move(owned));
  }

  std::unique_ptr<ChangeWatch> watch() const override {
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return nullptr;
    ScopedFd owned(fd);
    // Through /proc: the directory we hold, not whatever its path names now.
    const std::string self = "/proc/self/fd/" + std::to_string(dir_.get());
    const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_MODIFY |
                          IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
    if (::inotify_add_watch(fd, self.c_str(), mask) < 0) return nullptr;  // e.g. a FUSE filesystem
    return std::make_unique<InotifyWatch>(std::move(owned));
  }

  static std::string read_bounded(int fd, const std::string& path, size_t limit) {
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw_errno("read", path);
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
      if (out.size() > limit)
        throw Error(Errc::kFormat, path + ": file is larger than " + std::to_string(limit) + " bytes");
    }
    return out;
  }

 private:
  std::string location_;
  ScopedFd dir_;
  std::string identity_;
};

// Replaced atomically: a temporary beside the target, renamed over it, as
// Storage::publish does for content held in memory.
class AtomicOutput final : public OutputFile {
 public:
  AtomicOutput(const std::string& target, mode_t mode) {
    auto [dir, name] = split_path(target);
    dir_ = open_posix_storage(dir);
    name_ = name;
    temp_ = temp_name("." + name);
    dir_->remove(temp_);
    file_ = dir_->create(temp_, 0666);
    // Keep the mode of the file replaced, as cp and a shell's '>' do.
    if (mode && ::chmod(dir_->path_of(temp_).c_str(), mode) != 0) {
      const int err = errno;
      file_.reset();
      dir_->remove(temp_);  // no destructor runs for a constructor that throws
      throw_errno(err, "chmod", dir_->path_of(temp_));
    }
  }
  ~AtomicOutput() override {
    if (!committed_) {
      try {
        dir_->remove(temp_);
      } catch (...) {
      }
    }
  }
  void write(const void* data, size_t n) override {
    file_->write(offset_, data, n);
    offset_ += n;
  }
  void commit() override {
    file_->sync();
    file_.reset();
    dir_->rename(temp_, name_);
    committed_ = true;
    dir_->sync();
  }
  bool streaming() const override { return false; }

 private:
  std::shared_ptr<Storage> dir_;
  std::string name_, temp_;
  std::unique_ptr<WritableFile> file_;
  uint64_t offset_ = 0;
  bool committed_ = false;
};

// Written through: a device, a FIFO, a terminal, a descriptor of the caller's.
class StreamOutput final : public OutputFile {
 public:
  StreamOutput(ScopedFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  void write(const void* data, size_t n) override {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t k = ::write(fd_.get(), p, n);
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) throw_errno("write", path_);
      p += k;
      n -= static_cast<size_t>(k);
    }
  }
  void commit() override {
    int fd = fd_.release();
    if (::close(fd) != 0 && errno != EINTR) throw_errno("close", path_);
  }
  bool streaming() const override { return true; }

 private:
  ScopedFd fd_;
  std::string path_;
};

// /dev/stdout, /dev/fd/1, /proc/self/fd/1: names of a descriptor the caller
// already holds, which a rename would silently detach from it.
bool names_a_descriptor(const std::string& path) {
  return path == "/dev/stdout" || path == "/dev/stderr" || path.starts_with("/dev/fd/") ||
         path.starts_with("/proc/self/fd/");
}

}  // namespace

const char* describe(FileKind kind) {
  switch (kind) {
    case FileKind::kRegular: return "a regular file";
    case FileKind::kDirectory: return "a directory";
    case FileKind::kSymlink: return "a symbolic link";
    case FileKind::kFifo: return "a FIFO";
    case FileKind::kCharDevice: return "a character device";
    case FileKind::kBlockDevice: return "a block device";
    case FileKind::kSocket: return "a socket";
    case FileKind::kOther: break;
  }
  return "not a regular file";
}

std::string Storage::path_of(std::string_view name) const {
  const std::string& loc = location();
  if (!loc.empty() && loc.back() == '/') return loc + std::string(name);
  return loc + "/" + std::string(name);
}

void Storage::publish(const std::string& name, std::string_view content, mode_t mode) {
  // Only the lock holder publishes a store's files, but sidecars are also
  // written by readers (tblob verify --update): a per-process temporary.
  const std::string tmp = temp_name(name);
  remove(tmp);  // left by a crash of ours
  try {
    std::unique_ptr<WritableFile> f = create(tmp, mode);
    f->write(0, content.data(), content.size());
    f->sync();
    f.reset();
    rename(tmp, name);
  } catch (...) {
    try {
      remove(tmp);
    } catch (...) {
    }
    throw;
  }
  sync();
}

bool Storage::is_file(const std::string& name) const {
  auto info = stat(name);
  return info && info->regular();
}

std::shared_ptr<Storage> open_posix_storage(const std::string& dir) {
  const std::string abs = absolute_path(dir);
  struct stat st;
  if (::stat(abs.c_str(), &st) != 0) throw_errno("open", dir);
  if (!S_ISDIR(st.st_mode)) throw Error(Errc::kFormat, dir + ": not a directory");
  // O_NONBLOCK is harmless on a directory and keeps a FIFO swapped in between from blocking.
  int fd = ::open(abs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw_errno("open", dir);
  ScopedFd owned(fd);
  if (::fstat(fd, &st) != 0) throw_errno("stat", dir);
  return std::make_shared<PosixStorage>(abs, std::move(owned), st);
}

std::string absolute_path(const std::string& path) {
  std::string base;
  if (path.empty() || path[0] != '/') {
    char buf[PATH_MAX];
    if (!::getcwd(buf, sizeof buf)) throw_errno("getcwd", path);
    base = buf;
  }
  std::vector<std::string> parts;
  auto add = [&](std::string_view s) {
    size_t start = 0;
    while (start <= s.size()) {
      size_t slash = s.find('/', start);
      std::string_view part = s.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
      if (part == "..") {
        if (!parts.empty()) parts.pop_back();
      } else if (!part.empty() && part != ".") {
        parts.emplace_back(part);
      }
      if (slash == std::string_view::npos) break;
      start = slash + 1;
    }
  };
  add(base);
  add(path);
  std::string out;
  for (const auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

std::pair<std::string, std::string> split_path(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  auto slash = p.rfind('/');
  if (slash == std::string::npos) return {".", p};
  return {slash == 0 ? "/" : p.substr(0, slash), p.substr(slash + 1)};
}

std::string read_regular_file(const std::string& path, size_t limit) {
  struct stat st;
  ScopedFd fd = open_regular(AT_FDCWD, path, path, &st, /*follow=*/true);
  if (static_cast<uint64_t>(st.st_size) > limit)
    throw Error(Errc::kFormat, path + ": file is larger than " + std::to_string(limit) + " bytes");
  return PosixStorage::read_bounded(fd.get(), path, limit);
}

std::unique_ptr<ReadableFile> open_regular_file(const std::string& path, Access access) {
  struct stat st;
  ScopedFd fd = open_regular(AT_FDCWD, path, path, &st, /*follow=*/true);
  return std::make_unique<PosixReadableFile>(std::move(fd), path, static_cast<uint64_t>(st.st_size), access);
}

std::unique_ptr<OutputFile> open_output_file(const std::string& path) {
  struct stat st;
  const bool exists = ::stat(path.c_str(), &st) == 0;  // follows symbolic links
  if (!exists && errno != ENOENT) throw_errno("stat", path);
  struct stat lst;
  if (!exists && ::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode))
    throw Error(Errc::kInvalidArgument, path + ": is a dangling symbolic link; not writing through it", ENOENT);
  if (exists && S_ISDIR(st.st_mode)) throw Error(Errc::kInvalidArgument, path + ": is a directory", EISDIR);
  if (names_a_descriptor(path) || (exists && !S_ISREG(st.st_mode))) {
    // O_TRUNC as a shell's '>' does: it empties a regular file behind
    // /dev/stdout and means nothing to a device or FIFO.
    int fd;
    do {
      fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) throw_errno("open", path);
    return std::make_unique<StreamOutput>(ScopedFd(fd), path);
  }
  // Replace the file the path leads to, not a symbolic link on the way.
  std::string target = path;
  if (exists) {
    char buf[PATH_MAX];
    if (!::realpath(path.c_str(), buf)) throw_errno("resolve", path);
    target = buf;
  }
  return std::make_unique<AtomicOutput>(target, exists ? (st.st_mode & 07777) : 0);
}

}  // namespace tensorblob
