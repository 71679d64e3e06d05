// One open file of a writable mount, and what it means for the blob. The
// bytes a handle writes are staged (in a temporary file in the blob's
// directory, so a 1 GB `dd` holds no memory) as an overlay of extents over
// the file it opened; nothing reaches the blob until the handle is closed or
// fsynced, when its staged content is checked and turned into one commit:
//
//   NNNNNN.bin, A-B.bin    overwrite those tensors; opened with O_TRUNC
//                          (cp), the file must end exactly as long as it was
//   all.bin                bytes inside its size overwrite; bytes from its
//                          size on are appended (whole tensors only) at the
//                          end the blob has when the handle commits; opened
//                          with O_TRUNC, the contents are replaced
//   NNNNNN.npy, A-B.npy    the same after a .npy header that must say the
//                          blob's dtype, its shape ((B-A, *shape) for a
//                          range) and C order
//   a new NNNNNN.bin/.npy  at the next index: one tensor appended
//
// Pure logic over a Staging of bytes: the FUSE layer feeds writes and asks
// for the plan at commit; the unit tests drive it without a mount. Not
// thread-safe: the mount serialises what a handle does.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "namespace.h"
#include "tensorblob/storage.h"

namespace blobfs {

// Where a handle's bytes wait: an append-only temporary file it owns,
// removed when it goes.
class Staging {
 public:
  Staging(std::shared_ptr<tensorblob::Storage> dir, std::string name);
  ~Staging();
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;
  uint64_t add(const void* data, size_t n);  // returns where the bytes went
  void read(uint64_t at, size_t n, void* dst) const;

 private:
  std::shared_ptr<tensorblob::Storage> dir_;
  std::string name_;
  std::unique_ptr<tensorblob::WritableFile> out_;
  uint64_t size_ = 0;
};

// The blob's facts a handle is checked against.
struct BlobShape {
  int64_t count = 0;
  int64_t item_bytes = 0;
  std::string typestr;  // numpy's; empty if numpy has none
  tensorblob::Shape shape;
};

// What a handle's commit does: first cut the blob (replace), then rewrite
// `count` tensors from `first`, then append `append` tensors (at exactly
// index `append_at` when set).
struct WritePlan {
  bool replace = false;  // O_TRUNC on all.bin: the blob becomes the appended tensors
  int64_t first = 0, count = 0;
  int64_t append = 0;
  int64_t append_at = -1;
};

// Reads committed bytes of the blob's concatenation [offset, offset + n).
using BlobReader = std::function<void(uint64_t offset, size_t n, std::byte* dst)>;

class WriteHandle {
 public:
  // `node`: the file opened; `blob`: the blob then; `truncated`: opened with
  // O_TRUNC; `created`: a new file at the next index.
  WriteHandle(Node node, const BlobShape& blob, bool truncated, bool created, std::unique_ptr<Staging> staging);

  const Node& node() const { return node_; }
  uint64_t size() const { return size_; }  // the file as this handle sees it
  bool dirty() const { return dirty_; }
  bool created() const { return created_; }  // a new file, not committed yet

  // Stages a write. Returns 0 or an errno: EFBIG past the end of a file of
  // fixed size, EINVAL for a hole left past the end of all.bin.
  int write(uint64_t offset, const void* data, size_t n);
  // all.bin opened with O_APPEND: every write goes to this handle's end.
  // (The kernel computes an appending write's offset from the file size it
  // caches, which other handles' uncommitted writes also grow.)
  void set_append() { append_ = true; }

  // What committing means against the blob as it is now. Returns 0 or an
  // errno: EINVAL for a partial tensor, a file of the wrong length or a .npy
  // header that does not match; EEXIST when the next index this handle
  // created was taken by another commit.
  int plan(const BlobShape& now, WritePlan& out) const;
  // The new bytes of tensors [first, first + n) of plan().first.., and of
  // appended tensors [k, k + n); `committed` supplies bytes the handle did
  // not write.
  void rewritten(int64_t first, int64_t n, std::byte* dst, const BlobReader& committed) const;
  void appended(int64_t k, int64_t n, std::byte* dst) const;
  // Bytes [offset, offset + n) of the file as this handle sees it (reads
  // through a handle opened for reading and writing).
  void read(uint64_t offset, size_t n, std::byte* dst, const BlobReader& committed) const {
    read_file(offset, n, dst, committed);
  }
  // After a commit made through fsync: later writes start from `now`.
  void committed(const BlobShape& now);

 private:
  struct Extent {
    uint64_t length;
    uint64_t staged;  // where in the staging file
  };
  bool npy() const { return is_npy(node_.kind); }
  bool all() const { return node_.kind == NodeKind::kAllBin; }
  // Where the blob's bytes start in the file: the .npy header's length
  // (the staged header for a file written from scratch).
  uint64_t data_start() const;
  std::string header_of(int64_t tensors) const;  // what numpy.save writes
  // Bytes [offset, offset + n) of the file as the handle sees it.
  void read_file(uint64_t offset, size_t n, std::byte* dst, const BlobReader& committed) const;
  bool covered(uint64_t from, uint64_t to) const;

  Node node_;
  BlobShape blob_;
  bool truncated_, created_;
  std::unique_ptr<Staging> staging_;
  std::map<uint64_t, Extent> extents_;  // by file offset, never overlapping
  uint64_t size_ = 0;       // the file's size through this handle
  uint64_t base_size_ = 0;  // the committed file's size under the overlay (0 if truncated)
  uint64_t header_ = 0;     // the committed file's header length (.npy)
  bool dirty_ = false;
  bool append_ = false;
};

}  // namespace blobfs
