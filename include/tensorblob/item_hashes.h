// Per-item hash sidecars: the xxh3-128 of each item's bytes, so a check can
// name the first damaged item rather than only say "the dataset is wrong".
//
// The sidecar is an ordinary .npy file of shape (count + 1, 16), dtype uint8,
// each row a canonical (big-endian) digest: row 0 is a key naming the state
// the digests belong to (the dataset's content hash; for a blob, the digest
// of its .stat), rows 1.. the items. A sidecar whose key no longer matches
// is stale and is ignored. `BASE.hashes.npy` beside a ragged dataset,
// `DIR/.hashes.npy` inside a blob; picomap and tensorblob ignore both.
// ItemHashes maps it read-only; it is safe for concurrent use.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tensorblob {

class Mapping;

// The canonical 16-byte digest of one item's bytes.
using ItemDigest = std::array<unsigned char, 16>;
ItemDigest item_digest(const void* data, size_t size);
// The digest spelled as 32 hex digits (a picomap hash) -> bytes; throws FormatError.
ItemDigest digest_from_hex(const std::string& hex);

class ItemHashes {
 public:
  // Maps `path`; nullptr if it does not exist. Throws FormatError naming
  // the file when it exists but is not a (n + 1, 16) uint8 .npy.
  static std::unique_ptr<ItemHashes> open(const std::string& path);
  // The sidecar's bytes: header, key row, one row per digest.
  static std::string encode(const ItemDigest& key, const std::vector<ItemDigest>& digests);
  // Writes encode(...) to `path` atomically (temp file, fsync, rename).
  static void write(const std::string& path, const ItemDigest& key, const std::vector<ItemDigest>& digests);

  const ItemDigest& key() const { return key_; }
  int64_t count() const { return count_; }
  // Whether item i's bytes match its recorded digest (i < count()).
  bool matches(int64_t i, const void* data, size_t size) const;
  // matches(), remembering items found good so they are hashed only once
  // (data under a mount does not change). Thread-safe.
  bool check(int64_t i, const void* data, size_t size) const;
  // check(), or throws: Error(kCorrupt) "<what> does not match its recorded
  // hash (<sidecar>)", or Error(kIo) "<what>: ..." if the mapped data shrank.
  void require(int64_t i, const void* data, size_t size, const std::string& what) const;

 private:
  ItemHashes() = default;
  std::string path_;
  std::shared_ptr<const Mapping> mapping_;
  const unsigned char* rows_ = nullptr;  // the item rows (after the key)
  int64_t count_ = 0;
  ItemDigest key_{};
  std::unique_ptr<std::atomic<uint64_t>[]> good_;  // one bit per item
};

}  // namespace tensorblob
