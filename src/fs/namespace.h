// The mount's namespace as pure arithmetic: names <-> nodes <-> inode numbers,
// and the order readdir lists them in. No per-file state: a node is a kind
// and a tensor range, computed from the name or the inode number each time,
// so memory and mount time do not grow with the tensor count. The one
// exception is a range file whose bounds exceed what an inode number can
// encode next to them (kMaxRangeBound): those get numbers from a NodeTable
// (node_table.h), held only while the kernel holds the file.
//
// Inode numbers: 1 the root, 2-4 the fixed files, 16 + 2i (+1 for .npy) the
// files of item i, bit 63 set for an encoded range, [kDynamicBase, 2^63) for
// numbers a NodeTable hands out. Items stop at kMaxMountedCount
// (presentation.h), so the three spaces never meet.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tensorblob/dataset.h"
#include "tensorblob/presentation.h"

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
  // The node an inode number outside the dynamic space denotes, or nullopt
  // if it denotes nothing here.
  std::optional<Node> from_ino(uint64_t ino) const;
  // The node's inode number where arithmetic gives one; nullopt for a range
  // with a bound past kMaxRangeBound (a NodeTable numbers those).
  static std::optional<uint64_t> fixed_ino(const Node& node);
  static bool is_dynamic_ino(uint64_t ino) { return ino >= kDynamicBase && ino < (uint64_t{1} << 63); }
  // Whether `node` is still a file here (its range within count).
  bool contains(const Node& node) const;
  // The canonical name of a node (empty for the root).
  std::string name(const Node& node) const;

  // readdir lists meta.yaml, all.bin, all.npy (if npy) and every NNNNNN.bin.
  uint64_t listed_count() const;
  Node listed(uint64_t k) const;  // k < listed_count()

  int64_t count() const { return count_; }

  // Ranges are encoded into inode numbers with 31 bits per bound.
  static constexpr int64_t kMaxRangeBound = (int64_t{1} << 31) - 1;
  static constexpr uint64_t kDynamicBase = uint64_t{3} << 61;

 private:
  std::string index_name(int64_t i) const;
  std::optional<int64_t> parse_index(std::string_view digits) const;

  int64_t count_;
  int width_;
  bool npy_;
  bool ranges_;
};

}  // namespace blobfs
