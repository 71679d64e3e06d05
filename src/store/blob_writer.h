// The one writer of a blob: holds the writer lock, builds the next state (a
// draft) from the last commit, and commits it.
//
// Committed bytes are never changed in place. Rows of a block that some
// commit listed (below Block::committed_rows) are changed in a copy of the
// block under a new name, made on the first such write within a commit;
// rows past every commit's end (appends) are written in place, since no
// snapshot shows them. A commit syncs what it wrote, then replaces .stat
// atomically, then lets the replaced blocks go (their files are removed once
// no snapshot in this process holds them). So a crash at any moment leaves
// the last commit byte-exact, a reader of any snapshot keeps its bytes, and
// a changed block always has a new name.
//
// Every write has one guarantee: if it fails, the length, the cursor's
// source (what write() returns) and every committed byte are as they were;
// only rows no commit shows may have changed.
//
// Not thread-safe: one thread writes at a time (it may share the work of one
// write with the helper thread internally).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "blob_store.h"

namespace tensorblob {

class BlobWriter {
 public:
  // Becomes the writer of `store`'s directory, whose lock the caller took
  // (Storage::lock), and removes files of ours that no commit lists: block
  // files a killed writer left and our temporaries. `base` is the last
  // commit, loaded under the lock.
  BlobWriter(std::shared_ptr<BlobStore> store, std::unique_ptr<StorageLock> lock,
             std::shared_ptr<const BlobSnapshot> base, bool helper_thread);
  ~BlobWriter();  // drops uncommitted blocks; commits nothing

  const BlobState& state() const { return draft_; }
  int64_t len() const { return draft_.len; }
  bool changed() const { return changed_; }
  std::shared_ptr<const BlobSnapshot> last_commit() const { return base_; }

  // Writes n tensors (n × item_bytes at data) at tensor position pos <= len().
  void write(int64_t pos, const std::byte* data, int64_t n);
  // Cuts the draft to n <= len() tensors; whole blocks past the end go.
  void truncate(int64_t n);
  // Appends a copy of `src` (a full block of another blob of the same
  // config) as a new block; len() must be a multiple of the block size.
  void append_block_copy(const ReadableFile& src);

  // Syncs the blocks written, replaces .stat, publishes the new snapshot.
  // Returns it. A failed commit leaves the last commit in place.
  std::shared_ptr<const BlobSnapshot> commit();
  // Drops everything written since the last commit.
  void discard();

 private:
  // What follows a commit's rename: the draft becomes the last commit.
  std::shared_ptr<const BlobSnapshot> finish_commit(const std::string& stat_text);
  // A new block file of ours, filled by `fill` (which returns how many of
  // its bytes are reserved on disk) and removed again if that fails.
  std::shared_ptr<Block> make_block(const std::function<uint64_t(WritableFile&)>& fill);
  std::shared_ptr<Block> add_block();
  std::shared_ptr<Block> copy_block(size_t b);
  WritableFile& writable(const Block& block);
  void reserve(const Block& block, uint64_t end);
  void drop_fresh(const std::shared_ptr<Block>& block);
  void sweep_strays();

  std::shared_ptr<BlobStore> store_;
  std::shared_ptr<const BlobSnapshot> base_;
  std::unique_ptr<StorageLock> lock_;
  bool helper_thread_;
  BlobState draft_;
  bool changed_ = false;                              // anything to commit
  std::set<const Block*> fresh_;                      // made by this draft; no commit lists them
  std::set<const Block*> dirty_;                      // written since the last commit
  std::vector<std::shared_ptr<Block>> replaced_;      // listed by the last commit, not by the draft
  std::unordered_map<const Block*, std::unique_ptr<WritableFile>> files_;
  std::unordered_map<const Block*, uint64_t> reserved_;  // bytes reserved from the block's start
};

}  // namespace tensorblob
