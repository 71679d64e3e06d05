#include <fcntl.h>
#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <yaml-cpp/yaml.h>

#include "tensorblob/blob.h"
#include "tensorblob/dataset.h"
#include "tensorblob/error.h"
#include "meta_yaml.h"
#include "posix_file.h"
#include "tensorblob/item_hashes.h"
#include "tensorblob/verify.h"

namespace tensorblob {

namespace {

std::string absolute(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : path;
}

// A blob's sidecar belongs to one committed state: the digest of its .stat.
ItemDigest blob_hashes_key(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("open", dir);
  ScopedFd d(fd);
  std::string text = read_small_file(fd, ".stat", dir + "/.stat");
  return item_digest(text.data(), text.size());
}

class BlobDataset final : public Dataset {
 public:
  BlobDataset(const std::string& path, size_t max_cached)
      : source_(absolute(path)), blob_(open_blob(path, max_cached)) {
    struct stat st;
    std::string stat_path = path + "/.stat";
    if (::stat(stat_path.c_str(), &st) == 0)
      mtime_ns_ = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    auto hashes = ItemHashes::open(path + "/.hashes.npy");
    if (hashes && hashes->key() == blob_hashes_key(path) && hashes->count() <= blob_.size())
      hashes_ = std::move(hashes);
    else if (hashes)
      stale_hashes_ = true;  // recorded before the blob last changed
  }

  const std::string& source() const override { return source_; }
  int64_t count() const override { return blob_.size(); }
  std::string dtype_name() const override { return std::string(dtype_info(blob_.dtype()).name); }
  std::string npy_descr() const override { return std::string(dtype_info(blob_.dtype()).typestr); }
  Shape item_shape(int64_t) const override { return blob_.shape(); }
  Shape range_shape(int64_t first, int64_t last) const override {
    Shape s = blob_.shape();
    s.insert(s.begin(), last - first);
    return s;
  }
  uint64_t item_offset(int64_t i) const override {
    return static_cast<uint64_t>(i) * static_cast<uint64_t>(blob_.item_bytes());
  }
  ItemView item_view(int64_t i) const override { return blob_.item_view(i); }
  int64_t item_at(uint64_t offset) const override {
    return static_cast<int64_t>(offset / static_cast<uint64_t>(blob_.item_bytes()));
  }
  void read(uint64_t offset, size_t size, std::byte* dst) const override {
    blob_.read_bytes(static_cast<int64_t>(offset), static_cast<int64_t>(size), dst);
  }
  void check_items(int64_t first, int64_t last) const override {
    if (!hashes_) return;
    for (int64_t i = first; i < std::min(last, hashes_->count()); ++i) {
      ItemView v = blob_.item_view(i);
      hashes_->require(i, v.data, v.size, blob_.path() + ": tensor " + std::to_string(i));
    }
  }
  int64_t mtime_ns() const override { return mtime_ns_; }
  const Blob& blob() const { return blob_; }
  const ItemHashes* hashes() const { return hashes_.get(); }
  bool stale_hashes() const { return stale_hashes_; }

  std::string meta_yaml(const NamingRules& naming) const override {
    const int64_t n = count();
    const bool npy = naming.npy && !npy_descr().empty();
    YAML::Emitter y;
    y << YAML::BeginMap;
    y << YAML::Key << "format" << YAML::Value << "tensorblob";
    y << YAML::Key << "source" << YAML::Value << source_;
    y << YAML::Key << "dtype" << YAML::Value << dtype_name();
    y << YAML::Key << "shape" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (int64_t d : blob_.shape()) y << d;
    y << YAML::EndSeq;
    y << YAML::Key << "item_bytes" << YAML::Value << blob_.item_bytes();
    y << YAML::Key << "count" << YAML::Value << n;
    y << YAML::Key << "total_bytes" << YAML::Value << item_offset(n);
    y << YAML::Key << "block_size" << YAML::Value << blob_.block_size();
    y << YAML::Key << "blocks" << YAML::Value << (n + blob_.block_size() - 1) / blob_.block_size();
    y << YAML::Key << "hash" << YAML::Value
      << (hashes_ ? "per-tensor xxh3-128 recorded for " + std::to_string(hashes_->count()) + " tensors (.hashes.npy)"
          : stale_hashes_ ? std::string("stale: .hashes.npy was recorded before the blob changed (tblob verify --update)")
                          : std::string("none recorded (tblob verify --update records per-tensor hashes)"));
    y << YAML::Key << "npy" << YAML::Value << npy_status(naming, npy_descr(), dtype_name());
    emit_naming(y, naming, n, npy, "tensor");
    y << YAML::EndMap;
    return std::string(y.c_str()) + "\n";
  }

 private:
  static Blob open_blob(const std::string& path, size_t max_cached) {
    OpenOptions o;
    o.max_cached_blocks = max_cached;
    return Blob::open(path, "r", o);
  }

  std::string source_;
  Blob blob_;
  int64_t mtime_ns_ = 0;
  std::unique_ptr<ItemHashes> hashes_;
  bool stale_hashes_ = false;
};

}  // namespace

VerifyReport verify_blob(const std::string& dir, const ProgressFn& progress) {
  BlobDataset ds(dir, 0);
  VerifyReport r;
  r.has_item_hashes = ds.hashes() != nullptr;
  r.stale_item_hashes = ds.stale_hashes();
  // Every tensor is read, so missing or short blocks are found even without hashes.
  for (int64_t i = 0; i < ds.count(); ++i) {
    ItemView v = ds.blob().item_view(i);
    if (ds.hashes() && i < ds.hashes()->count() && !ds.hashes()->matches(i, v.data, v.size)) {
      r.first_bad = i;
      break;
    }
    r.items_checked = i + 1;
    if (progress) progress(v.size);
  }
  r.ok = !r.first_bad;
  return r;
}

void update_blob_item_hashes(const std::string& dir, const ProgressFn& progress) {
  ItemDigest key = blob_hashes_key(dir);
  Blob b = Blob::open(dir, "r");
  std::vector<ItemDigest> digests;
  digests.reserve(static_cast<size_t>(b.size()));
  for (int64_t i = 0; i < b.size(); ++i) {
    ItemView v = b.item_view(i);
    digests.push_back(item_digest(v.data, v.size));
    if (progress) progress(v.size);
  }
  if (blob_hashes_key(dir) != key) throw Error(Errc::kBusy, dir + ": the blob changed while its hashes were computed");
  ItemHashes::write(dir + "/.hashes.npy", key, digests);
}

std::unique_ptr<Dataset> open_blob_dataset(const std::string& path, size_t max_cached_blocks) {
  return std::make_unique<BlobDataset>(path, max_cached_blocks);
}

}  // namespace tensorblob
