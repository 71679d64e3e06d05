#include "block_cache.h"

#include <fstream>

namespace tensorblob {

std::shared_ptr<const Mapping> BlockCache::get(size_t index, const Loader& load) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(index);
  if (it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;
  }
  auto mapping = load();
  lru_.emplace_front(index, mapping);
  index_[index] = lru_.begin();
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return mapping;
}

void BlockCache::drop_from(size_t first) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = lru_.begin(); it != lru_.end();) {
    if (it->first >= first) {
      index_.erase(it->first);
      it = lru_.erase(it);
    } else {
      ++it;
    }
  }
}

void BlockCache::drop(size_t index) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(index);
  if (it == index_.end()) return;
  lru_.erase(it->second);
  index_.erase(it);
}

void BlockCache::clear() { drop_from(0); }

size_t BlockCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lru_.size();
}

size_t default_max_cached_blocks() {
  std::ifstream in("/proc/sys/vm/max_map_count");
  long long n = 0;
  if (!(in >> n) || n < 16) return 4096;  // the kernel default 65530 / 16
  return static_cast<size_t>(n / 16);
}

}  // namespace tensorblob
