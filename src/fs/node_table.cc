#include "node_table.h"

#include <utility>

namespace blobfs {

uint64_t NodeTable::acquire(const Node& node, uint64_t generation) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t ino;
  auto it = by_node_.find(node);
  if (it != by_node_.end()) {
    ino = it->second;
    ++by_ino_[ino].lookups;
  } else {
    // Numbers are never reused while the mount lives (2^61 of them), so a
    // stale number in the kernel can never name another file.
    ino = next_++;
    by_ino_[ino] = Entry{node, 1};
    by_node_[node] = ino;
  }
  if (generation != generation_) late_.push_back(ino);
  return ino;
}

std::optional<Node> NodeTable::find(uint64_t ino) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_ino_.find(ino);
  if (it == by_ino_.end()) return std::nullopt;
  return it->second.node;
}

void NodeTable::count(uint64_t ino, uint64_t generation) {
  std::lock_guard<std::mutex> lock(mu_);
  ++by_ino_[ino].lookups;
  if (generation != generation_) late_.push_back(ino);
}

void NodeTable::forget(uint64_t ino, uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_ino_.find(ino);
  if (it == by_ino_.end()) return;
  if (it->second.lookups > n) {
    it->second.lookups -= n;
    return;
  }
  if (it->second.node) by_node_.erase(*it->second.node);
  by_ino_.erase(it);
}

std::vector<uint64_t> NodeTable::held() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint64_t> out;
  out.reserve(by_ino_.size());
  for (const auto& [ino, _] : by_ino_) out.push_back(ino);
  return out;
}

void NodeTable::set_generation(uint64_t generation) {
  std::lock_guard<std::mutex> lock(mu_);
  generation_ = generation;
}

std::vector<uint64_t> NodeTable::take_late() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(late_, {});
}

size_t NodeTable::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_ino_.size();
}

}  // namespace blobfs
