#include "node_table.h"

namespace blobfs {

uint64_t NodeTable::acquire(const Node& node) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_node_.find(node);
  if (it != by_node_.end()) {
    ++by_ino_[it->second].lookups;
    return it->second;
  }
  // Numbers are never reused while the mount lives (2^61 of them), so a
  // stale number in the kernel can never name another file.
  const uint64_t ino = next_++;
  by_ino_[ino] = Entry{node, 1};
  by_node_[node] = ino;
  return ino;
}

std::optional<Node> NodeTable::find(uint64_t ino) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_ino_.find(ino);
  if (it == by_ino_.end()) return std::nullopt;
  return it->second.node;
}

void NodeTable::forget(uint64_t ino, uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_ino_.find(ino);
  if (it == by_ino_.end()) return;
  if (it->second.lookups > n) {
    it->second.lookups -= n;
    return;
  }
  by_node_.erase(it->second.node);
  by_ino_.erase(it);
}

size_t NodeTable::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_ino_.size();
}

}  // namespace blobfs
