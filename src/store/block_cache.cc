#include "block_cache.h"

#include <sys/resource.h>

#include <cerrno>
#include <chrono>
#include <thread>
#include <fstream>

#include "tensorblob/error.h"

namespace tensorblob {

namespace {
bool out_of_descriptors(const Error& e) { return e.sys_errno() == EMFILE || e.sys_errno() == ENFILE; }
}  // namespace

std::shared_ptr<ReadableFile> BlockCache::get(const void* key, const Loader& load) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->second;
    }
  }
  std::shared_ptr<ReadableFile> file;
  // Out of descriptors: close what no reader holds and try again; when
  // readers hold every cached file (a tight limit, many threads), wait a
  // little for one to let go. After about 100 ms the caller gets EMFILE.
  for (int attempt = 0;; ++attempt) {
    try {
      file = load();
      break;
    } catch (const Error& e) {
      if (!out_of_descriptors(e) || attempt >= 100) throw;
      {
        std::lock_guard<std::mutex> lock(mu_);
        drop_idle_locked();
      }
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(key);
  if (it != index_.end()) return it->second->second;  // another reader opened it meanwhile
  insert_locked(key, file);
  return file;
}

void BlockCache::insert_locked(const void* key, std::shared_ptr<ReadableFile> file) {
  lru_.emplace_front(key, std::move(file));
  index_[key] = lru_.begin();
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

void BlockCache::drop_idle_locked() {
  for (auto it = lru_.begin(); it != lru_.end();) {
    if (it->second.use_count() == 1) {
      index_.erase(it->first);
      it = lru_.erase(it);
    } else {
      ++it;
    }
  }
}

void BlockCache::erase(const void* key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return;
  lru_.erase(it->second);
  index_.erase(it);
}

void BlockCache::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  lru_.clear();
  index_.clear();
}

size_t BlockCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lru_.size();
}

size_t BlockCache::capacity() const {
  std::lock_guard<std::mutex> lock(mu_);
  return capacity_;
}

void BlockCache::raise_capacity(size_t capacity) {
  std::lock_guard<std::mutex> lock(mu_);
  if (capacity > capacity_) capacity_ = capacity;
}

size_t default_max_cached_blocks() {
  size_t bound = 4096;  // the kernel default vm.max_map_count 65530 / 16
  std::ifstream in("/proc/sys/vm/max_map_count");
  long long n = 0;
  if (in >> n && n >= 16) bound = static_cast<size_t>(n / 16);
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    // Leave room for everything else a process opens (a daemon's /dev/fuse
    // clones, sockets, the files it is not caching).
    const size_t reserve = 64;
    const size_t usable = rl.rlim_cur > reserve * 2 ? (rl.rlim_cur - reserve) / 2 : 1;
    bound = std::min(bound, usable);
  }
  return bound < 1 ? 1 : bound;
}

}  // namespace tensorblob
