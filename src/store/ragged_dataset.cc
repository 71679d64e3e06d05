// Reading, verifying and recovering ragged datasets.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "meta_yaml.h"
#include "posix_file.h"
#include "tensorblob/error.h"
#include "tensorblob/fault_guard.h"
#include "tensorblob/hash.h"
#include "tensorblob/ragged.h"
#include "tensorblob/verify.h"

namespace tensorblob {

namespace {

std::string read_whole(const std::string& path) {
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/') + 1);
  std::string name = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  ScopedFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d) throw_errno("open", dir);
  return read_small_file(d.get(), name, path);
}

std::shared_ptr<const Mapping> map_file(const std::string& path, uint64_t* size) {
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) throw_errno("open", path);
  ScopedFd fd(raw);
  struct stat st;
  if (::fstat(raw, &st) != 0) throw_errno("stat", path);
  if (!S_ISREG(st.st_mode)) throw Error(Errc::kFormat, path + ": not a regular file");
  *size = static_cast<uint64_t>(st.st_size);
  return std::make_shared<const Mapping>(raw, static_cast<size_t>(st.st_size), path);
}

std::string absolute(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : path;
}

class RaggedDataset final : public Dataset {
 public:
  explicit RaggedDataset(const std::string& given) : paths_(ragged_paths(given)) {
    recover_ragged_publish(paths_);
    struct stat st;
    if (::stat(paths_.json.c_str(), &st) != 0 && ::stat(paths_.dat.c_str(), &st) != 0)
      throw Error(Errc::kNotFound, given + ": no such blob or ragged dataset (looked for " + paths_.json + ")");
    meta_ = parse_ragged_json(read_whole(paths_.json), paths_.json);
    source_ = absolute(paths_.base + ".dat");
    source_ = source_.substr(0, source_.size() - 4);
    if (::stat(paths_.json.c_str(), &st) == 0)
      mtime_ns_ = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;

    if (meta_.count > 0) {
      dtype_ = numpy_dtype_from_name(meta_.dtype_name, paths_.json);
      trail_ = *meta_.trail;
      row_bytes_ = checked_mul(static_cast<int64_t>(dtype_.itemsize), shape_elements(trail_), "row size");
      if (row_bytes_ == 0) throw FormatError(paths_.json + ": rows of trailing shape " + shape_to_string(trail_) + " hold no bytes");
    } else if (meta_.dtype_name != "None") {
      throw FormatError(paths_.json + ": an empty dataset must have dtype \"None\", got \"" + meta_.dtype_name + "\"");
    }

    // The row offsets are copied once (8 bytes an item): what is served can
    // then never change under a mount, whatever happens to the file.
    uint64_t starts_size = 0;
    {
      auto starts_map = map_file(paths_.starts, &starts_size);
      std::string_view sbytes(reinterpret_cast<const char*>(starts_map->data()), starts_map->size());
      StartsLayout layout = parse_starts_header(sbytes.substr(0, std::min<size_t>(sbytes.size(), 1 << 20)), starts_size,
                                                paths_.starts);
      if (layout.entries != meta_.count + 1)
        throw FormatError(paths_.starts + ": has " + std::to_string(layout.entries) + " entries but " + paths_.json +
                          " says count " + std::to_string(meta_.count) + " (needs count + 1)");
      starts_.resize(static_cast<size_t>(layout.entries));
      if (!guarded_copy(starts_.data(), starts_map->data() + layout.data_offset, starts_.size() * 8))
        throw Error(Errc::kIo, paths_.starts + ": file shrank while being read");
    }
    check_starts();

    uint64_t dat_size = 0;
    dat_map_ = map_file(paths_.dat, &dat_size);
    const uint64_t want = static_cast<uint64_t>(checked_mul(meta_.total_rows, row_bytes_, "data size"));
    if (dat_size != want)
      throw FormatError(paths_.dat + ": is " + std::to_string(dat_size) + " bytes but " + std::to_string(meta_.total_rows) +
                        " rows of " + std::to_string(row_bytes_) + " bytes need " + std::to_string(want));

    auto hashes = ItemHashes::open(paths_.hashes);
    if (hashes && meta_.count > 0 && hashes->key() == digest_from_hex(meta_.hash) && hashes->count() == meta_.count)
      hashes_ = std::move(hashes);
    else if (hashes)
      stale_hashes_ = true;  // written for other contents (e.g. picomap rebuilt the dataset)
  }

  const std::string& source() const override { return source_; }
  int64_t count() const override { return meta_.count; }
  std::string dtype_name() const override { return meta_.dtype_name; }
  std::string npy_descr() const override { return meta_.count ? dtype_.typestr : ""; }
  Shape item_shape(int64_t i) const override { return range_shape(i, i + 1); }
  Shape range_shape(int64_t first, int64_t last) const override {
    Shape s = trail_;
    s.insert(s.begin(), static_cast<int64_t>(start(last) - start(first)));
    return s;
  }
  uint64_t item_offset(int64_t i) const override { return start(i) * static_cast<uint64_t>(row_bytes_); }
  ItemView item_view(int64_t i) const override {
    if (i < 0 || i >= meta_.count)
      throw Error(Errc::kOutOfRange, paths_.base + ": item " + std::to_string(i) + " out of range for " +
                                         std::to_string(meta_.count) + " items");
    const uint64_t a = item_offset(i), b = item_offset(i + 1);
    const std::byte* p = dat_map_->data() + a;
    return ItemView{std::shared_ptr<const void>(dat_map_, p), p, static_cast<size_t>(b - a)};
  }
  int64_t item_at(uint64_t offset) const override {
    // The last item whose start row is at or before the offset's row.
    const uint64_t row = offset / static_cast<uint64_t>(row_bytes_);
    int64_t lo = 0, hi = meta_.count - 1;
    while (lo < hi) {
      int64_t mid = lo + (hi - lo + 1) / 2;
      if (start(mid) <= row) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
  void read(uint64_t offset, size_t size, std::byte* dst) const override {
    if (offset > dat_map_->size() || size > dat_map_->size() - offset)
      throw Error(Errc::kOutOfRange, paths_.dat + ": read past the end");
    if (size && !copy_from_mapped_file(dst, dat_map_->data() + offset, size, AT_FDCWD, paths_.dat.c_str(),
                                       offset + size))
      throw Error(Errc::kIo, paths_.dat + ": data file shrank while mapped (truncated by another process?)");
  }
  void check_items(int64_t first, int64_t last) const override {
    if (!hashes_) return;
    for (int64_t i = first; i < last; ++i) {
      uint64_t a = item_offset(i), b = item_offset(i + 1);
      hashes_->require(i, dat_map_->data() + a, b - a, paths_.dat + ": item " + std::to_string(i));
    }
  }
  int64_t mtime_ns() const override { return mtime_ns_; }

  std::string meta_yaml(const NamingRules& naming) const override {
    const bool npy = naming.npy && !npy_descr().empty();
    YAML::Emitter y;
    y << YAML::BeginMap;
    y << YAML::Key << "format" << YAML::Value << "picomap (ragged)";
    y << YAML::Key << "source" << YAML::Value << source_;
    y << YAML::Key << "dtype" << YAML::Value << meta_.dtype_name;
    if (meta_.count) y << YAML::Key << "typestr" << YAML::Value << dtype_.typestr;
    y << YAML::Key << "trail_shape" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (int64_t d : trail_) y << d;
    y << YAML::EndSeq;
    y << YAML::Key << "item_shape" << YAML::Value << "(n_i, *trail_shape), n_i >= 1 rows per item";
    y << YAML::Key << "count" << YAML::Value << meta_.count;
    y << YAML::Key << "total_rows" << YAML::Value << meta_.total_rows;
    y << YAML::Key << "row_bytes" << YAML::Value << row_bytes_;
    y << YAML::Key << "total_bytes" << YAML::Value << item_offset(meta_.count);
    y << YAML::Key << "hash" << YAML::Value << meta_.hash;
    y << YAML::Key << "item_hashes" << YAML::Value
      << (hashes_ ? "per-item xxh3-128 in " + paths_.hashes
                  : stale_hashes_ ? "stale: " + paths_.hashes + " belongs to other contents (tblob verify --update)"
                                  : std::string("none (tblob verify --update records them)"));
    y << YAML::Key << "npy" << YAML::Value << npy_status(naming, npy_descr(), meta_.dtype_name);
    emit_naming(y, naming, meta_.count, npy, "item");
    y << YAML::EndMap;
    return std::string(y.c_str()) + "\n";
  }

  // For verify: the mapped data, the starts, the typestr.
  const std::byte* data() const { return dat_map_->data(); }
  uint64_t start(int64_t i) const { return starts_[static_cast<size_t>(i)]; }
  const RaggedMeta& meta() const { return meta_; }
  const RaggedPaths& paths() const { return paths_; }
  const ItemHashes* hashes() const { return hashes_.get(); }
  bool stale_hashes() const { return stale_hashes_; }

 private:
  // What picomap does not check (FORMATS.md 2.9): starts from 0, never
  // decreasing, every item at least one row, ending at total_rows.
  void check_starts() const {
    if (start(0) != 0) throw FormatError(paths_.starts + ": first entry is " + std::to_string(start(0)) + ", not 0");
    for (int64_t i = 0; i < meta_.count; ++i)
      if (start(i + 1) <= start(i))
        throw FormatError(paths_.starts + ": entries " + std::to_string(i) + " and " + std::to_string(i + 1) + " (" +
                          std::to_string(start(i)) + ", " + std::to_string(start(i + 1)) +
                          ") do not increase: item " + std::to_string(i) + " would have no rows");
    if (start(meta_.count) != static_cast<uint64_t>(meta_.total_rows))
      throw FormatError(paths_.starts + ": last entry " + std::to_string(start(meta_.count)) + " disagrees with " +
                        paths_.json + " total_rows " + std::to_string(meta_.total_rows));
  }

  RaggedPaths paths_;
  RaggedMeta meta_;
  std::string source_;
  NumpyDType dtype_;
  Shape trail_;
  int64_t row_bytes_ = 0;
  std::shared_ptr<const Mapping> dat_map_;
  std::vector<uint64_t> starts_;  // little-endian on disk, as on every supported machine
  std::unique_ptr<ItemHashes> hashes_;
  bool stale_hashes_ = false;
  int64_t mtime_ns_ = 0;
};

// Streams the dataset hash; collects per-item digests too when asked.
std::string content_hash(const RaggedDataset& ds, std::vector<ItemDigest>* digests, const ProgressFn& progress) {
  ContentHasher h;
  // Items differ only in their row count: build the frame header once and
  // patch that field, which is what keeps small items near raw XXH3 speed.
  std::string frame = ds.count() ? item_frame_header(ds.npy_descr(), ds.item_shape(0)) : "";
  const size_t rows_at = ds.count() ? frame.size() - 8 * ds.item_shape(0).size() : 0;
  const uint64_t row_bytes = ds.count() ? ds.item_offset(1) / ds.start(1) : 0;
  uint64_t next_start = 0;
  for (int64_t i = 0; i < ds.count(); ++i) {
    const uint64_t first = next_start;
    next_start = ds.start(i + 1);
    const uint64_t rows = next_start - first, a = first * row_bytes, b = next_start * row_bytes;
    std::memcpy(frame.data() + rows_at, &rows, 8);  // little-endian, as every supported machine
    h.add_data(frame.data(), frame.size());
    h.add_data(ds.data() + a, b - a);
    if (digests) digests->push_back(item_digest(ds.data() + a, b - a));
    if (progress) progress(b - a);
  }
  return h.finish();
}

}  // namespace

std::unique_ptr<Dataset> open_ragged_dataset(const std::string& path) { return std::make_unique<RaggedDataset>(path); }

void recover_ragged_publish(const RaggedPaths& p) {
  struct stat st;
  if (::stat(p.publish.c_str(), &st) != 0) return;
  // Every temporary named here was complete and synced before the intent was
  // written, so finishing the renames yields exactly the new dataset.
  for (const std::string* final_path : {&p.hashes, &p.dat, &p.starts, &p.json}) {
    std::string tmp = *final_path + ".tmp";
    if (::stat(tmp.c_str(), &st) == 0 && ::rename(tmp.c_str(), final_path->c_str()) != 0) throw_errno("rename", tmp);
  }
  std::string dir = p.base.find('/') == std::string::npos ? "." : p.base.substr(0, p.base.rfind('/') + 1);
  ScopedFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d) ::fsync(d.get());
  if (::unlink(p.publish.c_str()) != 0 && errno != ENOENT) throw_errno("unlink", p.publish);
  if (d) ::fsync(d.get());
}

VerifyReport verify_ragged(const std::string& path, const ProgressFn& progress) {
  RaggedDataset ds(path);
  VerifyReport r;
  r.stored = ds.meta().hash;
  r.computed = content_hash(ds, nullptr, progress);
  r.ok = r.stored == r.computed;
  r.items_checked = ds.count();
  r.has_item_hashes = ds.hashes() != nullptr;
  r.stale_item_hashes = ds.stale_hashes();
  if (!r.ok && ds.hashes()) {
    for (int64_t i = 0; i < ds.count() && !r.first_bad; ++i) {
      uint64_t a = ds.item_offset(i), b = ds.item_offset(i + 1);
      if (!ds.hashes()->matches(i, ds.data() + a, b - a)) r.first_bad = i;
    }
  }
  return r;
}

void update_ragged_item_hashes(const std::string& path, const ProgressFn& progress) {
  RaggedDataset ds(path);
  std::vector<ItemDigest> digests;
  std::string computed = content_hash(ds, &digests, progress);
  if (computed != ds.meta().hash)
    throw Error(Errc::kCorrupt, ds.paths().dat + ": content hash " + computed + " does not match the stored " +
                                    ds.meta().hash + "; refusing to record hashes of damaged data");
  ItemHashes::write(ds.paths().hashes, digest_from_hex(ds.meta().hash), digests);
}

}  // namespace tensorblob
