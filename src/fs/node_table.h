// The inode numbers the kernel holds, counted by its LOOKUP and FORGET:
// every reply that hands it a file (a lookup, a READDIRPLUS entry) counts
// one lookup, and FORGET gives them back. Memory is bounded by the kernel's
// inode cache, not by the tensor count.
//
// Two uses. It numbers the files arithmetic cannot (range files with a
// bound past Namespace::kMaxRangeBound). And a live mount asks it which
// files the kernel may have cached when a commit changes some of them, so
// it invalidates those and no others; a lookup answered from a view that a
// commit had just replaced is set aside ("late") for the refresher, which
// may otherwise miss it. Safe for concurrent use.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "namespace.h"

namespace blobfs {

class NodeTable {
 public:
  // The number of `node` (the same one while the kernel holds it), counting
  // one more lookup answered from the view of `generation` (set aside as
  // late when that view is no longer current). Only for nodes
  // Namespace::fixed_ino cannot number.
  uint64_t acquire(const Node& node, uint64_t generation);
  // The node a number acquire() handed out denotes, or nullopt once forgotten.
  std::optional<Node> find(uint64_t ino) const;
  // Counts one lookup of a fixed number, answered from the view of
  // `generation` (live mounts only).
  void count(uint64_t ino, uint64_t generation);
  // The kernel dropped `n` lookups of `ino`; at zero the number is free.
  void forget(uint64_t ino, uint64_t n);
  // Every number the kernel holds now.
  std::vector<uint64_t> held() const;
  // A commit made `generation` the current view: lookups counted from older
  // views from now on are set aside.
  void set_generation(uint64_t generation);
  // The numbers set aside since the last call.
  std::vector<uint64_t> take_late();
  size_t size() const;

 private:
  struct NodeHash {
    size_t operator()(const Node& n) const {
      return std::hash<int64_t>()(n.first) * 31 + std::hash<int64_t>()(n.last) * 7 + static_cast<size_t>(n.kind);
    }
  };
  struct Entry {
    std::optional<Node> node;  // set for acquired numbers
    uint64_t lookups = 0;
  };
  mutable std::mutex mu_;
  uint64_t next_ = Namespace::kDynamicBase;
  uint64_t generation_ = 0;
  std::unordered_map<uint64_t, Entry> by_ino_;
  std::unordered_map<Node, uint64_t, NodeHash> by_node_;
  std::vector<uint64_t> late_;
};

}  // namespace blobfs
