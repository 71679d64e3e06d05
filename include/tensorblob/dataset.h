// Dataset: one committed state of a stored collection, as blobfs and `tblob`
// read it. Item i's bytes sit at [item_offset(i), item_offset(i+1)) of the
// concatenation of all items in order; that concatenation is what all.bin
// shows. A blob snapshot is one kind of dataset; a ragged picomap dataset is
// another. A Dataset never changes: a writer's commit makes a new one (see
// store.h for following a store as it changes).
//
// Ownership: a Dataset holds what it reads (its files, or its place in a
// shared block cache); share it as std::shared_ptr<const Dataset>.
// Thread safety: every method is safe from many threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tensorblob/dtype.h"
#include "tensorblob/storage.h"

namespace tensorblob {

// Zero-copy access to one item's bytes (storage.h): in a mapping of its
// file where there is one, else in a copy.
using ItemView = ByteView;

class ItemHashes;

// What a dataset is, for the people looking at it (meta.yaml, tblob info).
struct DatasetFacts {
  std::string format;           // "tensorblob" or "picomap (ragged)"
  std::string source;           // where it was opened from, absolute
  std::string dtype_name;       // as the format names it ("float32", ">f4")
  std::string typestr;          // numpy's name; empty when numpy has none
  bool ragged = false;
  Shape shape;                  // a blob's tensor shape; a ragged dataset's trailing shape
  int64_t item_bytes = 0;       // blob: bytes per tensor
  int64_t row_bytes = 0;        // ragged: bytes per row
  int64_t count = 0;
  int64_t total_rows = 0;       // ragged
  uint64_t total_bytes = 0;
  int64_t block_size = 0;       // blob
  int64_t blocks = 0;           // blob: block files in use
  std::string content_hash;     // ragged: picomap's stored hash
  std::string item_hashes;      // what per-item hashes there are: a sentence
};

class Dataset {
 public:
  virtual ~Dataset() = default;

  virtual const std::string& source() const = 0;  // the absolute path it was opened from
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
  // Item i's bytes where they are stored, without a copy where possible.
  // Shape: item_shape(i).
  virtual ItemView item_view(int64_t i) const = 0;
  // Item i's bytes as an owned copy.
  std::vector<std::byte> item_copy(int64_t i) const;
  // Copies bytes [offset, offset + size) of the concatenation into dst.
  // Throws Error naming the backing file when it is missing or damaged (a
  // block a later commit replaced is kNotFound: see Store::read).
  virtual void read(uint64_t offset, size_t size, std::byte* dst) const = 0;
  // The same bytes without a copy where they are held in memory already (a
  // part fetched from object storage), or nullopt: then read(). Never a view
  // into a mapping of a file, which another process could cut under it.
  virtual std::optional<ByteView> view_bytes(uint64_t offset, size_t size) const {
    (void)offset;
    (void)size;
    return std::nullopt;
  }
  // read(), checking every item it touches against its recorded per-item
  // hash first: each such item is copied whole, hashed, and bytes are taken
  // only from a copy that matched. Throws Error(kCorrupt) naming the first
  // item that does not match, and Error(kNotPermitted) when there are no
  // current per-item hashes to check against (item_hashes() is null).
  void read_checked(uint64_t offset, size_t size, std::byte* dst) const;
  // The per-item hashes recorded for exactly this state, or null.
  virtual const ItemHashes* item_hashes() const = 0;
  // Last commit time, nanoseconds since the epoch.
  virtual int64_t mtime_ns() const = 0;
  // Identifies this committed state: two snapshots of one store with the
  // same version hold the same bytes.
  virtual std::string version() const = 0;
  virtual DatasetFacts facts() const = 0;
  // Opens every file this snapshot reads and keeps it open while the
  // snapshot lives, so its bytes stay readable after a later commit removes
  // them (a frozen mount). Returns how many files are held; stops early,
  // without error, when the process runs out of descriptors.
  virtual size_t hold_files() const = 0;
};

}  // namespace tensorblob
