// The writable side of a mount: the daemon as the blob's one writer. It
// holds the writer lock for the life of the mount, keeps the open write
// handles (write_handle.h), and turns each handle's close or fsync into one
// commit of that handle's writes, never anyone else's. Commits of several
// handles are serialised; each applies its writes to the blob as it is then.
//
// Thread safety: every method is safe from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "namespace.h"
#include "tensorblob/blob.h"
#include "tensorblob/storage.h"
#include "write_handle.h"

namespace blobfs {

class BlobWrites {
 public:
  // Becomes the writer of the blob at `source`. Throws tensorblob::Error:
  // kBusy when another writer holds it, and whatever opening it throws.
  explicit BlobWrites(const std::string& source);

  BlobShape shape() const;
  // A handle for `node` opened for writing; its id (for fuse_file_info::fh).
  // `append`: opened with O_APPEND (all.bin: every write at the handle's end).
  uint64_t open(const Node& node, bool truncated, bool created, bool append = false);
  // The handle's view of its file, for getattr and reads through it.
  std::optional<uint64_t> size(uint64_t id) const;
  std::optional<Node> node(uint64_t id) const;
  // The size of a file created at the next index that is not committed yet,
  // if a handle has `node` so (a stat by path of the new file).
  std::optional<uint64_t> created_size(const Node& node) const;
  // Bytes of the handle's file as it sees them (its writes over the blob).
  size_t read(uint64_t id, uint64_t offset, size_t n, char* dst) const;
  // Returns 0 or an errno.
  int write(uint64_t id, uint64_t offset, const void* data, size_t n);
  // Commits what the handle wrote (close, fsync): 0, or the errno the commit
  // failed with, and then nothing of it is committed and its writes stay
  // staged (a later write may complete a tensor). `changed`: a commit was made.
  int commit(uint64_t id, bool* changed);
  // Drops the handle and whatever it staged.
  void release(uint64_t id);
  // truncate -s of all.bin: cuts the blob to `size` bytes and commits.
  int truncate(uint64_t size, bool* changed);

 private:
  // Lock order: a handle's `mu` before the table's `mu_`, never the reverse.
  struct Open {
    std::unique_ptr<WriteHandle> handle;
    mutable std::mutex mu;  // one call into the handle at a time
    Node node;              // fixed at open: read without `mu`
    bool created = false;
  };
  std::shared_ptr<Open> find(uint64_t id) const;
  int apply(const WriteHandle& h, const WritePlan& plan);

  mutable std::mutex mu_;  // the blob and the handle table
  tensorblob::Blob blob_;
  std::shared_ptr<tensorblob::Storage> dir_;  // where handles stage their bytes
  std::unordered_map<uint64_t, std::shared_ptr<Open>> handles_;
  uint64_t next_id_ = 1;
};

}  // namespace blobfs
