// The mount's namespace as pure arithmetic: names <-> nodes <-> inode numbers,
// and the order readdir lists them in. No per-file state: a node is a kind
// and a tensor range, computed from the name or the inode number each time,
// so memory and mount time do not grow with the tensor count.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tensorblob/dataset.h"

namespace blobfs {

enum class NodeKind : uint8_t { kRoot, kMeta, kAllBin, kAllNpy, kItemBin, kItemNpy, kRangeBin, kRangeNpy };

// What a file shows: for data files, tensors [first, last) (with a .npy header
// for the *Npy kinds).
struct Node {
  NodeKind kind = NodeKind::kRoot;
  int64_t first = 0;
  int64_t last = 0;
  bool operator==(const Node&) const = default;
};

bool is_npy(NodeKind kind);

class Namespace {
 public:
  // `npy` is whether .npy views exist (config on and numpy knows the dtype).
  Namespace(int64_t count, int width, bool npy, bool ranges);

  // The node a canonical name denotes in the root, or nullopt (ENOENT).
  std::optional<Node> lookup(std::string_view name) const;
  // The node an inode number denotes, or nullopt if it denotes nothing here.
  std::optional<Node> from_ino(uint64_t ino) const;
  static uint64_t ino(const Node& node);
  // The canonical name of a node (empty for the root).
  std::string name(const Node& node) const;

  // readdir lists meta.yaml, all.bin, all.npy (if npy) and every NNNNNN.bin.
  uint64_t listed_count() const;
  Node listed(uint64_t k) const;  // k < listed_count()

  int64_t count() const { return count_; }

  // Ranges are encoded into inode numbers with 31 bits per bound.
  static constexpr int64_t kMaxRangeBound = (int64_t{1} << 31) - 1;

 private:
  std::string index_name(int64_t i) const;
  std::optional<int64_t> parse_index(std::string_view digits) const;

  int64_t count_;
  int width_;
  bool npy_;
  bool ranges_;
};

}  // namespace blobfs
