// Integrity checks for both kinds of dataset. A ragged dataset carries
// picomap's content hash; either kind may carry a per-item sidecar
// (item_hashes.h) that lets a check name the first damaged item.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace tensorblob {

// Called with the bytes just processed, for progress bars; may be empty.
using ProgressFn = std::function<void(uint64_t bytes)>;

struct VerifyReport {
  bool ok = false;
  std::string stored, computed;      // ragged: the dataset hashes
  std::optional<int64_t> first_bad;  // the first item whose bytes differ, when known
  bool has_item_hashes = false;      // a current per-item sidecar was used
  bool stale_item_hashes = false;    // a sidecar exists but belongs to other contents
  std::string item_hashes;           // what the sidecar is, in words (current, stale, damaged: why, none)
  int64_t items_checked = 0;
  // Blob: files in the directory that no commit lists (left by a killed
  // writer, or by another tool), with their total size. Files named like
  // ours are removed by the next writer that opens the blob.
  std::vector<std::string> strays;
  uint64_t stray_bytes = 0;
};

// Ragged: recomputes the content hash streaming over the mapped data and,
// on a mismatch, uses the per-item sidecar to name the first damaged item.
VerifyReport verify_ragged(const std::string& path, const ProgressFn& progress = {});
// Writes the per-item sidecar from the data as it is now. Throws
// Error(kCorrupt) when the data does not match the stored dataset hash.
void update_ragged_item_hashes(const std::string& path, const ProgressFn& progress = {});

// Blob: checks every tensor against DIR/.hashes.npy (ok with
// has_item_hashes false when none is recorded; every block is still read).
VerifyReport verify_blob(const std::string& dir, const ProgressFn& progress = {});
// Records DIR/.hashes.npy for the blob's committed tensors.
void update_blob_item_hashes(const std::string& dir, const ProgressFn& progress = {});

}  // namespace tensorblob
