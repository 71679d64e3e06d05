#include "part_cache.h"

#include <unistd.h>

namespace tensorblob::s3 {

std::shared_ptr<Bytes> BufferPool::take(size_t size) {
  std::unique_ptr<Bytes> b;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = free_.begin(); it != free_.end(); ++it)
      if ((*it)->size() == size) {
        b = std::move(*it);
        free_.erase(it);
        break;
      }
  }
  if (!b) b = std::make_unique<Bytes>(size);
  std::weak_ptr<BufferPool> pool = weak_from_this();
  return std::shared_ptr<Bytes>(b.release(), [pool](Bytes* p) {
    if (auto alive = pool.lock()) alive->give(p);
    else delete p;
  });
}

void BufferPool::give(Bytes* b) {
  std::unique_ptr<Bytes> owned(b);
  std::lock_guard<std::mutex> lock(mu_);
  if (free_.size() < keep_) free_.push_back(std::move(owned));
}

PartCache::PartCache(uint64_t memory_max, int workers, std::unique_ptr<DiskCache> disk)
    : memory_max_(memory_max), disk_(std::move(disk)), worker_count_(std::max(1, workers)) {}

void PartCache::start_workers_locked() {
  // Started with the first read-ahead, not before: a daemon opens its store,
  // then forks into the background, and threads do not cross a fork. A
  // child that finds its parent's threads gone starts its own.
  if (!workers_.empty() && workers_pid_ == ::getpid()) return;
  if (!workers_.empty()) {
    // Not joinable here and never to be destroyed (that would terminate).
    auto* lost = new std::vector<std::thread>(std::move(workers_));
    (void)lost;
    workers_.clear();
  }
  workers_pid_ = ::getpid();
  for (int i = 0; i < worker_count_; ++i) workers_.emplace_back([this] { worker(); });
}

PartCache::~PartCache() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  if (workers_.empty()) return;
  if (workers_pid_ == ::getpid())
    for (auto& t : workers_) t.join();
  else
    new std::vector<std::thread>(std::move(workers_));  // another process's threads: leave them be
}

void PartCache::evict_locked() {
  while (held_ > memory_max_ && !lru_.empty()) {
    const std::string victim = lru_.back();
    lru_.pop_back();
    auto it = slots_.find(victim);
    if (it != slots_.end()) {
      held_ -= it->second->size;
      slots_.erase(it);  // readers holding the part keep it alive
    }
  }
}

void PartCache::fill(const std::string& key, const std::shared_ptr<Slot>& slot, FetchPart fetch) {
  Part data;
  std::exception_ptr error;
  bool from_disk = false;
  try {
    std::shared_ptr<Bytes> buf = pool_->take(slot->size);
    from_disk = disk_ && disk_->load(key, buf->size(), buf->data());
    if (!from_disk) {
      fetch(buf->data(), buf->size());
      if (disk_) disk_->store(key, buf->data(), buf->size());
    }
    data = std::move(buf);
  } catch (...) {
    error = std::current_exception();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_ -= slot->size;
    if (error) {
      slot->state = Slot::kFailed;
      slot->error = error;
      held_ -= slot->size;
      auto it = slots_.find(key);
      if (it != slots_.end() && it->second == slot) slots_.erase(it);
    } else {
      slot->state = Slot::kDone;
      slot->data = data;
      if (from_disk) ++stats_.disk_hits;
      else {
        ++stats_.fetches;
        stats_.fetched_bytes += slot->size;
      }
      auto it = slots_.find(key);
      if (it != slots_.end() && it->second == slot) {
        lru_.push_front(key);
        slot->lru = lru_.begin();
        slot->in_lru = true;
      } else {
        held_ -= slot->size;
      }
      evict_locked();
    }
  }
  done_cv_.notify_all();
}

Part PartCache::get(const std::string& key, size_t size, const FetchPart& fetch) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    auto it = slots_.find(key);
    if (it == slots_.end()) break;
    std::shared_ptr<Slot> slot = it->second;
    if (slot->state == Slot::kDone) {
      ++stats_.memory_hits;
      if (slot->in_lru) lru_.splice(lru_.begin(), lru_, slot->lru);
      return slot->data;
    }
    if (slot->state == Slot::kQueued) {
      // Asked for now: fetch it here rather than wait behind the queue.
      slot->state = Slot::kRunning;
      FetchPart f = std::move(slot->fetch);
      lock.unlock();
      fill(key, slot, std::move(f));
      lock.lock();
      continue;
    }
    ++stats_.waits;
    done_cv_.wait(lock, [&] { return slot->state == Slot::kDone || slot->state == Slot::kFailed; });
    if (slot->state == Slot::kFailed) std::rethrow_exception(slot->error);
    return slot->data;
  }
  auto slot = std::make_shared<Slot>();
  slot->state = Slot::kRunning;
  slot->size = size;
  slots_[key] = slot;
  held_ += size;
  in_flight_ += size;
  lock.unlock();
  fill(key, slot, fetch);
  lock.lock();
  if (slot->state == Slot::kFailed) std::rethrow_exception(slot->error);
  return slot->data;
}

void PartCache::prefetch(const std::string& key, size_t size, FetchPart fetch) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || slots_.count(key)) return;
    start_workers_locked();
    // Room is what the bound leaves after the parts being fetched; parts
    // already held give way (oldest first) once these arrive.
    if (in_flight_ + size > memory_max_ / 2) return;
    auto slot = std::make_shared<Slot>();
    slot->size = size;
    slot->fetch = std::move(fetch);
    slots_[key] = slot;
    held_ += size;
    in_flight_ += size;
    queue_.push_back(key);
    ++stats_.prefetches;
  }
  work_cv_.notify_one();
}

void PartCache::worker() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    const std::string key = queue_.front();
    queue_.pop_front();
    auto it = slots_.find(key);
    if (it == slots_.end() || it->second->state != Slot::kQueued) continue;  // taken by a reader
    std::shared_ptr<Slot> slot = it->second;
    slot->state = Slot::kRunning;
    FetchPart f = std::move(slot->fetch);
    lock.unlock();
    fill(key, slot, std::move(f));
    lock.lock();
  }
}

PartCache::Stats PartCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.held_bytes = held_;
  return s;
}

}  // namespace tensorblob::s3
