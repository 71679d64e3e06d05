// One field of a TensorDB followed as a Store, counted to the DB's committed
// rows: the field's own blob may hold rows past them (a crash between the
// fields' commits and the DB's), and no reader may see those.
#include <algorithm>
#include <mutex>

#include "tensorblob/error.h"
#include "tensorblob/store.h"
#include "tensorblob/tensordb.h"

namespace tensorblob {

namespace {

// The first `rows` items of a snapshot; everything else as the snapshot says.
class FirstRows final : public Dataset {
 public:
  FirstRows(std::shared_ptr<const Dataset> inner, int64_t rows)
      : inner_(std::move(inner)), rows_(std::min(rows, inner_->count())) {}

  const std::shared_ptr<const Dataset>& inner() const { return inner_; }

  const std::string& source() const override { return inner_->source(); }
  int64_t count() const override { return rows_; }
  std::string dtype_name() const override { return inner_->dtype_name(); }
  std::string npy_descr() const override { return inner_->npy_descr(); }
  Shape item_shape(int64_t i) const override { return inner_->item_shape(i); }
  Shape range_shape(int64_t first, int64_t last) const override { return inner_->range_shape(first, last); }
  uint64_t item_offset(int64_t i) const override { return inner_->item_offset(i); }
  int64_t item_at(uint64_t offset) const override { return inner_->item_at(offset); }
  ItemView item_view(int64_t i) const override { return inner_->item_view(i); }
  void read(uint64_t offset, size_t size, std::byte* dst) const override { inner_->read(offset, size, dst); }
  std::optional<ByteView> view_bytes(uint64_t offset, size_t size) const override {
    return inner_->view_bytes(offset, size);
  }
  const ItemHashes* item_hashes() const override { return inner_->item_hashes(); }
  int64_t mtime_ns() const override { return inner_->mtime_ns(); }
  std::string version() const override { return inner_->version() + " rows " + std::to_string(rows_); }
  DatasetFacts facts() const override {
    DatasetFacts f = inner_->facts();
    f.count = rows_;
    f.total_bytes = inner_->item_offset(rows_);
    return f;
  }
  size_t hold_files() const override { return inner_->hold_files(); }

 private:
  std::shared_ptr<const Dataset> inner_;
  int64_t rows_;
};

class FieldStore final : public Store {
 public:
  FieldStore(std::string db, std::shared_ptr<Store> inner)
      : db_(std::move(db)), inner_(std::move(inner)),
        snap_(std::make_shared<const FirstRows>(inner_->snapshot(), rows())) {}

  std::shared_ptr<const Dataset> snapshot() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return snap_;
  }

  std::optional<StoreChange> refresh() override {
    std::lock_guard<std::mutex> serial(refresh_mu_);
    inner_->refresh();
    auto fresh = std::make_shared<const FirstRows>(inner_->snapshot(), rows());
    std::shared_ptr<const FirstRows> old;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (fresh->inner() == snap_->inner() && fresh->count() == snap_->count()) return std::nullopt;
      old = snap_;
      snap_ = fresh;
    }
    return StoreChange{old, fresh, rewritten(*old, *fresh)};
  }

  std::vector<std::pair<int64_t, int64_t>> rewritten(const Dataset& before, const Dataset& after) const override {
    const auto& b = dynamic_cast<const FirstRows&>(before);
    const auto& a = dynamic_cast<const FirstRows&>(after);
    const int64_t n = std::min(b.count(), a.count());
    std::vector<std::pair<int64_t, int64_t>> out;
    for (auto [first, last] : inner_->rewritten(*b.inner(), *a.inner()))
      if (first < n) out.emplace_back(first, std::min(last, n));
    return out;
  }

  const Storage& storage() const override { return inner_->storage(); }
  std::vector<std::string> commit_names() const override { return inner_->commit_names(); }

 private:
  // The DB's committed rows as Python computes them (min of every count).
  int64_t rows() const { return TensorDB::open(db_, "r").size(); }

  std::string db_;
  std::shared_ptr<Store> inner_;
  std::mutex refresh_mu_;
  mutable std::mutex mu_;
  std::shared_ptr<const FirstRows> snap_;
};

}  // namespace

std::shared_ptr<Store> open_tensordb_field(const std::string& db, const std::string& field, const StoreOptions& options) {
  {
    TensorDB opened = TensorDB::open(db, "r");
    opened.field(field);  // throws for a name the schema lacks
  }
  return std::make_shared<FieldStore>(db, open_store(db + "/" + field, options));
}

}  // namespace tensorblob
