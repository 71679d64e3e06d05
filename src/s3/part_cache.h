// Parts of objects in memory: the most recently used kept within a byte
// bound, one fetch per part however many readers want it at once, and a
// pool of threads fetching ahead for sequential readers. Below it, an
// optional DiskCache is asked before the network and filled after it.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "disk_cache.h"

namespace tensorblob::s3 {

using Part = std::shared_ptr<const Bytes>;
// Fills `dst` with the part's `size` bytes from the network; throws on failure.
using FetchPart = std::function<void(std::byte* dst, size_t size)>;

// Part buffers kept for reuse: a fresh 8 MiB buffer is fresh pages, each
// faulted in and zeroed by the kernel. Thread-safe.
class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  explicit BufferPool(size_t keep) : keep_(keep) {}
  // A buffer of `size` bytes, handed back here when its last holder drops it.
  std::shared_ptr<Bytes> take(size_t size);

 private:
  void give(Bytes* b);
  const size_t keep_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Bytes>> free_;
};

class PartCache {
 public:
  // `memory_max`: bytes held (fetched and being fetched ahead). `workers`:
  // threads fetching ahead. `disk` may be null.
  PartCache(uint64_t memory_max, int workers, std::unique_ptr<DiskCache> disk);
  ~PartCache();
  PartCache(const PartCache&) = delete;
  PartCache& operator=(const PartCache&) = delete;

  // The part named `key` (which must name one version of one part), from
  // memory, disk or `fetch`, on this thread unless a fetch is already under
  // way. Rethrows the fetch's error; a failed part is not remembered.
  Part get(const std::string& key, size_t size, const FetchPart& fetch);
  // Starts fetching a part in the background unless it is held, under way,
  // or the memory bound leaves no room.
  void prefetch(const std::string& key, size_t size, FetchPart fetch);

  struct Stats {
    uint64_t memory_hits = 0, disk_hits = 0, fetches = 0, fetched_bytes = 0, prefetches = 0, waits = 0;
    uint64_t held_bytes = 0;
  };
  Stats stats() const;
  DiskCache* disk() const { return disk_.get(); }

 private:
  struct Slot {
    enum State { kQueued, kRunning, kDone, kFailed } state = kQueued;
    size_t size = 0;
    Part data;
    std::exception_ptr error;
    FetchPart fetch;  // while queued
    std::list<std::string>::iterator lru;
    bool in_lru = false;
  };
  // Fetches a slot's part (disk, then network) without the lock held, then
  // publishes it. Takes ownership of the fetch function.
  void fill(const std::string& key, const std::shared_ptr<Slot>& slot, FetchPart fetch);
  void evict_locked();
  void start_workers_locked();
  void worker();

  const uint64_t memory_max_;
  std::unique_ptr<DiskCache> disk_;
  std::shared_ptr<BufferPool> pool_ = std::make_shared<BufferPool>(16);
  mutable std::mutex mu_;
  std::condition_variable done_cv_, work_cv_;
  std::unordered_map<std::string, std::shared_ptr<Slot>> slots_;
  std::list<std::string> lru_;  // done parts, front most recent
  std::deque<std::string> queue_;
  uint64_t held_ = 0;       // bytes of done and in-flight parts
  uint64_t in_flight_ = 0;  // bytes of parts queued or being fetched
  bool stopping_ = false;
  Stats stats_;
  const int worker_count_;
  int workers_pid_ = 0;  // the process the workers run in
  std::vector<std::thread> workers_;
};

}  // namespace tensorblob::s3
