// Parts of objects kept in a local directory between runs, most recently
// used kept when the total passes its bound. Every part is stored with the
// xxh3-128 of its bytes and of its key and checked when read back, so a
// damaged or swapped cache file is a miss (removed, fetched again), never
// served. Files are written to a temporary and renamed, so two processes may
// share a directory; each bounds only what it knows of.
// Thread-safe.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <new>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tensorblob::s3 {

// A byte vector whose new elements are left uninitialised: a part buffer is
// always filled whole before it is read, and zeroing 8 MiB per part costs
// as much as the copy that fills it.
template <typename T>
struct UninitAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitAllocator<U>;
  };
  UninitAllocator() = default;
  template <typename U>
  UninitAllocator(const UninitAllocator<U>&) noexcept {}
  // Part-sized buffers come straight from the kernel, populated in one
  // call: 2,048 page faults per 8 MiB part cost a tenth of the daemon's time.
  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kMapped) return std::allocator<T>{}.allocate(n);
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) noexcept {
    const size_t bytes = n * sizeof(T);
    if (bytes < kMapped) return std::allocator<T>{}.deallocate(p, n);
    ::munmap(p, bytes);
  }
  static constexpr size_t kMapped = size_t{1} << 20;
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
using Bytes = std::vector<std::byte, UninitAllocator<std::byte>>;

class DiskCache {
 public:
  // Creates `dir` (mode 0700) when missing; adopts the parts already there,
  // oldest first in line for eviction. Throws Error naming `dir` when it
  // cannot be used. `warn` is told of each damaged part found.
  DiskCache(std::string dir, uint64_t max_bytes, std::function<void(const std::string&)> warn);

  // Fills dst with the part stored under `key` if it is present, `size`
  // bytes long and intact; false otherwise (dst may then hold anything).
  bool load(const std::string& key, size_t size, std::byte* dst);
  // Stores a part (best effort: a full disk leaves it uncached).
  void store(const std::string& key, const std::byte* data, size_t size);

  struct Stats {
    uint64_t hits = 0, misses = 0, damaged = 0, stored = 0, evicted = 0, bytes = 0;
  };
  Stats stats() const;
  // The file a key is stored in (for tests that damage one).
  std::string file_of(const std::string& key) const;

 private:
  void evict_locked(uint64_t incoming);
  void forget_locked(const std::string& name);

  std::string dir_;
  uint64_t max_bytes_;
  std::function<void(const std::string&)> warn_;
  mutable std::mutex mu_;
  std::list<std::string> lru_;  // front: most recent
  struct Entry {
    uint64_t size;
    std::list<std::string>::iterator pos;
  };
  std::unordered_map<std::string, Entry> entries_;
  Stats stats_;
};

// The header before a part's bytes in its cache file.
struct PartHeader {
  uint64_t size = 0;
  std::string data_hash, key_hash;  // 32 hex digits each
};
std::string encode_part_header(const PartHeader& h);
// nullopt when `bytes` does not start with a well-formed header.
std::optional<PartHeader> decode_part_header(const std::byte* bytes, size_t n);
inline constexpr size_t kPartHeaderBytes = 96;

}  // namespace tensorblob::s3
