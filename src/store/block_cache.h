// An LRU of block mappings keyed by block number, bounded by a count.
//
// Owns shared references to the mappings; a caller that got a mapping keeps
// it alive after eviction, so a reader is never left with a dangling pointer.
// Safe for concurrent use by multiple threads.
#pragma once

#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "posix_file.h"

namespace tensorblob {

class BlockCache {
 public:
  using Loader = std::function<std::shared_ptr<const Mapping>()>;

  explicit BlockCache(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  // The mapping of block `index`, calling `load` on a miss (under the cache's
  // lock, so one block is never mapped twice). Evicts the least recently used.
  std::shared_ptr<const Mapping> get(size_t index, const Loader& load);
  // Drops the mappings of blocks >= first (after truncate or reset).
  void drop_from(size_t first);
  // Drops one block's mapping (its file changed under it).
  void drop(size_t index);
  void clear();
  size_t size() const;
  size_t capacity() const { return capacity_; }

 private:
  using Entry = std::pair<size_t, std::shared_ptr<const Mapping>>;

  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<size_t, std::list<Entry>::iterator> index_;
};

// vm.max_map_count / 16, the default bound (FORMATS.md; tensorblob's default).
size_t default_max_cached_blocks();

}  // namespace tensorblob
