// What one process knows about one blob directory, shared by every Blob,
// snapshot and writer of it the process has open:
//
//   BlobStore    the storage, the registry of block files, the cache of open
//                block files, and the newest snapshot (process-wide, one per
//                directory: two Blob objects of one directory share it).
//   Block        one block file, one object for as long as any snapshot or
//                draft lists it; a commit that stops listing it marks it
//                doomed, and its file is removed when the last snapshot
//                holding it lets go. So a reader keeps reading exactly its
//                commit's bytes while writers go on.
//   BlobState    a blob's contents at one moment: config, length, blocks.
//   BlobSnapshot a committed BlobState, immutable: the Dataset of a blob.
//
// Thread safety: BlobStore and BlobSnapshot are safe for concurrent use. A
// BlobState being written (a writer's draft) is not.
#pragma once

#include <atomic>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "block_cache.h"
#include "tensorblob/blob_format.h"
#include "tensorblob/dataset.h"
#include "tensorblob/item_hashes.h"
#include "tensorblob/storage.h"
#include "tensorblob/store.h"

namespace tensorblob {

class BlobStore;

class Block {
 public:
  Block(std::shared_ptr<BlobStore> store, std::string name);
  ~Block();  // removes the file if doomed; forgets its cache entry
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;

  const std::string& name() const { return name_; }
  // Once set, the file goes when this object does: no commit lists it now.
  void doom() { doomed_ = true; }
  // The most rows of this file any commit we know of used: rows below it may
  // be read by someone holding that commit, so a writer copies the block
  // before changing them (rows at or past it are nobody's yet).
  int64_t committed_rows() const { return committed_rows_.load(std::memory_order_relaxed); }
  void note_committed_rows(int64_t rows);
  // What the file was when this object first opened it (nullopt before).
  std::optional<FileInfo> seen() const;
  void set_seen(const FileInfo& info);

 private:
  std::shared_ptr<BlobStore> store_;
  std::string name_;
  std::atomic<bool> doomed_{false};
  std::atomic<int64_t> committed_rows_{0};
  mutable std::mutex mu_;
  std::optional<FileInfo> seen_;
};

struct BlobState {
  BlobConf conf;
  int64_t len = 0;
  std::vector<std::shared_ptr<Block>> blocks;
};

class BlobSnapshot;

class BlobStore : public std::enable_shared_from_this<BlobStore> {
 public:
  // The store of directory `storage`, shared with every other open of the
  // same directory in this process. `max_cached` is the most block files
  // kept open (0: the default bound); the largest asked for wins.
  static std::shared_ptr<BlobStore> get(std::shared_ptr<Storage> storage, size_t max_cached, Access access);
  ~BlobStore();

  Storage& storage() const { return *storage_; }
  const std::string& path() const { return storage_->location(); }

  // Reads .conf and .stat and returns the committed state as a snapshot,
  // the newest one if nothing changed since. A .stat rewritten in place (as
  // Python's writer does) also has the blocks this process has opened
  // checked, and a block file found changed gets a new Block object, so
  // snapshots tell it apart. Throws Error when the files are damaged.
  std::shared_ptr<const BlobSnapshot> load();
  // The newest snapshot loaded or published while someone holds it, else null.
  std::shared_ptr<const BlobSnapshot> current() const;
  // Makes `snap` (just committed by our writer) the newest.
  void publish(std::shared_ptr<const BlobSnapshot> snap);
  // A snapshot of `state`, committed with .stat text `stat_text`.
  std::shared_ptr<const BlobSnapshot> make_snapshot(const BlobState& state, const std::string& stat_text);

  // The Block object for `name`: the one already alive, or a new one.
  std::shared_ptr<Block> block(const std::string& name);
  // Whether a Block object for `name` is alive in this process.
  bool has_live_block(const std::string& name) const;
  // Block b of `state`, open for reading, checked to hold a whole block.
  std::shared_ptr<ReadableFile> open_block(const BlobState& state, size_t b) const;
  // The same through the cache of open files.
  std::shared_ptr<ReadableFile> file(const BlobState& state, size_t b) const;
  // Forgets the cached file of one block (its file changed under it).
  void forget(const Block* block) const { cache_.erase(block); }
  size_t cached_blocks() const { return cache_.size(); }

 private:
  friend class Block;
  BlobStore(std::shared_ptr<Storage> storage, size_t max_cached, Access access);
  void block_gone(const Block* block, const std::string& name, bool doomed);
  std::string path_of_name(const char* name) const;

  std::shared_ptr<Storage> storage_;
  Access access_;
  mutable BlockCache cache_;
  std::mutex load_mu_;     // one load at a time
  mutable std::mutex mu_;  // guards the members below
  std::unordered_map<std::string, std::weak_ptr<Block>> blocks_;
  // Weak: snapshots hold their blocks and the blocks hold the store, so a
  // strong reference here would keep every store alive forever.
  std::weak_ptr<const BlobSnapshot> current_;
  std::optional<FileInfo> conf_info_, stat_info_;  // of the files current_ was loaded from
  std::optional<BlobConf> conf_;
};

// Reading a BlobState: the same code for snapshots and for a writer's draft.
// Ranges are checked by the callers.
void read_state_bytes(const BlobStore& store, const BlobState& state, int64_t offset, int64_t n, std::byte* dst);
ItemView state_item_view(const BlobStore& store, const BlobState& state, int64_t index);
// Tensors at `indices` (each in [0, len)) into dst, in the caller's order.
void gather_state(const BlobStore& store, const BlobState& state, std::span<const int64_t> indices, std::byte* dst,
                  bool helper_thread);

class BlobSnapshot final : public Dataset {
 public:
  // `hashes_info`: the sidecar's file when the snapshot was made (nullopt:
  // none), so a store can tell a sidecar recorded or replaced since.
  BlobSnapshot(std::shared_ptr<BlobStore> store, BlobState state, std::string stat_text, int64_t mtime_ns,
               std::optional<FileInfo> hashes_info);

  const BlobState& state() const { return state_; }
  BlobStore& store() const { return *store_; }
  const BlobConf& conf() const { return state_.conf; }
  // The sidecar key of this commit: the digest of its .stat text.
  const ItemDigest& stat_digest() const { return stat_digest_; }
  const std::string& stat_text() const { return stat_text_; }
  const std::optional<FileInfo>& hashes_info() const { return hashes_info_; }

  const std::string& source() const override { return store_->path(); }
  int64_t count() const override { return state_.len; }
  std::string dtype_name() const override { return std::string(dtype_info(state_.conf.dtype).name); }
  std::string npy_descr() const override { return std::string(dtype_info(state_.conf.dtype).typestr); }
  Shape item_shape(int64_t) const override { return state_.conf.shape; }
  Shape range_shape(int64_t first, int64_t last) const override;
  uint64_t item_offset(int64_t i) const override;
  int64_t item_at(uint64_t offset) const override;
  ItemView item_view(int64_t i) const override;
  void read(uint64_t offset, size_t size, std::byte* dst) const override;
  std::optional<ByteView> view_bytes(uint64_t offset, size_t size) const override;
  const ItemHashes* item_hashes() const override;
  int64_t mtime_ns() const override { return mtime_ns_; }
  std::string version() const override { return version_; }
  DatasetFacts facts() const override;
  size_t hold_files() const override;

 private:
  // The sidecar is looked at once, on first use.
  void load_hashes() const;
  // Reads through the files hold_files() opened; false if it did not.
  bool read_held(uint64_t offset, size_t size, std::byte* dst) const;

  std::shared_ptr<BlobStore> store_;  // first: outlives the blocks below
  BlobState state_;
  std::string stat_text_;
  ItemDigest stat_digest_;
  int64_t mtime_ns_;
  std::string version_;
  std::optional<FileInfo> hashes_info_;
  mutable std::once_flag hashes_once_;
  mutable std::unique_ptr<ItemHashes> hashes_;
  mutable std::string hashes_status_;
  mutable std::mutex held_mu_;
  mutable std::vector<std::shared_ptr<ReadableFile>> held_;  // block b's file, once hold_files() ran
};

// Records DIR/.hashes.npy for exactly `snap` (verify.cc): the per-tensor
// digests, keyed to the digest of its .stat.
void record_blob_hashes(const BlobSnapshot& snap, const std::function<void(uint64_t)>& progress = {});

// What changed from `before` to `after` (tensors both have whose bytes may
// differ): the blocks whose Block objects differ.
std::vector<std::pair<int64_t, int64_t>> rewritten_tensors(const BlobState& before, const BlobState& after);

}  // namespace tensorblob
