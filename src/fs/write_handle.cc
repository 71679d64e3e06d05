#include "write_handle.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "tensorblob/error.h"
#include "tensorblob/npy.h"

namespace blobfs {

// --- Staging -------------------------------------------------------------

Staging::Staging(std::shared_ptr<tensorblob::Storage> dir, std::string name) : dir_(std::move(dir)), name_(std::move(name)) {
  dir_->remove(name_);
  out_ = dir_->create(name_, 0600);
}

Staging::~Staging() {
  out_.reset();
  try {
    dir_->remove(name_);
  } catch (...) {
  }
}

uint64_t Staging::add(const void* data, size_t n) {
  const uint64_t at = size_;
  out_->write(at, data, n);
  size_ += n;
  return at;
}

void Staging::read(uint64_t at, size_t n, void* dst) const {
  // A fresh descriptor each time keeps this simple; commits read large
  // runs, so the open is amortised.
  dir_->open(name_, tensorblob::Access::kPread)->read(at, n, dst);
}

// --- WriteHandle ---------------------------------------------------------

namespace {

int64_t tensors_of(const Node& n, const BlobShape& b) {
  return n.kind == NodeKind::kAllBin || n.kind == NodeKind::kAllNpy ? b.count : n.last - n.first;
}

// The shape a .npy of `tensors` tensors declares: one tensor's own shape
// for a tensor file, (tensors, *shape) otherwise.
tensorblob::Shape npy_shape(const Node& n, const BlobShape& b, int64_t tensors) {
  if (n.kind == NodeKind::kItemNpy) return b.shape;
  tensorblob::Shape s = b.shape;
  s.insert(s.begin(), tensors);
  return s;
}

}  // namespace

WriteHandle::WriteHandle(Node node, const BlobShape& blob, bool truncated, bool created, std::unique_ptr<Staging> staging)
    : node_(node), blob_(blob), truncated_(truncated || created), created_(created), staging_(std::move(staging)) {
  header_ = npy() && !created_ ? header_of(tensors_of(node_, blob_)).size() : 0;
  base_size_ = size_ =
      truncated_ ? 0 : header_ + static_cast<uint64_t>(tensors_of(node_, blob_) * blob_.item_bytes);
}

std::string WriteHandle::header_of(int64_t tensors) const {
  return tensorblob::npy_header(blob_.typestr, npy_shape(node_, blob_, tensors));
}

void WriteHandle::committed(const BlobShape& now) {
  blob_ = now;
  extents_.clear();
  dirty_ = false;
  if (created_) {  // committed: the new tensor exists now
    created_ = false;
    node_.last = node_.first + 1;
  }
  truncated_ = false;
  header_ = npy() ? header_of(tensors_of(node_, blob_)).size() : 0;
  base_size_ = size_ = header_ + static_cast<uint64_t>(tensors_of(node_, blob_) * blob_.item_bytes);
}

int WriteHandle::write(uint64_t offset, const void* data, size_t n) {
  if (n == 0) return 0;
  if (all() && append_) offset = size_;
  if (all()) {
    if (offset > size_) return EINVAL;  // a hole past the end would be tensors of nothing
  } else {
    // A file of fixed size; one written from scratch may carry a .npy header
    // a little longer than ours (another numpy's padding): checked at commit.
    const uint64_t limit = (npy() ? header_of(node_.last - node_.first).size() : 0) +
                           static_cast<uint64_t>((node_.last - node_.first) * blob_.item_bytes) +
                           (truncated_ && npy() ? 4096 : 0);
    if (offset + n > limit) return EFBIG;
  }
  const uint64_t staged = staging_->add(data, n);
  const uint64_t end = offset + n;
  // Later writes win: cut what they overlap out of earlier extents.
  auto it = extents_.upper_bound(offset);
  if (it != extents_.begin()) {
    auto prev = std::prev(it);
    const uint64_t pend = prev->first + prev->second.length;
    if (pend > offset) {
      if (pend > end)  // the new write splits it: keep its tail
        extents_[end] = Extent{pend - end, prev->second.staged + (end - prev->first)};
      prev->second.length = offset - prev->first;
      if (prev->second.length == 0) extents_.erase(prev);
    }
  }
  for (it = extents_.lower_bound(offset); it != extents_.end() && it->first < end;) {
    const uint64_t iend = it->first + it->second.length;
    if (iend > end) extents_[end] = Extent{iend - end, it->second.staged + (end - it->first)};
    it = extents_.erase(it);
  }
  // Sequential writes grow one extent rather than adding one each.
  it = extents_.lower_bound(offset);
  if (it != extents_.begin()) {
    auto prev = std::prev(it);
    if (prev->first + prev->second.length == offset && prev->second.staged + prev->second.length == staged) {
      prev->second.length += n;
      size_ = std::max(size_, end);
      dirty_ = true;
      return 0;
    }
  }
  extents_[offset] = Extent{n, staged};
  size_ = std::max(size_, end);
  dirty_ = true;
  return 0;
}

bool WriteHandle::covered(uint64_t from, uint64_t to) const {
  uint64_t at = from;
  for (auto it = extents_.upper_bound(from); at < to;) {
    if (it != extents_.begin()) {
      auto prev = std::prev(it);
      if (prev->first <= at && prev->first + prev->second.length > at) {
        at = prev->first + prev->second.length;
        continue;
      }
    }
    if (it == extents_.end() || it->first > at) return false;
    ++it;
  }
  return true;
}

void WriteHandle::read_file(uint64_t offset, size_t n, std::byte* dst, const BlobReader& committed) const {
  uint64_t at = offset;
  const uint64_t end = offset + n;
  auto it = extents_.upper_bound(at);
  if (it != extents_.begin()) --it;
  while (at < end) {
    // The extent holding `at`, if any; else the gap up to the next one.
    while (it != extents_.end() && it->first + it->second.length <= at) ++it;
    if (it != extents_.end() && it->first <= at) {
      const uint64_t k = std::min(end, it->first + it->second.length) - at;
      staging_->read(it->second.staged + (at - it->first), static_cast<size_t>(k), dst + (at - offset));
      at += k;
      continue;
    }
    const uint64_t gap_end = std::min(end, it != extents_.end() ? it->first : end);
    // Not written: the committed file where there is one, else zeros.
    uint64_t from = at;
    const uint64_t committed_end = std::min(gap_end, base_size_);
    if (from < committed_end) {
      if (from < header_) {
        const std::string h = header_of(tensors_of(node_, blob_));
        const uint64_t k = std::min(committed_end, header_) - from;
        std::memcpy(dst + (from - offset), h.data() + from, static_cast<size_t>(k));
        from += k;
      }
      if (from < committed_end) {
        const uint64_t blob_at = static_cast<uint64_t>(node_.first * blob_.item_bytes) + (from - header_);
        committed(blob_at, static_cast<size_t>(committed_end - from), dst + (from - offset));
        from = committed_end;
      }
    }
    if (from < gap_end) std::memset(dst + (from - offset), 0, static_cast<size_t>(gap_end - from));
    at = gap_end;
  }
}

uint64_t WriteHandle::data_start() const {
  if (!npy()) return 0;
  if (!truncated_) return header_;
  // Written from scratch: the header the writer wrote says where data starts.
  std::string head(static_cast<size_t>(std::min<uint64_t>(size_, 65536)), '\0');
  read_file(0, head.size(), reinterpret_cast<std::byte*>(head.data()), [](uint64_t, size_t, std::byte*) {});
  auto len = tensorblob::npy_header_length(head, "");
  if (!len || *len > head.size()) return UINT64_MAX;
  return tensorblob::parse_npy_header(head.substr(0, *len), "").data_offset;
}

int WriteHandle::plan(const BlobShape& now, WritePlan& out) const {
  out = WritePlan{};
  const int64_t item = blob_.item_bytes;
  if (!dirty_ && !truncated_) return 0;
  uint64_t start = 0;
  try {
    start = data_start();
  } catch (const tensorblob::Error&) {
    return EINVAL;  // not a .npy header
  }
  if (start == UINT64_MAX) return EINVAL;
  if (npy()) {
    if (truncated_) {
      // The header must describe exactly what the blob stores.
      std::string head(static_cast<size_t>(start), '\0');
      read_file(0, head.size(), reinterpret_cast<std::byte*>(head.data()), [](uint64_t, size_t, std::byte*) {});
      tensorblob::NpyHeader h;
      try {
        h = tensorblob::parse_npy_header(head, "");
      } catch (const tensorblob::Error&) {
        return EINVAL;
      }
      const tensorblob::Shape shape = npy_shape(node_, blob_, node_.last - node_.first);
      // A tensor file also takes a batch of one, (1, *shape).
      tensorblob::Shape batch_of_one = blob_.shape;
      batch_of_one.insert(batch_of_one.begin(), 1);
      const bool shape_ok = h.shape == shape || (node_.kind == NodeKind::kItemNpy && h.shape == batch_of_one);
      if (h.descr != blob_.typestr || h.fortran_order || !shape_ok) return EINVAL;
    } else if (!extents_.empty() && extents_.begin()->first < header_) {
      // Written in place: the header may be written again, not changed.
      const std::string ours = header_of(tensors_of(node_, blob_));
      std::string got(static_cast<size_t>(header_), '\0');
      read_file(0, got.size(), reinterpret_cast<std::byte*>(got.data()), [](uint64_t, size_t, std::byte*) {});
      if (got != ours) return EINVAL;
    }
  }
  if (created_) {
    if (size_ != start + static_cast<uint64_t>(item)) return EINVAL;  // exactly one tensor
    if (now.count != node_.first) return EEXIST;                       // another commit took this index
    out.append = 1;
    out.append_at = node_.first;
    return 0;
  }
  if (all()) {
    if (truncated_) {
      if (size_ % static_cast<uint64_t>(item)) return EINVAL;
      out.replace = true;
      out.append = static_cast<int64_t>(size_ / static_cast<uint64_t>(item));
      return 0;
    }
    if ((size_ - base_size_) % static_cast<uint64_t>(item)) return EINVAL;  // a partial tensor at the end
    out.append = static_cast<int64_t>((size_ - base_size_) / static_cast<uint64_t>(item));
  } else if (truncated_ && size_ != start + static_cast<uint64_t>((node_.last - node_.first) * item)) {
    return EINVAL;  // cp left a file that is not exactly the tensors it names
  }
  // The tensors written below the committed size.
  const uint64_t limit = all() ? base_size_ : size_;
  int64_t lo = INT64_MAX, hi = -1;
  for (const auto& [at, e] : extents_) {
    const uint64_t a = std::max(at, start), b = std::min(at + e.length, limit);
    if (a >= b) continue;
    lo = std::min<int64_t>(lo, static_cast<int64_t>((a - start) / static_cast<uint64_t>(item)));
    hi = std::max<int64_t>(hi, static_cast<int64_t>((b - start - 1) / static_cast<uint64_t>(item)));
  }
  if (truncated_) lo = 0, hi = node_.last - node_.first - 1;
  if (hi >= lo) {
    out.first = node_.first + lo;
    out.count = hi - lo + 1;
    if (out.first + out.count > now.count) return ENOENT;  // cut by a commit since
  }
  return 0;
}

void WriteHandle::rewritten(int64_t first, int64_t n, std::byte* dst, const BlobReader& committed) const {
  const uint64_t start = data_start();
  read_file(start + static_cast<uint64_t>((first - node_.first) * blob_.item_bytes),
            static_cast<size_t>(n * blob_.item_bytes), dst, committed);
}

void WriteHandle::appended(int64_t k, int64_t n, std::byte* dst) const {
  const uint64_t from = (created_ ? data_start() : base_size_) + static_cast<uint64_t>(k * blob_.item_bytes);
  read_file(from, static_cast<size_t>(n * blob_.item_bytes), dst, [](uint64_t, size_t, std::byte*) {});
}

}  // namespace blobfs
