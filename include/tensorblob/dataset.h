// Dataset: the read-only face of a stored collection, as blobfs and `tblob`
// see it. Item i's bytes sit at [item_offset(i), item_offset(i+1)) of the
// concatenation of all items in order; that concatenation is what all.bin
// shows. A blob is one kind of dataset; ragged picomap datasets are another.
//
// Ownership: a Dataset owns what it opened (the blob and its mappings).
// Thread safety: every method is safe from many threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tensorblob/dtype.h"

namespace tensorblob {

// Zero-copy access to one item's bytes inside a mapping of its file.
struct ItemView {
  std::shared_ptr<const void> keep_alive;  // the mapping; valid while held
  const std::byte* data = nullptr;
  size_t size = 0;
};

// How a mount names what it shows (DESIGN.md, the mount contract); meta.yaml
// states these rules so a reader of the mount need not guess them.
struct NamingRules {
  int width = 6;       // digits of NNNNNN; larger indices are written in full
  bool npy = true;     // NNNNNN.npy, A-B.npy and all.npy (when numpy has the dtype)
  bool ranges = true;  // A-B.bin and A-B.npy, found by name
};

class Dataset {
 public:
  virtual ~Dataset() = default;

  virtual const std::string& source() const = 0;  // the path it was opened from
  virtual int64_t count() const = 0;
  virtual std::string dtype_name() const = 0;     // as the format names it ("float32", ">f4")
  virtual std::string npy_descr() const = 0;      // numpy typestr; empty if numpy has no such type
  virtual Shape item_shape(int64_t i) const = 0;  // i in [0, count)
  // The shape of items [first, last) concatenated along the first axis: what
  // a .npy of that range holds ((last-first, *shape) for a blob).
  virtual Shape range_shape(int64_t first, int64_t last) const = 0;
  // Byte offset of item i in the concatenation; item_offset(count()) is the total.
  virtual uint64_t item_offset(int64_t i) const = 0;
  // The item whose bytes include `offset` (offset < item_offset(count())).
  virtual int64_t item_at(uint64_t offset) const = 0;
  // Item i's bytes where they are stored, without a copy; the view keeps
  // the mapping alive. Shape: item_shape(i).
  virtual ItemView item_view(int64_t i) const = 0;
  // Item i's bytes as an owned copy.
  std::vector<std::byte> item_copy(int64_t i) const;
  // Copies bytes [offset, offset + size) of the concatenation into dst.
  // Throws Error naming the backing file when it is missing or damaged.
  virtual void read(uint64_t offset, size_t size, std::byte* dst) const = 0;
  // Checks items [first, last) against their recorded per-item hashes, when
  // the dataset has them; throws Error(kCorrupt) naming the first bad item.
  // Items already found good are not hashed again. A no-op without hashes.
  virtual void check_items(int64_t first, int64_t last) const = 0;
  // Last commit time, nanoseconds since the epoch.
  virtual int64_t mtime_ns() const = 0;
  // The YAML document blobfs shows as meta.yaml and `tblob info` prints.
  virtual std::string meta_yaml(const NamingRules& naming) const = 0;
};

// "%0*lld": the mount's name stem for item i (wider indices in full).
std::string index_name(int64_t i, int width);

// Opens the blob directory at `path` read-only as a Dataset. Throws Error.
std::unique_ptr<Dataset> open_blob_dataset(const std::string& path, size_t max_cached_blocks = 0);

// Whether `path` names a blob (a directory) rather than a ragged dataset.
bool names_blob(const std::string& path);

// Opens whatever `path` names: a blob directory, or a ragged dataset by its
// base or any of its files (see ragged.h).
std::unique_ptr<Dataset> open_dataset(const std::string& path, size_t max_cached_blocks = 0);

}  // namespace tensorblob
