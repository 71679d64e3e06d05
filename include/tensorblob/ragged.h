// Ragged datasets in picomap's layout (src/store/FORMATS.md 2): items that share a
// dtype and trailing shape and differ in their first dimension, kept as
// BASE.dat (the bytes), BASE.starts.npy (row offsets) and BASE.json (count,
// dtype, trailing shape and an xxh3-128 content hash).
//
// Readers check what picomap does not (monotonic starts, sizes that agree,
// every item non-empty) and refuse anything else with an error naming the
// file. RaggedBuilder writes exactly picomap's bytes and publishes the three
// files so that an interrupted publish is rolled forward on the next open.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tensorblob/dataset.h"
#include "tensorblob/dtype.h"
#include "tensorblob/hash.h"
#include "tensorblob/item_hashes.h"
#include "tensorblob/npy.h"
#include "tensorblob/storage.h"

namespace tensorblob {

struct RaggedPaths {
  std::string base, dat, starts, json, hashes;  // hashes: our per-item sidecar
  std::string publish;  // intent file present only while a build publishes
};

// The dataset a path names: "x", "x.dat", "x.json" and "x.starts.npy" all name x.
RaggedPaths ragged_paths(std::string_view given);
// The files `tblob build BASE` writes: suffixes appended to BASE as given.
RaggedPaths ragged_paths_for_base(std::string_view base);

struct RaggedMeta {
  std::optional<Shape> trail;  // nullopt only for a dataset with no items
  std::string hash;            // 32 lowercase hex digits
  std::string creation_time;
  std::string dtype_name;      // numpy name, or "None" with no items
  int64_t count = 0;
  int64_t total_rows = 0;
};

// Strict: all six keys with their types, nothing else, a 32-hex hash.
RaggedMeta parse_ragged_json(std::string_view text, std::string_view path);
// picomap's exact bytes: compact, keys in its order, ASCII, no newline.
std::string format_ragged_json(const RaggedMeta& meta);
// "%a %d %b %Y, %I:%M%p" in the C locale, local time: "Mon 03 Nov 2025, 12:05AM".
std::string picomap_creation_time(std::time_t t);

// Where the uint64 entries of a starts .npy begin and how many there are;
// checks the header (1-D, '<u8' or '<i8', C order) and the file size.
struct StartsLayout {
  size_t data_offset = 0;
  int64_t entries = 0;
};
StartsLayout parse_starts_header(std::string_view file_prefix, uint64_t file_size, std::string_view path);
// The whole .starts.npy picomap writes for these entries.
std::string format_starts_npy(const std::vector<uint64_t>& starts);

// Opens a ragged dataset read-only (rolling forward an interrupted publish).
// Throws Error naming the file for anything inconsistent.
std::shared_ptr<const Dataset> open_ragged_dataset(const std::string& path);

// Builds a dataset from items added one by one. Nothing is visible at BASE
// until commit(); a failed or abandoned build removes its temporaries.
class RaggedBuilder {
 public:
  // Refuses (Error(kInvalidArgument)) a BASE whose files exist but are not
  // regular files: a FIFO or device there is never replaced.
  explicit RaggedBuilder(const std::string& base);
  ~RaggedBuilder();
  RaggedBuilder(const RaggedBuilder&) = delete;
  RaggedBuilder& operator=(const RaggedBuilder&) = delete;

  // Appends one item: C-order bytes of `shape` in `typestr`. The first item
  // fixes dtype and trailing shape; later ones must match. Refuses 0-d items
  // and items with no elements (picomap cannot store them). `source` names
  // the item in errors (a file name, or "item N").
  void add(std::string_view typestr, const Shape& shape, const void* data, size_t size, const std::string& source);
  // Writes the JSON, starts and hash sidecar, syncs, and publishes.
  void commit();
  // commit() without the renames: temporaries written and synced and the
  // publish intent recorded, as a crash in the middle of publishing leaves it.
  void stage();

  int64_t count() const { return static_cast<int64_t>(starts_.size()) - 1; }

 private:
  RaggedPaths paths_;  // as given, for messages
  RaggedPaths names_;  // the same files, named in storage_
  std::shared_ptr<Storage> storage_;
  void flush_pending();
  void write_synced(const std::string& name, std::string_view content);

  std::unique_ptr<WritableFile> data_;
  uint64_t bytes_ = 0;         // written to the temporary data file so far
  std::vector<char> pending_;  // data not yet written: large writes keep the page cache in large folios
  std::optional<NumpyDType> dtype_;
  std::optional<Shape> trail_;
  std::vector<uint64_t> starts_{0};
  std::vector<ItemDigest> digests_;
  std::unique_ptr<ContentHasher> hasher_;
  bool staged_ = false, committed_ = false;
};

// Finishes a publish that a crash interrupted (the intent file is present):
// renames whatever temporaries are left. Idempotent; a no-op otherwise.
void recover_ragged_publish(const RaggedPaths& paths);

}  // namespace tensorblob
