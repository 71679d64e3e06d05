// A Blob is a dynamic-sized store of same-shaped tensors kept in a directory
// of fixed-size, memory-mapped block files, with a file-like API: open modes,
// a cursor, read, write, seek, truncate, extend, plus random access by index,
// slice and gather. The directory layout is Python tensorblob's (src/store/FORMATS.md 3),
// so either side opens what the other wrote.
//
// A Blob opened for reading reads one committed snapshot (store.h) and
// keeps reading exactly its bytes while writers append, truncate, overwrite
// and commit, as long as this process holds it; a block file a later commit
// replaced and that another process removed makes it reload the newest
// commit and read that (size() then changes), never fail. A Blob opened for
// writing reads what it has written, committed or not.
//
// Ownership: a Blob shares its directory's state with every other Blob and
// snapshot of that directory in this process (the block files, the cache of
// open ones); a writer owns the writer lock. Values returned by
// read/get/slice/gather are independent copies the caller owns. An ItemView
// shares ownership of what backs it, so it stays valid after eviction or close.
//
// Thread safety: random access (get, slice, gather, item_view, read_items,
// size) is safe from many threads at once while no thread writes. The cursor
// methods (seek, read, next, write) and truncate/extend/flush/close need
// external synchronization, like a FILE*.
//
// Durability: writes reach the block files at once, but only flush(),
// close(), truncate() and extend() commit them: the block data is synced,
// then .stat is replaced atomically (temp file, fsync, rename, fsync of the
// directory). Committed bytes are never overwritten in place: the first
// overwrite of committed tensors in a block copies the block under a new
// name (copy-on-write), which the next .stat lists. A crash at any moment
// leaves the last commit byte-exact. Writers hold an exclusive lock on the
// directory; readers take no lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "tensorblob/blob_format.h"
#include "tensorblob/dataset.h"
#include "tensorblob/dtype.h"
#include "tensorblob/tensor.h"

namespace tensorblob {

enum class Whence { kSet = 0, kCur = 1, kEnd = 2 };

// What an open-mode string allows, parsed by parse_open_mode.
struct OpenMode {
  std::string text;      // "r", "w", "a", "r+", "w+", "a+"
  bool readable = false;
  bool writable = false;
  bool append = false;    // every write goes to the end
  bool truncate = false;  // "w": create, or empty an existing blob
  bool must_exist = false;
};

// Exactly one of r/w/a, optionally one '+' after it. Throws Error(kInvalidArgument).
OpenMode parse_open_mode(std::string_view mode);

// How many tensors `given` holds, for a value written to a blob of tensor
// shape `item`: 1 if it is `item`, n if it is (n, *item), nullopt otherwise.
std::optional<int64_t> tensors_in_shape(const Shape& given, const Shape& item);

// The items x[start:stop:step] selects in a sequence of `len`, as Python
// computes them: first, first + step, ... (count of them). step != 0.
struct SliceIndices {
  int64_t first = 0;
  int64_t count = 0;
  int64_t step = 1;
};
SliceIndices slice_indices(int64_t len, std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step);

struct OpenOptions {
  // Needed only to create a new blob (modes w, w+); an existing blob keeps its
  // stored config and ignores these, as tensorblob does.
  std::string dtype;            // torch name or alias; empty = not given
  std::optional<Shape> shape;   // per-tensor shape; {} is a 0-d tensor
  int64_t block_size = kDefaultBlockSize;
  ConfFlavor conf_flavor = ConfFlavor::kShort;
  // Most block files kept open (and mapped) at once; 0 means
  // vm.max_map_count / 16, at most half the descriptor limit.
  size_t max_cached_blocks = 0;
  // Writable modes: record per-tensor hashes (DIR/.hashes.npy, see
  // item_hashes.h) on close. Otherwise a commit that changed data removes
  // the sidecar, since it would no longer describe the tensors.
  bool record_hashes = false;
  // Large gathers (512 KB and up) and writes that span blocks (1 MB and up)
  // are shared with one process-wide helper thread: two cores keep twice the
  // cache misses in flight, and write two block files at once. Off: all work
  // stays on the calling thread (for callers that keep every core busy).
  bool helper_thread = true;
};

class Blob {
 public:
  // Opens or creates the blob directory `path` in `mode` (see OpenMode).
  // Throws Error: kNotFound (r, r+, a, a+ on a missing blob), kInvalidArgument
  // (bad mode; new blob without dtype/shape), kFormat (damaged .conf/.stat),
  // kBusy (another writer holds the lock), kIo.
  static Blob open(const std::string& path, std::string_view mode = "r",
                   const OpenOptions& options = {});

  // Deletes a blob: its blocks, .conf and .stat, then the directory if nothing
  // else is left in it. Returns whether the directory itself was removed.
  static bool remove(const std::string& path);

  Blob(Blob&&) noexcept;
  Blob& operator=(Blob&&) noexcept;
  ~Blob();  // closes (committing writes) and swallows errors; call close() to see them

  const std::string& path() const;
  const OpenMode& mode() const;
  const BlobConf& conf() const;
  DType dtype() const { return conf().dtype; }
  const Shape& shape() const { return conf().shape; }
  int64_t item_bytes() const { return conf().item_bytes; }
  int64_t block_size() const { return conf().block_size; }
  int64_t size() const;  // number of tensors, including uncommitted writes
  bool closed() const;

  // Cursor, in tensors. seek clamps the result to [0, size()] and returns it.
  int64_t seek(int64_t offset, Whence whence = Whence::kSet);
  int64_t tell() const;

  // Reads n tensors (or all remaining when n < 0) from the cursor and advances
  // it. Returns shape (k, *shape()), k ≤ n; k == 0 at the end.
  Tensor read(int64_t n = -1);
  // The tensor at the cursor, advancing it; nullopt at the end.
  std::optional<Tensor> next();

  // Writes tensors at the cursor (at the end in append modes): overwrites,
  // extends past the end, adds blocks as needed. `t` is one tensor of
  // shape() or a batch of shape (n, *shape()) of dtype(). Returns n.
  // Throws Error(kInvalidArgument) on a dtype or shape mismatch, and an error
  // naming the block file with the errno when the disk refuses (ENOSPC,
  // EDQUOT, EFBIG, ...). A write that fails leaves size(), the cursor and
  // every committed byte as they were (tensors written since the last
  // commit, but not by this write, may have changed).
  int64_t write(const Tensor& t);
  // Writes n tensors from raw C-order bytes (n × item_bytes() of them).
  int64_t write_raw(const void* data, int64_t n);
  // Drops every write since the last commit: size() and the contents are
  // the last commit's again; the cursor is clamped to size().
  void discard();

  // Cuts the blob to `pos` tensors (default: the cursor), deletes whole blocks
  // past the end, and commits. Throws Error(kOutOfRange) if pos > size().
  void truncate(std::optional<int64_t> pos = std::nullopt);
  // Cuts it to n tensors without committing: flush() or close() commits
  // the cut with whatever else was written, discard() undoes it.
  void resize(int64_t n);

  // Appends every tensor of `other` (same dtype and shape) and commits.
  // keep_order = false takes tensorblob's fast path when block sizes match:
  // other's full blocks are copied as files, then this blob's partial last
  // block and other's partial last block are written after them, so tensor
  // order changes unless this blob was block-aligned. keep_order = true copies
  // tensor by tensor and preserves order.
  // `progress`, if given, is called with the bytes copied so far in each step.
  void extend(const Blob& other, bool keep_order = false, const std::function<void(uint64_t)>& progress = {});

  // Commits: syncs written blocks, then atomically replaces .stat.
  void flush();
  // Commits if writable, releases the lock and every mapping. Idempotent.
  void close();

  // Random access; negative indices count from the end, as in Python.
  // Throws Error(kOutOfRange) naming the index and the size.
  Tensor get(int64_t index) const;
  // Python slice semantics; step may be negative, not zero.
  Tensor slice(std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step = 1) const;
  // Tensors at `indices`, in the caller's order (read block by block).
  Tensor gather(std::span<const int64_t> indices) const;
  // The same into dst (indices.size() × item_bytes() bytes), for reused buffers.
  void gather_into(std::span<const int64_t> indices, void* dst) const;
  // Zero-copy bytes of tensor `index` (non-negative, < size()).
  ItemView item_view(int64_t index) const;
  // Copies tensors [first, first + n) into dst (n × item_bytes() bytes).
  void read_items(int64_t first, int64_t n, void* dst) const;

  // Copies bytes [offset, offset + n) of all tensors concatenated in order
  // (what blobfs serves as all.bin) into dst.
  void read_bytes(int64_t offset, int64_t n, void* dst) const;
  // Block files currently open in this directory's cache (for tests and
  // diagnostics; shared with other Blobs of the directory in this process).
  size_t cached_blocks() const;
  // The last commit this Blob read or made: an immutable snapshot.
  std::shared_ptr<const Dataset> snapshot() const;

 private:
  class Impl;
  explicit Blob(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tensorblob
