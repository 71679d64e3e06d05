// An LRU of open block files, keyed by the Block they belong to and bounded
// by a count: each entry holds a descriptor and, read kMapped, a mapping, so
// the bound keeps both under the process's limits.
//
// Owns shared references to the files; a caller that got one keeps it
// alive after eviction, so a reader is never left with a dangling pointer.
// Files are opened outside the cache's lock, so one slow open (a block on a
// stalled network filesystem) never holds up readers of other blocks.
// Safe for concurrent use by multiple threads.
#pragma once

#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "tensorblob/storage.h"

namespace tensorblob {

class BlockCache {
 public:
  using Loader = std::function<std::shared_ptr<ReadableFile>()>;

  explicit BlockCache(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  // The open file for `key`, calling `load` on a miss. When the process is
  // out of descriptors, closes every cached file no reader holds and tries
  // once more. Evicts the least recently used beyond the capacity.
  std::shared_ptr<ReadableFile> get(const void* key, const Loader& load);
  void erase(const void* key);
  void clear();
  size_t size() const;
  size_t capacity() const;
  // Raises the bound to `capacity` if that is larger (several opens of one
  // store share one cache; the largest bound asked for wins).
  void raise_capacity(size_t capacity);

 private:
  using Entry = std::pair<const void*, std::shared_ptr<ReadableFile>>;
  void insert_locked(const void* key, std::shared_ptr<ReadableFile> file);
  void drop_idle_locked();

  size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<const void*, std::list<Entry>::iterator> index_;
};

// The default bound: vm.max_map_count / 16 (tensorblob's), and at most half
// of the descriptors the process may open (RLIMIT_NOFILE) less a reserve.
size_t default_max_cached_blocks();

}  // namespace tensorblob
