#include "filesystem.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "tensorblob/error.h"
#include "tensorblob/item_hashes.h"
#include "tensorblob/npy.h"

namespace blobfs {

namespace {

tensorblob::NamingRules naming_of(const Options& o) { return {o.naming_width, o.npy_views, o.range_views}; }

}  // namespace

View::View(std::shared_ptr<const tensorblob::Dataset> dataset, const Options& options)
    : dataset_(std::move(dataset)),
      options_(options),
      names_(dataset_->count(), options.naming_width, options.npy_views && !dataset_->npy_descr().empty(),
             options.range_views),
      meta_(tensorblob::meta_yaml(*dataset_, naming_of(options))),
      uid_(options.uid >= 0 ? static_cast<uid_t>(options.uid) : ::getuid()),
      gid_(options.gid >= 0 ? static_cast<gid_t>(options.gid) : ::getgid()) {}

std::string View::npy_header(const Node& n) const {
  switch (n.kind) {
    case NodeKind::kItemNpy: return tensorblob::npy_header(dataset_->npy_descr(), dataset_->item_shape(n.first));
    case NodeKind::kAllNpy:
    case NodeKind::kRangeNpy: return tensorblob::npy_header(dataset_->npy_descr(), dataset_->range_shape(n.first, n.last));
    default: return "";
  }
}

uint64_t View::size(const Node& n) const {
  switch (n.kind) {
    case NodeKind::kRoot: return 0;
    case NodeKind::kMeta: return meta_.size();
    default:
      return npy_header(n).size() + dataset_->item_offset(n.last) - dataset_->item_offset(n.first);
  }
}

struct stat View::attributes(const Node& n, uint64_t ino) const {
  struct stat st {};
  st.st_ino = ino;
  st.st_uid = uid_;
  st.st_gid = gid_;
  const int64_t ns = dataset_->mtime_ns();
  st.st_mtim = st.st_ctim = st.st_atim =
      timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  st.st_blksize = 4096;
  if (n.kind == NodeKind::kRoot) {
    st.st_mode = S_IFDIR | options_.dir_mode;
    st.st_nlink = 2;
    return st;
  }
  st.st_mode = S_IFREG | options_.file_mode;
  st.st_nlink = 1;
  st.st_size = static_cast<off_t>(size(n));
  st.st_blocks = (st.st_size + 511) / 512;
  return st;
}

size_t View::read(const Node& n, uint64_t offset, size_t size, char* dst) const {
  if (n.kind == NodeKind::kRoot) return 0;
  if (n.kind == NodeKind::kMeta) {
    if (offset >= meta_.size()) return 0;
    size_t k = std::min<uint64_t>(size, meta_.size() - offset);
    std::memcpy(dst, meta_.data() + offset, k);
    return k;
  }
  const std::string header = npy_header(n);
  const uint64_t begin = dataset_->item_offset(n.first), end = dataset_->item_offset(n.last);
  const uint64_t total = header.size() + (end - begin);
  if (offset >= total) return 0;
  size = static_cast<size_t>(std::min<uint64_t>(size, total - offset));
  size_t done = 0;
  if (offset < header.size()) {
    done = std::min<size_t>(size, header.size() - offset);
    std::memcpy(dst, header.data() + offset, done);
  }
  if (done < size) {
    const uint64_t data_off = begin + (offset + done - header.size());
    auto* out = reinterpret_cast<std::byte*>(dst + done);
    if (options_.verify_on_read) dataset_->read_checked(data_off, size - done, out);  // wrong bytes never reach a reader
    else dataset_->read(data_off, size - done, out);
  }
  return size;
}

Filesystem::Filesystem(std::shared_ptr<tensorblob::Store> store, const Options& options)
    : store_(std::move(store)), options_(options) {
  auto v = std::make_shared<const View>(store_->snapshot(), options_);
  check_servable(*v);
  view_ = std::move(v);
}

void Filesystem::check_servable(const View& v) const {
  const tensorblob::Dataset& ds = v.dataset();
  if (ds.count() > tensorblob::kMaxMountedCount)
    throw tensorblob::Error(tensorblob::Errc::kInvalidArgument,
                            ds.source() + ": " + std::to_string(ds.count()) + " items are more than a mount serves (" +
                                std::to_string(tensorblob::kMaxMountedCount) + ", 2^61 - 1)");
  if (options_.verify_on_read && !ds.item_hashes())
    throw tensorblob::Error(tensorblob::Errc::kInvalidArgument,
                            ds.source() + ": verify_on_read needs current per-item hashes, and they are " +
                                ds.facts().item_hashes);
}

std::shared_ptr<const View> Filesystem::view() const {
  std::lock_guard<std::mutex> lock(mu_);
  return view_;
}

std::optional<Node> Filesystem::node_of(const View& view, uint64_t ino) const {
  if (!Namespace::is_dynamic_ino(ino)) return view.names().from_ino(ino);
  auto n = nodes_.find(ino);
  if (!n || !view.names().contains(*n)) return std::nullopt;
  return n;
}

uint64_t Filesystem::ino_for_lookup(const Node& node) const {
  if (auto ino = Namespace::fixed_ino(node)) return *ino;
  return nodes_.acquire(node);
}

}  // namespace blobfs
