// The file-like face of a blob: open modes and a cursor over a snapshot
// (reading) or a writer's draft (writing). The state, its files and its
// commits live in blob_store.h and blob_writer.h.
#include "tensorblob/blob.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <vector>

#include "blob_store.h"
#include "blob_writer.h"
#include "filenames.h"
#include "posix_file.h"
#include "tensorblob/error.h"
#include "tensorblob/storage.h"
#include "tensorblob/verify.h"

namespace tensorblob {

OpenMode parse_open_mode(std::string_view text) {
  OpenMode m;
  m.text = std::string(text);
  const bool plus = text.size() == 2 && text[1] == '+';
  if (text.empty() || text.size() > 2 || (text.size() == 2 && !plus) ||
      std::string_view("rwa").find(text[0]) == std::string_view::npos)
    throw Error(Errc::kInvalidArgument, "invalid open mode '" + m.text + "': use r, w, a, r+, w+ or a+");
  m.readable = text[0] == 'r' || plus;
  m.writable = text[0] != 'r' || plus;
  m.append = text[0] == 'a';
  m.truncate = text[0] == 'w';
  m.must_exist = text[0] != 'w';
  return m;
}

std::optional<int64_t> tensors_in_shape(const Shape& given, const Shape& item) {
  if (given == item) return 1;
  if (given.size() == item.size() + 1 && std::equal(given.begin() + 1, given.end(), item.begin())) return given[0];
  return std::nullopt;
}

namespace {

bool directory_is_empty(const Storage& st) { return st.list().empty(); }

}  // namespace

class Blob::Impl {
 public:
  std::string path;
  OpenMode mode;
  std::shared_ptr<BlobStore> store;
  std::unique_ptr<BlobWriter> writer;  // writable modes
  bool record_hashes = false;
  bool helper_thread = true;
  int64_t pos = 0;
  bool closed = false;

  // Readers: the snapshot read, swapped only when one of its blocks is
  // gone. Old snapshots are kept until close, so a thread still reading
  // through one is never left with a dangling pointer, and reads stay a
  // plain pointer load.
  mutable std::atomic<const BlobSnapshot*> snap{nullptr};
  mutable std::vector<std::shared_ptr<const BlobSnapshot>> kept;
  mutable std::mutex reload_mu;

  const BlobState& state() const { return writer ? writer->state() : snap.load(std::memory_order_acquire)->state(); }
  const BlobConf& conf() const { return state().conf; }
  int64_t len() const { return state().len; }

  void set_snapshot(std::shared_ptr<const BlobSnapshot> s) {
    std::lock_guard<std::mutex> lock(reload_mu);
    snap.store(s.get(), std::memory_order_release);
    // A writer reads its draft, never these: keeping only the last commit
    // lets the blocks its commits replaced go.
    if (writer) kept.clear();
    kept.push_back(std::move(s));
  }

  // Runs fn(state) — and again on the newest commit if a block of this
  // reader's snapshot is gone because a later commit replaced it.
  template <typename F>
  auto reading(F&& fn) const {
    for (int attempt = 0;; ++attempt) {
      const BlobSnapshot* seen = writer ? nullptr : snap.load(std::memory_order_acquire);
      try {
        return fn(state());
      } catch (const Error& e) {
        if (writer || e.code() != Errc::kNotFound || attempt >= 3) throw;
        std::shared_ptr<const BlobSnapshot> newest = store->load();
        std::lock_guard<std::mutex> lock(reload_mu);
        if (newest.get() == seen) throw;  // really missing, not replaced
        if (snap.load() == seen) {
          snap.store(newest.get(), std::memory_order_release);
          kept.push_back(newest);
        }
      }
    }
  }

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

  int64_t normalize_index(int64_t i) const {
    const int64_t n = len();
    int64_t j = i < 0 ? i + n : i;
    if (j < 0 || j >= n)
      throw Error(Errc::kOutOfRange, path + ": index " + std::to_string(i) + " out of range for a blob of " +
                                         std::to_string(n) + " tensors");
    return j;
  }

  void check_range(int64_t first, int64_t n) const {
    const int64_t size = len();
    if (first < 0 || n < 0 || first > size || n > size - first)
      throw Error(Errc::kOutOfRange, path + ": tensors [" + std::to_string(first) + ", " + std::to_string(first + n) +
                                         ") out of range for a blob of " + std::to_string(size) + " tensors");
  }

  void copy_items(int64_t first, int64_t n, std::byte* dst) const {
    reading([&](const BlobState& s) {
      read_state_bytes(*store, s, first * s.conf.item_bytes, n * s.conf.item_bytes, dst);
    });
  }

  void write_bytes(const std::byte* data, int64_t n) {
    check_writable();
    if (mode.append) pos = writer->len();
    writer->write(pos, data, n);
    pos += n;
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
  std::string path = path_in;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (path.empty()) throw Error(Errc::kInvalidArgument, "empty blob path");
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->mode = mode;

  struct stat st;
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && !S_ISDIR(st.st_mode)) throw Error(Errc::kFormat, path + ": not a blob directory");
  if (!exists && mode.must_exist) throw Error(Errc::kNotFound, path + ": no such blob", ENOENT);
  if (!exists) {
    Impl::new_blob_conf(path, options);  // a refused create leaves no directory behind
    make_directories(path);
  }
  std::shared_ptr<Storage> storage = open_posix_storage(path);
  std::unique_ptr<StorageLock> lock;
  if (mode.writable) lock = storage->lock();
  impl->store = BlobStore::get(storage, options.max_cached_blocks, Access::kMapped);

  if (!storage->stat(kConfName)) {
    if (!(mode.truncate && directory_is_empty(*storage)))
      throw Error(Errc::kNotFound, storage->path_of(kConfName) + ": missing; not a tensorblob directory", ENOENT);
    BlobConf conf = Impl::new_blob_conf(path, options);
    storage->publish(kConfName, format_blob_conf(conf, options.conf_flavor));
    storage->publish(kStatName, format_blob_status(BlobStatus{}));
  }
  std::shared_ptr<const BlobSnapshot> base = impl->store->load();
  impl->set_snapshot(base);
  impl->helper_thread = options.helper_thread;
  if (mode.writable) {
    impl->writer = std::make_unique<BlobWriter>(impl->store, std::move(lock), base, options.helper_thread);
    if (mode.truncate) {
      // tensorblob's 'w' keeps the stored config and empties the blob: the
      // empty status is committed first, then the old blocks go.
      impl->writer->truncate(0);
      impl->set_snapshot(impl->writer->commit());
    }
  }
  impl->pos = mode.append ? impl->len() : 0;
  impl->record_hashes = options.record_hashes && mode.writable;
  return Blob(std::move(impl));
}

bool Blob::remove(const std::string& path_in) {
  std::string path = path_in;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  {
    Blob b = open(path, "r+");
    b.truncate(0);
    b.close();
  }
  std::shared_ptr<Storage> storage = open_posix_storage(path);
  for (const auto& name : storage->list())
    if (name == kStatName || name == kConfName || name == kBlobHashesName || is_temp_name(name)) storage->remove(name);
  if (::rmdir(path.c_str()) == 0) return true;
  if (errno == ENOTEMPTY || errno == EEXIST) return false;
  throw_errno("rmdir", path);
}

const std::string& Blob::path() const { return impl_->path; }
const OpenMode& Blob::mode() const { return impl_->mode; }
const BlobConf& Blob::conf() const { return impl_->conf(); }
int64_t Blob::size() const { return impl_->len(); }
bool Blob::closed() const { return impl_->closed; }

int64_t Blob::seek(int64_t offset, Whence whence) {
  impl_->check_open();
  const int64_t len = impl_->len();
  int64_t base = 0;
  switch (whence) {
    case Whence::kSet: base = 0; break;
    case Whence::kCur: base = impl_->pos; break;
    case Whence::kEnd: base = len; break;
    default: throw Error(Errc::kInvalidArgument, impl_->path + ": invalid whence");
  }
  int64_t target;
  if (__builtin_add_overflow(base, offset, &target)) target = offset < 0 ? 0 : len;
  impl_->pos = std::clamp<int64_t>(target, 0, len);
  return impl_->pos;
}

int64_t Blob::tell() const {
  impl_->check_open();
  return impl_->pos;
}

Tensor Blob::read(int64_t n) {
  impl_->check_readable();
  const int64_t avail = std::max<int64_t>(0, impl_->len() - impl_->pos);
  const int64_t k = (n < 0 || n > avail) ? avail : n;
  Shape s = impl_->conf().shape;
  s.insert(s.begin(), k);
  Tensor out = Tensor::uninitialized(impl_->conf().dtype, std::move(s));
  impl_->copy_items(impl_->pos, k, out.data());
  impl_->pos += k;
  return out;
}

std::optional<Tensor> Blob::next() {
  impl_->check_readable();
  if (impl_->pos >= impl_->len()) return std::nullopt;
  return get(impl_->pos++);
}

int64_t Blob::write(const Tensor& t) {
  impl_->check_writable();
  const BlobConf& c = impl_->conf();
  if (t.dtype() != c.dtype)
    throw Error(Errc::kInvalidArgument, impl_->path + ": cannot write " + std::string(dtype_info(t.dtype()).name) +
                                            " tensors to a " + std::string(dtype_info(c.dtype).name) + " blob");
  std::optional<int64_t> n = tensors_in_shape(t.shape(), c.shape);
  if (!n)
    throw Error(Errc::kInvalidArgument, impl_->path + ": cannot write shape " + shape_to_string(t.shape()) +
                                            " to a blob of shape " + shape_to_string(c.shape) +
                                            " (give one tensor or a batch (n, *shape))");
  impl_->write_bytes(t.data(), *n);
  return *n;
}

int64_t Blob::write_raw(const void* data, int64_t n) {
  if (n < 0) throw Error(Errc::kInvalidArgument, impl_->path + ": negative tensor count");
  impl_->write_bytes(static_cast<const std::byte*>(data), n);
  return n;
}

void Blob::discard() {
  impl_->check_writable();
  impl_->writer->discard();
  impl_->pos = std::min(impl_->pos, impl_->len());
}

void Blob::truncate(std::optional<int64_t> pos) {
  Impl& m = *impl_;
  m.check_writable();
  const int64_t n = pos.value_or(m.pos);
  m.writer->truncate(n);
  m.pos = std::min(m.pos, n);
  m.set_snapshot(m.writer->commit());
}

void Blob::resize(int64_t n) {
  impl_->check_writable();
  impl_->writer->truncate(n);
  impl_->pos = std::min(impl_->pos, n);
}

void Blob::extend(const Blob& other, bool keep_order, const std::function<void(uint64_t)>& progress) {
  Impl& m = *impl_;
  const Impl& o = *other.impl_;
  m.check_writable();
  o.check_readable();
  if (&o == &m) throw Error(Errc::kInvalidArgument, m.path + ": cannot extend a blob with itself");
  const BlobConf &mc = m.conf(), &oc = o.conf();
  if (oc.dtype != mc.dtype || oc.shape != mc.shape)
    throw Error(Errc::kInvalidArgument,
                m.path + ": cannot extend a " + std::string(dtype_info(mc.dtype).name) + " " + shape_to_string(mc.shape) +
                    " blob with " + o.path + ", a " + std::string(dtype_info(oc.dtype).name) + " " +
                    shape_to_string(oc.shape) + " blob");
  // What was written before is committed first, so a failure below can roll
  // back to exactly that.
  m.set_snapshot(m.writer->commit());
  const int64_t item = mc.item_bytes, B = mc.block_size;
  auto copy_tensors = [&](const Impl& src, int64_t first, int64_t n) {
    const int64_t chunk = std::max<int64_t>(1, (int64_t{8} << 20) / item);
    std::vector<std::byte> buf(static_cast<size_t>(std::min(n, chunk) * item));
    for (int64_t i = 0; i < n; i += chunk) {
      const int64_t k = std::min(chunk, n - i);
      src.copy_items(first + i, k, buf.data());
      m.writer->write(m.writer->len(), buf.data(), k);
      if (progress) progress(static_cast<uint64_t>(k * item));
    }
  };
  try {
    const int64_t olen = o.len();
    if (keep_order || oc.block_size != B) {
      copy_tensors(o, 0, olen);
    } else {
      // tensorblob's fast path (src/store/FORMATS.md 3.6): set this blob's partial
      // last block aside, copy other's full blocks as files, then write the
      // two tails.
      const int64_t tail = m.writer->len() % B;
      std::vector<std::byte> own_tail(static_cast<size_t>(tail * item));
      m.copy_items(m.writer->len() - tail, tail, own_tail.data());
      m.writer->truncate(m.writer->len() - tail);
      const int64_t full = olen / B;
      for (int64_t k = 0; k < full; ++k) {
        o.reading([&](const BlobState& s) {
          m.writer->append_block_copy(*o.store->open_block(s, static_cast<size_t>(k)));
        });
        if (progress) progress(static_cast<uint64_t>(mc.block_bytes));
      }
      m.writer->write(m.writer->len(), own_tail.data(), tail);
      copy_tensors(o, full * B, olen - full * B);
    }
    m.pos = m.writer->len();
    m.set_snapshot(m.writer->commit());
  } catch (...) {
    m.writer->discard();
    m.pos = std::min(m.pos, m.len());
    throw;
  }
}

void Blob::flush() {
  impl_->check_writable();
  impl_->set_snapshot(impl_->writer->commit());
}

void Blob::close() {
  Impl& m = *impl_;
  if (m.closed) return;
  m.closed = true;  // even if the commit throws, the blob is unusable afterwards
  if (m.writer) {
    try {
      auto snap = m.writer->commit();
      m.set_snapshot(snap);
      if (m.record_hashes) record_blob_hashes(*snap);  // still under the writer lock
    } catch (...) {
      m.writer.reset();
      throw;
    }
    m.writer.reset();  // releases the lock
  }
}

Tensor Blob::get(int64_t index) const {
  impl_->check_readable();
  const int64_t i = impl_->normalize_index(index);
  Tensor out = Tensor::uninitialized(impl_->conf().dtype, impl_->conf().shape);
  impl_->copy_items(i, 1, out.data());
  return out;
}

SliceIndices slice_indices(int64_t len, std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step) {
  if (step == INT64_MIN) step = -INT64_MAX;  // same elements, and negating it stays defined
  // CPython's PySlice_AdjustIndices, so results match blob[start:stop:step].
  const int64_t lower = step > 0 ? 0 : -1, upper = step > 0 ? len : len - 1;
  auto adjust = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v;
    if (x < 0) x = (x < -len) ? lower : x + len;
    return std::clamp(x, lower, upper);
  };
  const int64_t a = adjust(start, step > 0 ? lower : upper), b = adjust(stop, step > 0 ? upper : lower);
  int64_t count = 0;
  if (step > 0 && b > a) count = (b - a - 1) / step + 1;
  if (step < 0 && a > b) count = (a - b - 1) / (-step) + 1;
  return {a, count, step};
}

Tensor Blob::slice(std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step) const {
  const Impl& m = *impl_;
  m.check_readable();
  if (step == 0) throw Error(Errc::kInvalidArgument, m.path + ": slice step cannot be zero");
  const auto [a, count, stride] = slice_indices(m.len(), start, stop, step);
  step = stride;
  if (step == 1) {
    Shape s = m.conf().shape;
    s.insert(s.begin(), count);
    Tensor out = Tensor::uninitialized(m.conf().dtype, std::move(s));
    m.copy_items(a, count, out.data());
    return out;
  }
  std::vector<int64_t> idx(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) idx[k] = a + k * step;
  return gather(idx);
}

Tensor Blob::gather(std::span<const int64_t> indices) const {
  const Impl& m = *impl_;
  Shape s = m.conf().shape;
  s.insert(s.begin(), static_cast<int64_t>(indices.size()));
  Tensor out = Tensor::uninitialized(m.conf().dtype, std::move(s));
  gather_into(indices, out.data());
  return out;
}

void Blob::gather_into(std::span<const int64_t> indices, void* dst) const {
  const Impl& m = *impl_;
  m.check_readable();
  m.reading([&](const BlobState& s) {
    std::vector<int64_t> idx(indices.size());
    for (size_t k = 0; k < indices.size(); ++k) idx[k] = m.normalize_index(indices[k]);
    gather_state(*m.store, s, idx, static_cast<std::byte*>(dst), m.helper_thread);
  });
}

ItemView Blob::item_view(int64_t index) const {
  const Impl& m = *impl_;
  m.check_readable();
  m.check_range(index, 1);
  return m.reading([&](const BlobState& s) { return state_item_view(*m.store, s, index); });
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
  const int64_t total = m.len() * m.conf().item_bytes;
  if (offset < 0 || n < 0 || offset > total || n > total - offset)
    throw Error(Errc::kOutOfRange, m.path + ": bytes [" + std::to_string(offset) + ", " + std::to_string(offset + n) +
                                       ") out of range for " + std::to_string(total) + " bytes of tensors");
  m.reading([&](const BlobState& s) { read_state_bytes(*m.store, s, offset, n, static_cast<std::byte*>(dst)); });
}

size_t Blob::cached_blocks() const { return impl_->store->cached_blocks(); }

std::shared_ptr<const Dataset> Blob::snapshot() const {
  std::lock_guard<std::mutex> lock(impl_->reload_mu);
  return impl_->kept.back();
}

}  // namespace tensorblob
