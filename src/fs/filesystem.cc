#include "filesystem.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "tensorblob/npy.h"

namespace blobfs {

Filesystem::Filesystem(std::unique_ptr<tensorblob::Dataset> dataset, const Options& options)
    : dataset_(std::move(dataset)),
      options_(options),
      names_(dataset_->count(), options.naming_width, options.npy_views && !dataset_->npy_descr().empty(),
             options.range_views),
      meta_(dataset_->meta_yaml({options.naming_width, options.npy_views, options.range_views})),
      uid_(options.uid >= 0 ? static_cast<uid_t>(options.uid) : ::getuid()),
      gid_(options.gid >= 0 ? static_cast<gid_t>(options.gid) : ::getgid()) {}

std::string Filesystem::npy_header(const Node& n) const {
  switch (n.kind) {
    case NodeKind::kItemNpy: return tensorblob::npy_header(dataset_->npy_descr(), dataset_->item_shape(n.first));
    case NodeKind::kAllNpy:
    case NodeKind::kRangeNpy: return tensorblob::npy_header(dataset_->npy_descr(), dataset_->range_shape(n.first, n.last));
    default: return "";
  }
}

uint64_t Filesystem::size(const Node& n) const {
  switch (n.kind) {
    case NodeKind::kRoot: return 0;
    case NodeKind::kMeta: return meta_.size();
    default:
      return npy_header(n).size() + dataset_->item_offset(n.last) - dataset_->item_offset(n.first);
  }
}

struct stat Filesystem::attributes(const Node& n) const {
  struct stat st {};
  st.st_ino = Namespace::ino(n);
  st.st_uid = uid_;
  st.st_gid = gid_;
  const int64_t ns = dataset_->mtime_ns();
  st.st_mtim = st.st_ctim = st.st_atim = timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
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

size_t Filesystem::read(const Node& n, uint64_t offset, size_t size, char* dst) const {
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
    uint64_t data_off = begin + (offset + done - header.size());
    if (options_.verify_on_read)  // wrong bytes must never reach the reader
      dataset_->check_items(dataset_->item_at(data_off), dataset_->item_at(data_off + (size - done) - 1) + 1);
    dataset_->read(data_off, size - done, reinterpret_cast<std::byte*>(dst + done));
  }
  return size;
}

}  // namespace blobfs
