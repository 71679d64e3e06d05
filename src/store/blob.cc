#include "tensorblob/blob.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <vector>

#include "block_cache.h"
#include "posix_file.h"
#include "shared_work.h"
#include "tensorblob/error.h"
#include "tensorblob/fault_guard.h"
#include "tensorblob/verify.h"

namespace tensorblob {

// Gathers and writes at least this large are shared with a helper thread
// (shared_work.h): below it, handing over costs more than a second core saves.
constexpr uint64_t kSharedGatherBytes = 512 * 1024;
constexpr uint64_t kSharedWriteBytes = 1 << 20;
// A shared write is cut into pieces of at most this much, so the two threads
// finish together instead of one waiting on the other's last block.
constexpr int64_t kWritePieceBytes = 2 << 20;

OpenMode parse_open_mode(std::string_view text) {
  OpenMode m;
  m.text = std::string(text);
  const bool plus = text.size() == 2 && text[1] == '+';
  if (text.empty() || text.size() > 2 || (text.size() == 2 && !plus) ||
      std::string_view("rwa").find(text[0]) == std::string_view::npos)
    throw Error(Errc::kInvalidArgument,
                "invalid open mode '" + m.text + "': use r, w, a, r+, w+ or a+");
  m.readable = text[0] == 'r' || plus;
  m.writable = text[0] != 'r' || plus;
  m.append = text[0] == 'a';
  m.truncate = text[0] == 'w';
  m.must_exist = text[0] != 'w';
  return m;
}

namespace {

constexpr const char* kConfName = ".conf";
constexpr const char* kStatName = ".stat";
constexpr const char* kHashesName = ".hashes.npy";  // item_hashes.h

std::string normalize_path(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }

bool exists_at(int dir_fd, const char* name) {
  struct stat st;
  return ::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

bool directory_is_empty(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d) throw_errno("opendir", path);
  bool empty = true;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  ::closedir(d);
  return empty;
}

}  // namespace

class Blob::Impl {
 public:
  Impl(std::string p, OpenMode m, size_t max_cached)
      : path(std::move(p)), mode(std::move(m)), cache(max_cached) {}

  std::string path;
  OpenMode mode;
  BlobConf conf;
  BlobStatus status;  // len includes writes not yet committed
  int64_t pos = 0;
  bool closed = false;
  ScopedFd dir;
  mutable BlockCache cache;
  std::set<size_t> dirty;           // blocks written since the last commit
  std::vector<std::string> doomed;  // block files to delete once a commit no longer lists them
  std::set<std::string> fresh;      // blocks created since the last commit: no .stat on disk names them
  size_t write_block = SIZE_MAX;    // the block write_fd belongs to
  bool record_hashes = false;       // OpenOptions::record_hashes
  bool helper_thread = true;        // OpenOptions::helper_thread
  ScopedFd write_fd;

  std::string file_path(const std::string& name) const { return path + "/" + name; }

  void check_open() const {
    if (closed) throw Error(Errc::kNotPermitted, path + ": I/O operation on a closed blob");
  }
  void check_readable() const {
    check_open();
    if (!mode.readable)
      throw Error(Errc::kNotPermitted, path + ": blob is not open for reading (mode '" + mode.text + "')");
  }
  void check_writable() const {
    check_open();
    if (!mode.writable)
      throw Error(Errc::kNotPermitted, path + ": blob is not open for writing (mode '" + mode.text + "')");
  }

  // Opens block b and checks that it can hold a whole block; a missing or short
  // block is reported by name rather than read as zeros (FORMATS.md 3.7).
  ScopedFd open_block(size_t b, int flags) const {
    const std::string& name = status.blocks[b];
    const std::string p = file_path(name);
    int fd = ::openat(dir.get(), name.c_str(), flags | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      if (errno == ENOENT) throw Error(Errc::kNotFound, p + ": block file listed in .stat is missing");
      if (errno == ELOOP) throw Error(Errc::kFormat, p + ": block file is a symbolic link");
      throw_errno("open", p);
    }
    ScopedFd owned(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0) throw_errno("stat", p);
    if (!S_ISREG(st.st_mode)) throw Error(Errc::kFormat, p + ": block file is not a regular file");
    if (st.st_size < conf.block_bytes)
      throw Error(Errc::kFormat, p + ": block file is " + std::to_string(st.st_size) + " bytes, expected " +
                                     std::to_string(conf.block_bytes) + " (block_size × item bytes)");
    return owned;
  }

  std::shared_ptr<const Mapping> block(size_t b) const {
    return cache.get(b, [&] {
      ScopedFd fd = open_block(b, O_RDONLY);
      return std::make_shared<const Mapping>(fd.get(), static_cast<size_t>(conf.block_bytes),
                                             file_path(status.blocks[b]));
    });
  }

  int64_t normalize_index(int64_t i) const {
    int64_t j = i < 0 ? i + status.len : i;
    if (j < 0 || j >= status.len)
      throw Error(Errc::kOutOfRange, path + ": index " + std::to_string(i) + " out of range for a blob of " +
                                         std::to_string(status.len) + " tensors");
    return j;
  }

  // Copies bytes [offset, offset+n) of the concatenation of all tensors to
  // dst; the caller has checked the range.
  void copy_bytes(int64_t offset, int64_t n, std::byte* dst) const {
    const int64_t bb = conf.block_bytes;
    while (n > 0) {
      int64_t b = offset / bb, off = offset % bb, k = std::min(bb - off, n);
      auto m = block(static_cast<size_t>(b));
      copy_from_block(static_cast<size_t>(b), dst, m->data() + off, k, off + k);
      dst += k;
      offset += k;
      n -= k;
    }
  }

  // Copies n bytes of block b's mapping (ending at block offset `end`).
  void copy_from_block(size_t b, std::byte* dst, const std::byte* src, int64_t n, int64_t end) const {
    if (!copy_from_mapped_file(dst, src, static_cast<size_t>(n), dir.get(), status.blocks[b].c_str(),
                               static_cast<uint64_t>(end)))
      block_shrank(b);
  }

  // Block b's file shrank under its mapping (fault_guard.h): forgets the
  // mapping, so the next access opens the file afresh and reports its size.
  [[noreturn]] void block_shrank(size_t b) const {
    cache.drop(b);
    throw Error(Errc::kIo, file_path(status.blocks[b]) + ": block file shrank while mapped (truncated by another process?)");
  }

  void copy_items(int64_t first, int64_t n, std::byte* dst) const {
    copy_bytes(first * conf.item_bytes, n * conf.item_bytes, dst);
  }

  void check_range(int64_t first, int64_t n) const {
    if (first < 0 || n < 0 || first > status.len || n > status.len - first)
      throw Error(Errc::kOutOfRange, path + ": tensors [" + std::to_string(first) + ", " +
                                         std::to_string(first + n) + ") out of range for a blob of " +
                                         std::to_string(status.len) + " tensors");
  }

  // A new zero-filled full-size block at the end of the list (FORMATS.md 3.5),
  // open for writing; it stays unlisted on disk until the next commit.
  ScopedFd add_block() {
    std::string name = new_block_name();
    std::string p = file_path(name);
    ScopedFd fd = open_at(dir.get(), name, O_RDWR | O_CREAT | O_EXCL, p, 0644);
    try {
      size_block(fd.get(), conf.block_bytes, p);
    } catch (...) {
      ::unlinkat(dir.get(), name.c_str(), 0);
      throw;
    }
    fresh.insert(name);
    status.blocks.push_back(std::move(name));
    return fd;
  }

  // Block b open for writing; b may be one past the last block, which adds it.
  ScopedFd open_block_for_write(size_t b) {
    return b == status.blocks.size() ? add_block() : open_block(b, O_WRONLY);
  }

  // The descriptor of block b, kept open across calls: small writes in a loop
  // should not open a file each.
  int block_write_fd(size_t b) {
    if (b != write_block) {
      write_fd = open_block_for_write(b);
      write_block = b;
    }
    return write_fd.get();
  }

  void write_bytes(const std::byte* data, int64_t n) {
    check_writable();
    if (mode.append) pos = status.len;
    const int64_t B = conf.block_size, item = conf.item_bytes;
    checked_mul(pos + n, item, "write position");
    if (n == 0) return;
    const int64_t first_block = pos / B, last_block = (pos + n - 1) / B;
    if (helper_thread && first_block != last_block && static_cast<uint64_t>(n * item) >= kSharedWriteBytes) {
      write_shared(data, n);
      return;
    }
    while (n > 0) {
      int64_t b = pos / B, off = pos % B, k = std::min(B - off, n);
      int fd = block_write_fd(static_cast<size_t>(b));
      pwrite_all(fd, data, static_cast<size_t>(k * item), static_cast<off_t>(off * item),
                 file_path(status.blocks[b]));
      dirty.insert(static_cast<size_t>(b));
      data += k * item;
      pos += k;
      n -= k;
      status.len = std::max(status.len, pos);
    }
  }

  // A write across blocks, in pieces shared with the helper thread: copying
  // into fresh page-cache pages is bound by one core, and each block is its
  // own file, so two threads write two blocks at once (two pieces of one
  // block would only queue on the file's lock). The pieces finish in any
  // order, so the length grows only once all of them are written.
  void write_shared(const std::byte* data, int64_t n) {
    const int64_t B = conf.block_size, item = conf.item_bytes;
    const int64_t first_block = pos / B, last_block = (pos + n - 1) / B;
    std::vector<ScopedFd> fds;  // one open per block: nothing against copying a megabyte or more
    for (int64_t b = first_block; b <= last_block; ++b) {
      fds.push_back(open_block_for_write(static_cast<size_t>(b)));
      dirty.insert(static_cast<size_t>(b));
    }
    // Pieces end at multiples of kWritePieceBytes in their file, so none
    // shares a page (or a large folio) with another: a partly written page
    // would have to be read or zeroed first, and two threads would take turns
    // on it.
    struct Piece {
      size_t block;
      int64_t offset, bytes;  // within the block file
      const std::byte* src;
    };
    std::vector<Piece> pieces;
    const int64_t end = (pos + n) * item;  // bytes, counted over the whole blob
    for (int64_t at = pos * item; at < end;) {
      const int64_t b = at / conf.block_bytes, offset = at % conf.block_bytes;
      const int64_t stop = std::min({(offset / kWritePieceBytes + 1) * kWritePieceBytes, conf.block_bytes,
                                     offset + (end - at)});
      pieces.push_back({static_cast<size_t>(b), offset, stop - offset, data + (at - pos * item)});
      at += stop - offset;
    }
    run_shared(
        pieces.size(), true,
        [&](size_t j, int) {
          const Piece& p = pieces[j];
          pwrite_all(fds[p.block - static_cast<size_t>(first_block)].get(), p.src, static_cast<size_t>(p.bytes),
                     static_cast<off_t>(p.offset), file_path(status.blocks[p.block]));
        },
        1);
    write_fd = std::move(fds.back());
    write_block = static_cast<size_t>(last_block);
    pos += n;
    status.len = std::max(status.len, pos);
  }

  // Block data first, then the status that points at it (FORMATS.md 3.9).
  void commit() {
    write_fd = ScopedFd();
    write_block = SIZE_MAX;
    for (size_t b : dirty) {
      if (b >= status.blocks.size()) continue;
      ScopedFd fd = open_block(b, O_RDONLY);
      if (::fdatasync(fd.get()) != 0) throw_errno("fdatasync", file_path(status.blocks[b]));
    }
    // Per-tensor hashes of the old contents would accuse the new ones.
    if (!dirty.empty() || !doomed.empty()) ::unlinkat(dir.get(), kHashesName, 0);
    dirty.clear();
    replace_file_atomically(dir.get(), kStatName, format_blob_status(status), path);
    fresh.clear();
    for (const auto& name : doomed) ::unlinkat(dir.get(), name.c_str(), 0);
    doomed.clear();
  }

  // Forgets blocks from index `keep` on; their files go at the next commit.
  void drop_blocks_from(size_t keep) {
    if (keep >= status.blocks.size()) return;
    for (size_t b = keep; b < status.blocks.size(); ++b) {
      // A block no committed .stat names can go now; that also frees the
      // space a commit may need when the disk is full.
      if (fresh.erase(status.blocks[b])) ::unlinkat(dir.get(), status.blocks[b].c_str(), 0);
      else doomed.push_back(status.blocks[b]);
      dirty.erase(b);
    }
    status.blocks.resize(keep);
    if (write_block >= keep) {
      write_fd = ScopedFd();
      write_block = SIZE_MAX;
    }
    cache.drop_from(keep);
  }

  void lock() {
    if (::flock(dir.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK)
        throw Error(Errc::kBusy, path + ": another writer has this blob open");
      throw_errno("lock", path);
    }
  }

  // The config of a new blob, checked before anything touches the disk.
  static BlobConf new_blob_conf(const std::string& path, const OpenOptions& o) {
    if (o.dtype.empty() || !o.shape)
      throw Error(Errc::kInvalidArgument, path + ": a new blob needs a dtype and a shape");
    try {
      return make_blob_conf(path, o.dtype, *o.shape, o.block_size);
    } catch (const FormatError& e) {
      throw Error(Errc::kInvalidArgument, e.what());
    }
  }

  void create(const OpenOptions& o) {
    conf = new_blob_conf(path, o);
    replace_file_atomically(dir.get(), kConfName, format_blob_conf(conf, o.conf_flavor), path);
    status = BlobStatus{};
    replace_file_atomically(dir.get(), kStatName, format_blob_status(status), path);
  }

  void load() {
    conf = parse_blob_conf(read_small_file(dir.get(), kConfName, file_path(kConfName)), file_path(kConfName));
    std::string stat_text;
    try {
      stat_text = read_small_file(dir.get(), kStatName, file_path(kStatName));
    } catch (const Error& e) {
      if (e.code() == Errc::kNotFound)
        throw Error(Errc::kNotFound, file_path(kStatName) + ": status file missing; the blob is damaged");
      throw;
    }
    status = parse_blob_status(stat_text, file_path(kStatName));
    int64_t needed = ceil_div(status.len, conf.block_size);
    if (static_cast<int64_t>(status.blocks.size()) < needed)
      throw FormatError(file_path(kStatName) + ": " + std::to_string(status.len) + " tensors need " +
                        std::to_string(needed) + " blocks of " + std::to_string(conf.block_size) +
                        " but only " + std::to_string(status.blocks.size()) + " are listed");
  }
};

Blob::Blob(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Blob::Blob(Blob&&) noexcept = default;
Blob& Blob::operator=(Blob&&) noexcept = default;

Blob::~Blob() {
  if (!impl_) return;
  try {
    close();
  } catch (...) {
    // The last committed state stays on disk; callers who care call close().
  }
}

Blob Blob::open(const std::string& path_in, std::string_view mode_text, const OpenOptions& options) {
  OpenMode mode = parse_open_mode(mode_text);
  std::string path = normalize_path(path_in);
  if (path.empty()) throw Error(Errc::kInvalidArgument, "empty blob path");
  size_t max_cached = options.max_cached_blocks ? options.max_cached_blocks : default_max_cached_blocks();
  auto impl = std::make_unique<Impl>(path, mode, max_cached);

  struct stat st;
  bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && !S_ISDIR(st.st_mode)) throw Error(Errc::kFormat, path + ": not a blob directory");
  if (!exists && mode.must_exist) throw Error(Errc::kNotFound, path + ": no such blob");
  if (!exists) {
    Impl::new_blob_conf(path, options);  // a refused create leaves no directory behind
    make_directories(path);
  }

  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("open", path);
  impl->dir = ScopedFd(fd);
  if (mode.writable) impl->lock();

  bool has_conf = exists_at(fd, kConfName);
  if (!has_conf && mode.truncate && directory_is_empty(path)) {
    impl->create(options);
  } else if (!has_conf) {
    throw Error(Errc::kNotFound, impl->file_path(kConfName) + ": missing; not a tensorblob directory");
  } else {
    impl->load();
    if (mode.truncate) {
      // tensorblob's 'w' keeps the stored config and empties the blob. Commit
      // the empty status before deleting blocks so a crash never leaves a
      // .stat naming deleted files.
      impl->drop_blocks_from(0);
      impl->status.len = 0;
      impl->commit();
    }
  }
  impl->pos = mode.append ? impl->status.len : 0;
  impl->record_hashes = options.record_hashes && mode.writable;
  impl->helper_thread = options.helper_thread;
  return Blob(std::move(impl));
}

bool Blob::remove(const std::string& path_in) {
  std::string path = normalize_path(path_in);
  {
    Blob b = open(path, "r+");
    b.truncate(0);
    b.close();
  }
  for (const char* name : {kStatName, kConfName, kHashesName, ".stat.tmp", ".conf.tmp"}) {
    std::string p = path + "/" + name;
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) throw_errno("unlink", p);
  }
  if (::rmdir(path.c_str()) == 0) return true;
  if (errno == ENOTEMPTY || errno == EEXIST) return false;
  throw_errno("rmdir", path);
}

const std::string& Blob::path() const { return impl_->path; }
const OpenMode& Blob::mode() const { return impl_->mode; }
const BlobConf& Blob::conf() const { return impl_->conf; }
int64_t Blob::size() const { return impl_->status.len; }
bool Blob::closed() const { return impl_->closed; }

int64_t Blob::seek(int64_t offset, Whence whence) {
  impl_->check_open();
  int64_t base = 0;
  switch (whence) {
    case Whence::kSet: base = 0; break;
    case Whence::kCur: base = impl_->pos; break;
    case Whence::kEnd: base = impl_->status.len; break;
    default: throw Error(Errc::kInvalidArgument, impl_->path + ": invalid whence");
  }
  int64_t target;
  if (__builtin_add_overflow(base, offset, &target)) target = offset < 0 ? 0 : impl_->status.len;
  impl_->pos = std::clamp<int64_t>(target, 0, impl_->status.len);
  return impl_->pos;
}

int64_t Blob::tell() const {
  impl_->check_open();
  return impl_->pos;
}

Tensor Blob::read(int64_t n) {
  impl_->check_readable();
  int64_t avail = impl_->status.len - impl_->pos;
  int64_t k = (n < 0 || n > avail) ? avail : n;
  Shape s = impl_->conf.shape;
  s.insert(s.begin(), k);
  Tensor out = Tensor::uninitialized(impl_->conf.dtype, std::move(s));
  impl_->copy_items(impl_->pos, k, out.data());
  impl_->pos += k;
  return out;
}

std::optional<Tensor> Blob::next() {
  impl_->check_readable();
  if (impl_->pos >= impl_->status.len) return std::nullopt;
  return get(impl_->pos++);
}

int64_t Blob::write(const Tensor& t) {
  const BlobConf& c = impl_->conf;
  impl_->check_writable();
  if (t.dtype() != c.dtype)
    throw Error(Errc::kInvalidArgument, impl_->path + ": cannot write " + std::string(dtype_info(t.dtype()).name) +
                                            " tensors to a " + std::string(dtype_info(c.dtype).name) + " blob");
  int64_t n;
  const Shape& s = t.shape();
  if (s == c.shape) {
    n = 1;
  } else if (s.size() == c.shape.size() + 1 && std::equal(s.begin() + 1, s.end(), c.shape.begin())) {
    n = s[0];
  } else {
    throw Error(Errc::kInvalidArgument, impl_->path + ": cannot write shape " + shape_to_string(s) +
                                            " to a blob of shape " + shape_to_string(c.shape) +
                                            " (give one tensor or a batch (n, *shape))");
  }
  impl_->write_bytes(t.data(), n);
  return n;
}

int64_t Blob::write_raw(const void* data, int64_t n) {
  if (n < 0) throw Error(Errc::kInvalidArgument, impl_->path + ": negative tensor count");
  impl_->write_bytes(static_cast<const std::byte*>(data), n);
  return n;
}

void Blob::truncate(std::optional<int64_t> pos) {
  Impl& m = *impl_;
  m.check_writable();
  int64_t n = pos.value_or(m.pos);
  if (n < 0 || n > m.status.len)
    throw Error(Errc::kOutOfRange, m.path + ": cannot truncate a blob of " + std::to_string(m.status.len) +
                                       " tensors to " + std::to_string(n));
  m.status.len = n;
  m.drop_blocks_from(static_cast<size_t>(ceil_div(n, m.conf.block_size)));
  m.pos = std::min(m.pos, n);
  m.commit();
}

void Blob::extend(const Blob& other, bool keep_order, const std::function<void(uint64_t)>& progress) {
  Impl& m = *impl_;
  const Impl& o = *other.impl_;
  m.check_writable();
  o.check_readable();
  if (&o == &m) throw Error(Errc::kInvalidArgument, m.path + ": cannot extend a blob with itself");
  if (o.conf.dtype != m.conf.dtype || o.conf.shape != m.conf.shape)
    throw Error(Errc::kInvalidArgument,
                m.path + ": cannot extend a " + std::string(dtype_info(m.conf.dtype).name) + " " +
                    shape_to_string(m.conf.shape) + " blob with " + o.path + ", a " +
                    std::string(dtype_info(o.conf.dtype).name) + " " + shape_to_string(o.conf.shape) + " blob");
  const int64_t item = m.conf.item_bytes, B = m.conf.block_size;
  auto copy_tensors = [&](const Impl& src, int64_t first, int64_t n) {
    const int64_t chunk = std::max<int64_t>(1, (int64_t{8} << 20) / item);
    std::vector<std::byte> buf(static_cast<size_t>(std::min(n, chunk) * item));
    for (int64_t i = 0; i < n; i += chunk) {
      int64_t k = std::min(chunk, n - i);
      src.copy_items(first + i, k, buf.data());
      m.write_bytes(buf.data(), k);
      if (progress) progress(static_cast<uint64_t>(k * item));
    }
  };

  m.pos = m.status.len;
  if (keep_order || o.conf.block_size != B) {
    copy_tensors(o, 0, o.status.len);
    m.commit();
    return;
  }
  // tensorblob's fast path (FORMATS.md 3.6): set this blob's partial last
  // block aside, copy other's full blocks as files, then write the two tails.
  m.drop_blocks_from(static_cast<size_t>(ceil_div(m.status.len, B)));
  int64_t tail = m.status.len % B;
  std::vector<std::byte> own_tail(static_cast<size_t>(tail * item));
  m.copy_items(m.status.len - tail, tail, own_tail.data());
  m.status.len -= tail;
  m.drop_blocks_from(static_cast<size_t>(m.status.len / B));

  const int64_t full = o.status.len / B;
  for (int64_t k = 0; k < full; ++k) {
    ScopedFd src = o.open_block(static_cast<size_t>(k), O_RDONLY);
    std::string name = new_block_name();
    std::string p = m.file_path(name);
    ScopedFd dst = open_at(m.dir.get(), name, O_WRONLY | O_CREAT | O_EXCL, p, 0644);
    m.fresh.insert(name);
    m.status.blocks.push_back(name);  // listed first so a failed copy is cleaned up like any block
    copy_file_prefix(src.get(), dst.get(), static_cast<size_t>(m.conf.block_bytes),
                     o.file_path(o.status.blocks[k]), p);
    m.dirty.insert(m.status.blocks.size() - 1);
    m.status.len += B;
    if (progress) progress(static_cast<uint64_t>(m.conf.block_bytes));
  }
  m.pos = m.status.len;
  m.write_bytes(own_tail.data(), tail);
  copy_tensors(o, full * B, o.status.len - full * B);
  m.commit();
}

void Blob::flush() {
  impl_->check_writable();
  impl_->commit();
}

void Blob::close() {
  Impl& m = *impl_;
  if (m.closed) return;
  m.closed = true;  // even if the commit throws, the blob is unusable afterwards
  if (m.mode.writable) {
    m.commit();
    if (m.record_hashes) update_blob_item_hashes(m.path);  // still under the writer lock
  }
  m.cache.clear();
  m.write_fd = ScopedFd();
  m.dir = ScopedFd();  // releases the flock
}

Tensor Blob::get(int64_t index) const {
  impl_->check_readable();
  int64_t i = impl_->normalize_index(index);
  Tensor out = Tensor::uninitialized(impl_->conf.dtype, impl_->conf.shape);
  impl_->copy_items(i, 1, out.data());
  return out;
}

Tensor Blob::slice(std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step) const {
  const Impl& m = *impl_;
  m.check_readable();
  if (step == 0) throw Error(Errc::kInvalidArgument, m.path + ": slice step cannot be zero");
  if (step == INT64_MIN) step = -INT64_MAX;  // same elements, and negating it stays defined
  const int64_t len = m.status.len;
  // CPython's PySlice_AdjustIndices, so results match blob[start:stop:step].
  const int64_t lower = step > 0 ? 0 : -1, upper = step > 0 ? len : len - 1;
  auto adjust = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v;
    if (x < 0) x = (x < -len) ? lower : x + len;
    return std::clamp(x, lower, upper);
  };
  int64_t a = adjust(start, step > 0 ? lower : upper), b = adjust(stop, step > 0 ? upper : lower);
  int64_t count = 0;
  if (step > 0 && b > a) count = (b - a - 1) / step + 1;
  if (step < 0 && a > b) count = (a - b - 1) / (-step) + 1;
  if (step == 1) {
    Shape s = m.conf.shape;
    s.insert(s.begin(), count);
    Tensor out = Tensor::uninitialized(m.conf.dtype, std::move(s));
    m.copy_items(a, count, out.data());
    return out;
  }
  std::vector<int64_t> idx(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) idx[k] = a + k * step;
  return gather(idx);
}

Tensor Blob::gather(std::span<const int64_t> indices) const {
  const Impl& m = *impl_;
  Shape s = m.conf.shape;
  s.insert(s.begin(), static_cast<int64_t>(indices.size()));
  Tensor out = Tensor::uninitialized(m.conf.dtype, std::move(s));
  gather_into(indices, out.data());
  return out;
}

void Blob::gather_into(std::span<const int64_t> indices, void* dst) const {
  const Impl& m = *impl_;
  m.check_readable();
  const int64_t item = m.conf.item_bytes, B = m.conf.block_size;
  std::vector<std::pair<int64_t, size_t>> order(indices.size());  // (tensor, output slot)
  for (size_t k = 0; k < indices.size(); ++k) order[k] = {m.normalize_index(indices[k]), k};
  std::sort(order.begin(), order.end());
  // Resolve every source address first (one cache lookup per block touched),
  // so the copy loop can prefetch a few tensors ahead: random tensors are
  // DRAM-latency bound, and overlapping the misses is what beats memcpy.
  std::vector<std::shared_ptr<const Mapping>> held;
  std::vector<const std::byte*> from(order.size());
  int64_t mapped_block = -1;
  for (size_t k = 0; k < order.size(); ++k) {
    int64_t i = order[k].first;
    if (i / B != mapped_block) {
      mapped_block = i / B;
      held.push_back(m.block(static_cast<size_t>(mapped_block)));
    }
    from[k] = held.back()->data() + (i % B) * item;
  }
  constexpr size_t kAhead = 8, kLines = 48;
  auto* out = static_cast<std::byte*>(dst);
  const size_t n = order.size();
  // A second core only pays for its hand-over on large gathers.
  const bool share = m.helper_thread && static_cast<uint64_t>(item) * n >= kSharedGatherBytes;
  run_shared(n, share, [&](size_t k, int dir) {
    const size_t ahead = dir > 0 ? k + kAhead : k - kAhead;  // wraps past 0 to a huge value
    if (ahead < n)
      for (size_t line = 0; line < kLines && static_cast<int64_t>(line * 64) < item; ++line)
        __builtin_prefetch(from[ahead] + line * 64);
    if (!guarded_copy(out + order[k].second * item, from[k], static_cast<size_t>(item)))
      m.block_shrank(static_cast<size_t>(order[k].first / B));
  });
  // Whether each block still reaches the end of its last tensor copied (the
  // order is sorted): one stat per block, not one per tensor.
  if (!fault_guard_installed()) return;
  for (size_t k = 0; k < n; ++k) {
    const int64_t b = order[k].first / B;
    if (k + 1 < n && order[k + 1].first / B == b) continue;
    if (!mapped_file_reaches(m.dir.get(), m.status.blocks[static_cast<size_t>(b)].c_str(),
                             static_cast<uint64_t>((order[k].first % B + 1) * item)))
      m.block_shrank(static_cast<size_t>(b));
  }
}

ItemView Blob::item_view(int64_t index) const {
  const Impl& m = *impl_;
  m.check_readable();
  m.check_range(index, 1);
  auto mapping = m.block(static_cast<size_t>(index / m.conf.block_size));
  const std::byte* p = mapping->data() + (index % m.conf.block_size) * m.conf.item_bytes;
  return ItemView{std::shared_ptr<const void>(mapping, p), p, static_cast<size_t>(m.conf.item_bytes)};
}

void Blob::read_items(int64_t first, int64_t n, void* dst) const {
  const Impl& m = *impl_;
  m.check_readable();
  m.check_range(first, n);
  m.copy_items(first, n, static_cast<std::byte*>(dst));
}

void Blob::read_bytes(int64_t offset, int64_t n, void* dst) const {
  const Impl& m = *impl_;
  m.check_readable();
  const int64_t total = m.status.len * m.conf.item_bytes;
  if (offset < 0 || n < 0 || offset > total || n > total - offset)
    throw Error(Errc::kOutOfRange, m.path + ": bytes [" + std::to_string(offset) + ", " + std::to_string(offset + n) +
                                       ") out of range for " + std::to_string(total) + " bytes of tensors");
  m.copy_bytes(offset, n, static_cast<std::byte*>(dst));
}

size_t Blob::cached_blocks() const { return impl_->cache.size(); }

}  // namespace tensorblob
