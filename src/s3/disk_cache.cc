#include "disk_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "tensorblob/error.h"
#include "tensorblob/hash.h"

namespace tensorblob::s3 {

namespace {

constexpr char kMagic[8] = {'T', 'B', 'P', 'A', 'R', 'T', '0', '1'};
constexpr const char* kSuffix = ".part";

bool is_hex32(std::string_view s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool write_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

std::string encode_part_header(const PartHeader& h) {
  std::string out(kPartHeaderBytes, '\0');
  std::memcpy(out.data(), kMagic, 8);
  for (int i = 0; i < 8; ++i) out[8 + i] = static_cast<char>((h.size >> (8 * i)) & 0xff);
  std::memcpy(out.data() + 16, h.data_hash.data(), std::min<size_t>(32, h.data_hash.size()));
  std::memcpy(out.data() + 48, h.key_hash.data(), std::min<size_t>(32, h.key_hash.size()));
  return out;
}

std::optional<PartHeader> decode_part_header(const std::byte* bytes, size_t n) {
  if (n < kPartHeaderBytes || std::memcmp(bytes, kMagic, 8) != 0) return std::nullopt;
  PartHeader h;
  for (int i = 0; i < 8; ++i) h.size |= static_cast<uint64_t>(std::to_integer<uint8_t>(bytes[8 + i])) << (8 * i);
  h.data_hash.assign(reinterpret_cast<const char*>(bytes) + 16, 32);
  h.key_hash.assign(reinterpret_cast<const char*>(bytes) + 48, 32);
  for (size_t i = 80; i < kPartHeaderBytes; ++i)
    if (bytes[i] != std::byte{0}) return std::nullopt;
  if (!is_hex32(h.data_hash) || !is_hex32(h.key_hash)) return std::nullopt;
  return h;
}

DiskCache::DiskCache(std::string dir, uint64_t max_bytes, std::function<void(const std::string&)> warn)
    : dir_(std::move(dir)), max_bytes_(max_bytes), warn_(std::move(warn)) {
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) throw_errno("cannot create the cache directory", dir_);
  struct stat st;
  if (::stat(dir_.c_str(), &st) != 0) throw_errno("cannot use the cache directory", dir_);
  if (!S_ISDIR(st.st_mode)) throw Error(Errc::kInvalidArgument, dir_ + ": cache_dir is not a directory");
  if (::access(dir_.c_str(), W_OK | X_OK) != 0) throw_errno("cannot write into the cache directory", dir_);
  DIR* d = ::opendir(dir_.c_str());
  if (!d) throw_errno("cannot list the cache directory", dir_);
  struct Found {
    std::string name;
    uint64_t size;
    int64_t mtime;
  };
  std::vector<Found> found;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    const std::string full = dir_ + "/" + name;
    if (name.find(".tmp.") != std::string::npos) {
      ::unlink(full.c_str());  // a store cut short
      continue;
    }
    if (name.size() != 32 + std::strlen(kSuffix) || !name.ends_with(kSuffix)) continue;
    struct stat fs;
    if (::lstat(full.c_str(), &fs) != 0 || !S_ISREG(fs.st_mode)) continue;
    found.push_back({name, static_cast<uint64_t>(fs.st_size), fs.st_mtim.tv_sec * 1000000000LL + fs.st_mtim.tv_nsec});
  }
  ::closedir(d);
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) { return a.mtime > b.mtime; });
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& f : found) {
    lru_.push_back(f.name);
    entries_[f.name] = {f.size, std::prev(lru_.end())};
    stats_.bytes += f.size;
  }
  evict_locked(0);
}

std::string DiskCache::file_of(const std::string& key) const {
  return dir_ + "/" + xxh3_128_hex(key.data(), key.size()) + kSuffix;
}

void DiskCache::forget_locked(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  stats_.bytes -= it->second.size;
  lru_.erase(it->second.pos);
  entries_.erase(it);
}

void DiskCache::evict_locked(uint64_t incoming) {
  while (!lru_.empty() && stats_.bytes + incoming > max_bytes_) {
    const std::string victim = lru_.back();
    ::unlink((dir_ + "/" + victim).c_str());
    forget_locked(victim);
    ++stats_.evicted;
  }
}

bool DiskCache::load(const std::string& key, size_t size, std::byte* dst) {
  const std::string path = file_of(key);
  const std::string name = path.substr(dir_.size() + 1);
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.misses;
    return false;
  }
  auto read_at = [&](std::byte* out, size_t n, uint64_t at) {
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::pread(fd, out + got, n - got, static_cast<off_t>(at + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
    return got;
  };
  std::byte head[kPartHeaderBytes];
  struct stat st;
  const bool whole = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                     static_cast<uint64_t>(st.st_size) == kPartHeaderBytes + size &&
                     read_at(head, kPartHeaderBytes, 0) == kPartHeaderBytes &&
                     read_at(dst, size, kPartHeaderBytes) == size;
  ::close(fd);
  auto header = whole ? decode_part_header(head, kPartHeaderBytes) : std::nullopt;
  const bool intact = header && header->size == size && header->key_hash == xxh3_128_hex(key.data(), key.size()) &&
                      header->data_hash == xxh3_128_hex(dst, size);
  if (!intact) {
    ::unlink(path.c_str());
    {
      std::lock_guard<std::mutex> lock(mu_);
      forget_locked(name);
      ++stats_.damaged;
      ++stats_.misses;
    }
    if (warn_) warn_(path + ": cached part is damaged (checksum mismatch); removed, fetching it again");
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.hits;
  auto it = entries_.find(name);
  if (it != entries_.end()) lru_.splice(lru_.begin(), lru_, it->second.pos);
  return true;
}

void DiskCache::store(const std::string& key, const std::byte* data, size_t size) {
  if (kPartHeaderBytes + size > max_bytes_) return;
  static std::atomic<uint64_t> seq{0};
  const std::string path = file_of(key);
  const std::string name = path.substr(dir_.size() + 1);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(seq++);
  PartHeader h{size, xxh3_128_hex(data, size), xxh3_128_hex(key.data(), key.size())};
  const std::string head = encode_part_header(h);
  const uint64_t bytes = head.size() + size;
  {
    std::lock_guard<std::mutex> lock(mu_);
    forget_locked(name);
    evict_locked(bytes);
  }
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return;
  const bool ok = write_all(fd, head.data(), head.size()) && write_all(fd, data, size);
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  forget_locked(name);
  lru_.push_front(name);
  entries_[name] = {bytes, lru_.begin()};
  stats_.bytes += bytes;
  ++stats_.stored;
}

DiskCache::Stats DiskCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace tensorblob::s3
