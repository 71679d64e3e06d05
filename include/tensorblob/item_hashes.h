// Per-item hash sidecars: the xxh3-128 of each item's bytes, so a check can
// name the first damaged item rather than only say "the dataset is wrong".
//
// The sidecar is an ordinary .npy file of shape (count + 1, 16), dtype uint8,
// each row a canonical (big-endian) digest: row 0 is a key naming the state
// the digests belong to (the dataset's content hash; for a blob, the digest
// of its .stat), rows 1.. the items. A sidecar whose key no longer matches
// is stale and is ignored. `BASE.hashes.npy` beside a ragged dataset,
// `DIR/.hashes.npy` inside a blob; picomap and tensorblob ignore both.
//
// ItemHashes reads rows with pread, never through a mapping, so a sidecar cut
// or rewritten under a reader costs an error, not the process. It remembers
// no check: every call hashes what it is given. Safe for concurrent use.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tensorblob/storage.h"

namespace tensorblob {

// The canonical 16-byte digest of one item's bytes.
using ItemDigest = std::array<unsigned char, 16>;
ItemDigest item_digest(const void* data, size_t size);
// The digest spelled as 32 hex digits (a picomap hash) -> bytes; throws FormatError.
ItemDigest digest_from_hex(const std::string& hex);

class ItemHashes {
 public:
  // Opens sidecar `name` of `storage`; nullptr if there is none. Throws
  // FormatError naming the file when it is not a (n + 1, 16) uint8 .npy
  // (callers report such a sidecar as damaged and read without it).
  static std::unique_ptr<ItemHashes> open(const Storage& storage, const std::string& name);
  // The sidecar's bytes: header, key row, one row per digest.
  static std::string encode(const ItemDigest& key, const std::vector<ItemDigest>& digests);

  const std::string& path() const { return file_->path(); }
  const ItemDigest& key() const { return key_; }
  int64_t count() const { return count_; }
  // The recorded digests of items [first, first + n) (first + n <= count()).
  // Throws Error(kIo) naming the sidecar if it shrank since it was opened.
  std::vector<ItemDigest> digests(int64_t first, int64_t n) const;
  // Whether item i's bytes match its recorded digest (i < count()).
  bool matches(int64_t i, const void* data, size_t size) const;
  // matches(), or throws Error(kCorrupt) "<what> does not match its recorded
  // hash (<sidecar>)".
  void require(int64_t i, const void* data, size_t size, const std::string& what) const;

 private:
  ItemHashes() = default;
  std::unique_ptr<ReadableFile> file_;
  uint64_t rows_at_ = 0;  // file offset of the first item row
  int64_t count_ = 0;
  ItemDigest key_{};
};

}  // namespace tensorblob
