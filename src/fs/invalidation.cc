#include "invalidation.h"

#include <algorithm>

#include "filesystem.h"

namespace blobfs {

namespace {

constexpr int64_t kPage = 4096;

int64_t page_floor(uint64_t x) { return static_cast<int64_t>(x / kPage * kPage); }

bool overlaps(int64_t first, int64_t last, const std::vector<std::pair<int64_t, int64_t>>& ranges) {
  for (const auto& [a, b] : ranges)
    if (a < last && first < b) return true;
  return false;
}

// The byte ranges of the concatenation that rewritten items occupy, shifted
// by `header`, as page-aligned inode invalidations.
void rewritten_pages(Invalidation& out, uint64_t ino, const tensorblob::Dataset& ds, uint64_t header,
                     const std::vector<std::pair<int64_t, int64_t>>& rewritten) {
  for (const auto& [a, b] : rewritten) {
    const int64_t from = page_floor(header + ds.item_offset(a));
    const uint64_t to = header + ds.item_offset(b);
    out.inodes.push_back({ino, from, static_cast<int64_t>(to) - from});
  }
}

}  // namespace

Invalidation plan_invalidation(const View& before, const View& after,
                               const std::vector<std::pair<int64_t, int64_t>>& rewritten,
                               const std::vector<std::pair<uint64_t, Node>>& held) {
  Invalidation out;
  const tensorblob::Dataset &old_ds = before.dataset(), &new_ds = after.dataset();
  const int64_t old_n = old_ds.count(), new_n = new_ds.count();
  // A store whose items changed kind (dtype, shape, or .npy views coming or
  // going) shows other files altogether: everything the kernel holds goes.
  const bool reshaped = old_ds.npy_descr() != new_ds.npy_descr() || old_ds.dtype_name() != new_ds.dtype_name() ||
                        (old_n && new_n && old_ds.item_shape(0).size() != new_ds.item_shape(0).size()) ||
                        before.names().listed_count() - static_cast<uint64_t>(old_n) !=
                            after.names().listed_count() - static_cast<uint64_t>(new_n);
  const Node meta{NodeKind::kMeta};
  const uint64_t root_ino = *Namespace::fixed_ino(Node{NodeKind::kRoot});
  if (old_n != new_n || reshaped) out.inodes.push_back({root_ino, 0, 0});  // attributes and the cached listing  // attributes and the cached listing
  if (before.size(meta) != after.size(meta) || reshaped || old_n != new_n || !rewritten.empty() ||
      old_ds.version() != new_ds.version())
    out.inodes.push_back({*Namespace::fixed_ino(meta), 0, 0});

  for (const auto& [ino, node] : held) {
    if (node.kind == NodeKind::kRoot || node.kind == NodeKind::kMeta) continue;
    const std::string name = before.names().name(node);
    const bool exists = !reshaped && after.names().contains(node) &&
                        (node.kind == NodeKind::kAllBin || node.kind == NodeKind::kAllNpy || node.last <= new_n);
    if (!exists) {
      // Gone: its name must not be found again, its pages must not be read.
      out.entries.push_back({root_ino, name});
      out.inodes.push_back({ino, 0, 0});
      continue;
    }
    if (node.kind == NodeKind::kAllBin || node.kind == NodeKind::kAllNpy) {
      const Node old_all{node.kind, 0, old_n}, new_all{node.kind, 0, new_n};
      const uint64_t old_header = before.npy_header(old_all).size(), new_header = after.npy_header(new_all).size();
      if (old_header != new_header) {  // the data moved: every page changes
        out.inodes.push_back({ino, 0, 0});
        continue;
      }
      if (old_header && old_n != new_n) out.inodes.push_back({ino, 0, static_cast<int64_t>(old_header)});  // its shape
      const uint64_t old_size = before.size(old_all), new_size = after.size(new_all);
      if (old_size != new_size) out.inodes.push_back({ino, page_floor(std::min(old_size, new_size)), 0});  // tail, size
      rewritten_pages(out, ino, new_ds, new_header, rewritten);
      continue;
    }
    // An item or a range file: rewritten items change its bytes (and, for a
    // ragged dataset, maybe its size).
    if (overlaps(node.first, node.last, rewritten)) out.inodes.push_back({ino, 0, 0});
  }
  return out;
}

}  // namespace blobfs
