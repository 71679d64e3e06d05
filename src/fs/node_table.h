// Inode numbers for the files arithmetic cannot number (range files with a
// bound past Namespace::kMaxRangeBound), held as long as the kernel holds
// them: every reply that hands the kernel such a file counts one lookup, and
// FORGET gives them back. Memory is bounded by the kernel's inode cache,
// not by the tensor count. Safe for concurrent use.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "namespace.h"

namespace blobfs {

class NodeTable {
 public:
  // The number of `node` (the same one while the kernel holds it), counting
  // one more lookup.
  uint64_t acquire(const Node& node);
  // The node a number handed out denotes, or nullopt once forgotten.
  std::optional<Node> find(uint64_t ino) const;
  // The kernel dropped `n` lookups of `ino`; at zero the number is free.
  void forget(uint64_t ino, uint64_t n);
  size_t size() const;

 private:
  struct NodeHash {
    size_t operator()(const Node& n) const {
      return std::hash<int64_t>()(n.first) * 31 + std::hash<int64_t>()(n.last) * 7 + static_cast<size_t>(n.kind);
    }
  };
  struct Entry {
    Node node;
    uint64_t lookups;
  };
  mutable std::mutex mu_;
  uint64_t next_ = Namespace::kDynamicBase;
  std::unordered_map<uint64_t, Entry> by_ino_;
  std::unordered_map<Node, uint64_t, NodeHash> by_node_;
};

}  // namespace blobfs
