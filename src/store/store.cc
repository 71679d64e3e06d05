// Opening what a path names, and following it through its commits.
#include "tensorblob/store.h"

#include <sys/stat.h>

#include <mutex>

#include "blob_store.h"
#include "filenames.h"
#include "ragged_dataset.h"
#include "tensorblob/error.h"
#include "tensorblob/ragged.h"

namespace tensorblob {

namespace {

class BlobHandle final : public Store {
 public:
  explicit BlobHandle(std::shared_ptr<BlobStore> store) : store_(std::move(store)), snap_(store_->load()) {}

  std::shared_ptr<const Dataset> snapshot() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return snap_;
  }

  std::optional<StoreChange> refresh() override {
    std::lock_guard<std::mutex> serial(refresh_mu_);
    std::shared_ptr<const BlobSnapshot> newest = store_->load();
    std::shared_ptr<const BlobSnapshot> old;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (newest == snap_) return std::nullopt;
      old = snap_;
      snap_ = newest;
    }
    return StoreChange{old, newest, rewritten_tensors(old->state(), newest->state())};
  }

  std::vector<std::pair<int64_t, int64_t>> rewritten(const Dataset& before, const Dataset& after) const override {
    return rewritten_tensors(dynamic_cast<const BlobSnapshot&>(before).state(),
                             dynamic_cast<const BlobSnapshot&>(after).state());
  }

  const Storage& storage() const override { return store_->storage(); }
  std::vector<std::string> commit_names() const override { return {kStatName, kConfName}; }

 private:
  std::shared_ptr<BlobStore> store_;
  std::mutex refresh_mu_;
  mutable std::mutex mu_;
  std::shared_ptr<const BlobSnapshot> snap_;
};

// Items both datasets have whose bytes may differ. With per-item hashes on
// both sides the answer is exact; without, a dataset with a new content hash
// may differ anywhere.
std::vector<std::pair<int64_t, int64_t>> rewritten_items(const RaggedDataset& before, const RaggedDataset& after) {
  std::vector<std::pair<int64_t, int64_t>> out;
  const int64_t n = std::min(before.count(), after.count());
  if (n == 0 || before.meta().hash == after.meta().hash) return out;
  const ItemHashes *hb = before.item_hashes(), *ha = after.item_hashes();
  if (!hb || !ha || before.facts().row_bytes != after.facts().row_bytes || before.dtype_name() != after.dtype_name()) {
    out.emplace_back(0, n);
    return out;
  }
  constexpr int64_t kChunk = 65536;
  for (int64_t i = 0; i < n; i += kChunk) {
    const int64_t k = std::min(kChunk, n - i);
    std::vector<ItemDigest> db = hb->digests(i, k), da = ha->digests(i, k);
    for (int64_t j = 0; j < k; ++j) {
      const int64_t item = i + j;
      if (db[j] == da[j] && before.item_offset(item) == after.item_offset(item) &&
          before.item_offset(item + 1) == after.item_offset(item + 1))
        continue;
      if (!out.empty() && out.back().second == item) out.back().second = item + 1;
      else out.emplace_back(item, item + 1);
    }
  }
  return out;
}

class RaggedHandle final : public Store {
 public:
  RaggedHandle(const std::string& given, const S3Options& s3)
      : given_(given), loc_(locate_ragged(given, s3)), snap_(std::make_shared<const RaggedDataset>(loc_, given_)) {}

  std::shared_ptr<const Dataset> snapshot() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return snap_;
  }

  std::optional<StoreChange> refresh() override {
    std::lock_guard<std::mutex> serial(refresh_mu_);
    std::shared_ptr<const RaggedDataset> old = current();
    const Storage& st = *loc_.storage;
    const auto dat = st.stat(loc_.names.dat), starts = st.stat(loc_.names.starts), json = st.stat(loc_.names.json);
    const bool same = !st.stat(loc_.names.publish) && dat && *dat == old->data_info() && starts &&
                      *starts == old->starts_info() && json == old->json_info();
    if (same) return std::nullopt;
    auto fresh = std::make_shared<const RaggedDataset>(loc_, given_);  // throws if damaged: the old one stays
    {
      std::lock_guard<std::mutex> lock(mu_);
      snap_ = fresh;
    }
    return StoreChange{old, fresh, rewritten_items(*old, *fresh)};
  }

  std::vector<std::pair<int64_t, int64_t>> rewritten(const Dataset& before, const Dataset& after) const override {
    return rewritten_items(dynamic_cast<const RaggedDataset&>(before), dynamic_cast<const RaggedDataset&>(after));
  }

  const Storage& storage() const override { return *loc_.storage; }
  std::vector<std::string> commit_names() const override {
    return {loc_.names.json, loc_.names.dat, loc_.names.starts, loc_.names.publish};
  }

 private:
  std::shared_ptr<const RaggedDataset> current() const {
    std::lock_guard<std::mutex> lock(mu_);
    return snap_;
  }

  std::string given_;
  RaggedLocation loc_;
  std::mutex refresh_mu_;
  mutable std::mutex mu_;
  std::shared_ptr<const RaggedDataset> snap_;
};

}  // namespace

bool Store::moved_past(const Dataset& old) {
  try {
    refresh();
  } catch (const Error&) {
    return false;  // the new state is damaged: the reader keeps its error
  }
  return snapshot().get() != &old;
}

std::shared_ptr<Storage> open_storage(const std::string& dir, const S3Options& s3) {
  return is_s3_url(dir) ? open_s3_storage(dir, s3) : open_posix_storage(dir);
}

namespace {

// What a class name in a blob's .conf makes it. A damaged .conf still names
// a blob, whose open then says what is wrong with it.
StoreKind kind_from_conf(const std::string& conf_text) {
  return conf_text.find("\"TensorDB\"") != std::string::npos ? StoreKind::kTensorDB : StoreKind::kBlob;
}

StoreKind s3_store_kind(const std::string& url, const S3Options& s3) {
  auto dir = open_s3_storage(url, s3);
  if (dir->stat(kConfName)) {
    try {
      return kind_from_conf(dir->read_small(kConfName, 1 << 20));
    } catch (const Error&) {
      return StoreKind::kBlob;
    }
  }
  if (dir->stat(kStatName)) return StoreKind::kBlob;  // damaged: no .conf
  const RaggedLocation loc = locate_ragged(url, s3);
  if (loc.storage->stat(loc.names.json) || loc.storage->stat(loc.names.dat)) return StoreKind::kRagged;
  return dir->list().empty() ? StoreKind::kNone : StoreKind::kDirectory;
}

}  // namespace

StoreKind store_kind(const std::string& path, const S3Options& s3) {
  if (is_s3_url(path)) return s3_store_kind(path, s3);
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    const std::string conf = path + "/" + kConfName;
    struct stat cst;
    // A .stat without its .conf is a damaged blob (its open says so), not a
    // data directory to walk into.
    if (::lstat(conf.c_str(), &cst) != 0)
      return ::lstat((path + "/" + kStatName).c_str(), &cst) == 0 ? StoreKind::kBlob : StoreKind::kDirectory;
    try {
      return kind_from_conf(read_regular_file(conf, 1 << 20));
    } catch (const Error&) {
      return StoreKind::kBlob;
    }
  }
  const RaggedPaths p = ragged_paths(path);
  if (::lstat(p.json.c_str(), &st) == 0 || ::lstat(p.dat.c_str(), &st) == 0) return StoreKind::kRagged;
  return StoreKind::kNone;
}

std::shared_ptr<Store> open_store(const std::string& path, const StoreOptions& options) {
  switch (store_kind(path, options.s3)) {
    case StoreKind::kBlob:
    case StoreKind::kTensorDB:  // the blob's load says what it is
    case StoreKind::kDirectory:
      return std::make_shared<BlobHandle>(
          BlobStore::get(open_storage(path, options.s3), options.max_cached_blocks, options.access));
    case StoreKind::kRagged:
    case StoreKind::kNone:
      break;
  }
  return std::make_shared<RaggedHandle>(path, options.s3);
}

std::shared_ptr<const Dataset> open_dataset(const std::string& path, const StoreOptions& options) {
  return open_store(path, options)->snapshot();
}

}  // namespace tensorblob
