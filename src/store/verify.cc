// Integrity checks (verify.h), computed from one snapshot of a store.
#include "tensorblob/verify.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "blob_store.h"
#include "filenames.h"
#include "ragged_dataset.h"
#include "tensorblob/error.h"
#include "tensorblob/fault_guard.h"
#include "tensorblob/store.h"
#include "tensorblob/hash.h"
#include "tensorblob/store.h"

namespace tensorblob {

namespace {

// Items are read in batches of about this many bytes: copies under the
// fault guard, hashed from the copy.
constexpr uint64_t kBatchBytes = 8 << 20;

// Calls fn(i, bytes, size) for every item of `ds` in order, from copies.
template <typename F>
void for_each_item(const Dataset& ds, F&& fn) {
  std::vector<std::byte> buf;
  const int64_t n = ds.count();
  for (int64_t i = 0; i < n;) {
    int64_t j = i + 1;
    while (j < n && ds.item_offset(j + 1) - ds.item_offset(i) <= kBatchBytes) ++j;
    const uint64_t a = ds.item_offset(i), b = ds.item_offset(j);
    buf.resize(static_cast<size_t>(b - a));
    ds.read(a, buf.size(), buf.data());
    for (int64_t k = i; k < j; ++k) {
      const uint64_t x = ds.item_offset(k) - a, y = ds.item_offset(k + 1) - a;
      if (!fn(k, buf.data() + x, static_cast<size_t>(y - x))) return;
    }
    i = j;
  }
}

// Streams the dataset hash straight from the mapped data (one pass at memory
// speed); collects per-item digests too when asked.
std::string content_hash(const RaggedDataset& ds, std::vector<ItemDigest>* digests, const ProgressFn& progress) {
  ContentHasher h;
  // Items differ only in their row count: build the frame header once and
  // patch that field, which is what keeps small items near raw XXH3 speed.
  std::string frame = ds.count() ? item_frame_header(ds.npy_descr(), ds.item_shape(0)) : "";
  const size_t rows_at = ds.count() ? frame.size() - 8 * ds.item_shape(0).size() : 0;
  const uint64_t row_bytes = ds.count() ? ds.item_offset(1) / ds.start(1) : 0;
  const std::byte* mapped = ds.data().mapped();
  std::vector<std::byte> buf;
  struct Ctx {
    const RaggedDataset* ds;
    ContentHasher* h;
    std::vector<ItemDigest>* digests;
    const ProgressFn* progress;
    std::string* frame;
    size_t rows_at;
    uint64_t row_bytes;
    const std::byte* mapped;
    std::vector<std::byte>* buf;
  } ctx{&ds, &h, digests, &progress, &frame, rows_at, row_bytes, mapped, &buf};
  auto run = [](void* p) {
    auto& c = *static_cast<Ctx*>(p);
    uint64_t next_start = 0;
    for (int64_t i = 0; i < c.ds->count(); ++i) {
      const uint64_t first = next_start;
      next_start = c.ds->start(i + 1);
      const uint64_t rows = next_start - first, a = first * c.row_bytes, b = next_start * c.row_bytes;
      std::memcpy(c.frame->data() + c.rows_at, &rows, 8);  // little-endian, as every supported machine
      c.h->add_data(c.frame->data(), c.frame->size());
      const std::byte* data = c.mapped ? c.mapped + a : nullptr;
      if (!data) {
        c.buf->resize(static_cast<size_t>(b - a));
        c.ds->read(a, c.buf->size(), c.buf->data());
        data = c.buf->data();
      }
      c.h->add_data(data, b - a);
      if (c.digests) c.digests->push_back(item_digest(data, b - a));
      if (*c.progress) (*c.progress)(b - a);
    }
  };
  if (!run_fault_guarded(run, &ctx) || (mapped && fault_guard_installed() && !ds.data().reaches(ds.item_offset(ds.count()))))
    throw Error(Errc::kIo, ds.data().path() + ": data file shrank while it was read (truncated by another process?)", EIO);
  return h.finish();
}

}  // namespace

VerifyReport verify_ragged(const std::string& path, const ProgressFn& progress) {
  auto ds = open_ragged(path);
  VerifyReport r;
  r.stored = ds->meta().hash;
  r.computed = content_hash(*ds, nullptr, progress);
  r.ok = r.stored == r.computed;
  r.items_checked = ds->count();
  r.has_item_hashes = ds->item_hashes() != nullptr;
  r.item_hashes = ds->facts().item_hashes;
  r.stale_item_hashes = r.item_hashes.starts_with("stale");
  if (!r.ok && ds->item_hashes()) {
    const ItemHashes& h = *ds->item_hashes();
    for_each_item(*ds, [&](int64_t i, const std::byte* data, size_t size) {
      if (h.matches(i, data, size)) return true;
      r.first_bad = i;
      return false;
    });
  }
  return r;
}

void update_ragged_item_hashes(const std::string& path, const ProgressFn& progress) {
  auto ds = open_ragged(path);
  std::vector<ItemDigest> digests;
  std::string computed = content_hash(*ds, &digests, progress);
  if (computed != ds->meta().hash)
    throw Error(Errc::kCorrupt, ds->data().path() + ": content hash " + computed + " does not match the stored " +
                                    ds->meta().hash + "; refusing to record hashes of damaged data");
  ds->location().storage->publish(ds->location().names.hashes,
                                  ItemHashes::encode(digest_from_hex(ds->meta().hash), digests), 0644);
}

namespace {

std::shared_ptr<const BlobSnapshot> load_blob(const std::string& dir) {
  return BlobStore::get(open_storage(dir), 0, Access::kMapped)->load();
}

}  // namespace

VerifyReport verify_blob(const std::string& dir, const ProgressFn& progress) {
  auto snap = load_blob(dir);
  VerifyReport r;
  const ItemHashes* h = snap->item_hashes();
  r.has_item_hashes = h != nullptr;
  r.item_hashes = snap->facts().item_hashes;
  r.stale_item_hashes = r.item_hashes.starts_with("stale");
  // Every tensor is read, so missing or short blocks are found even without hashes.
  std::vector<ItemDigest> want;
  int64_t want_from = 0;
  for_each_item(*snap, [&](int64_t i, const std::byte* data, size_t size) {
    if (h) {
      if (i - want_from >= static_cast<int64_t>(want.size())) {
        want_from = i;
        want = h->digests(i, std::min<int64_t>(h->count() - i, 65536));
      }
      if (item_digest(data, size) != want[static_cast<size_t>(i - want_from)]) {
        r.first_bad = i;
        return false;
      }
    }
    r.items_checked = i + 1;
    if (progress) progress(size);
    return true;
  });
  r.ok = !r.first_bad;
  // Files no commit lists: what a killed writer left, or another tool's.
  std::set<std::string> listed;
  for (const auto& b : snap->state().blocks) listed.insert(b->name());
  const Storage& st = snap->store().storage();
  for (const auto& name : st.list()) {
    if (name == kConfName || name == kStatName || name == kBlobHashesName || listed.count(name)) continue;
    r.strays.push_back(name);
    if (auto info = st.stat(name)) r.stray_bytes += info->size;
  }
  std::sort(r.strays.begin(), r.strays.end());
  return r;
}

void record_blob_hashes(const BlobSnapshot& snap, const std::function<void(uint64_t)>& progress) {
  std::vector<ItemDigest> digests;
  digests.reserve(static_cast<size_t>(snap.count()));
  for_each_item(snap, [&](int64_t, const std::byte* data, size_t size) {
    digests.push_back(item_digest(data, size));
    if (progress) progress(size);
    return true;
  });
  Storage& st = snap.store().storage();
  // The sidecar belongs to exactly this commit: a writer that committed
  // meanwhile would make it accuse the new contents.
  if (st.read_small(kStatName) != snap.stat_text())
    throw Error(Errc::kBusy, snap.source() + ": the blob changed while its hashes were computed");
  st.publish(kBlobHashesName, ItemHashes::encode(snap.stat_digest(), digests), 0644);
}

void update_blob_item_hashes(const std::string& dir, const ProgressFn& progress) {
  record_blob_hashes(*load_blob(dir), progress);
}

}  // namespace tensorblob
