// The files a mount shows, independent of FUSE. A View is what the mount
// shows for one snapshot of the store: for each node its attributes and its
// bytes (an optional .npy header, then a byte range of the dataset's
// concatenation). A Filesystem holds the store and the current View; each
// request takes the current View once and answers from it alone, so a reply
// never mixes two commits. The FUSE callbacks are thin wrappers over this,
// and the unit tests read through it without mounting.
//
// Thread safety: View is immutable; Filesystem's methods are safe from
// many threads at once.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "invalidation.h"
#include "namespace.h"
#include "node_table.h"
#include "store_inodes.h"
#include "options.h"
#include "writable.h"
#include "tensorblob/dataset.h"
#include "tensorblob/presentation.h"
#include "tensorblob/store.h"

namespace blobfs {

class View {
 public:
  View(std::shared_ptr<const tensorblob::Dataset> dataset, const Options& options);

  const Namespace& names() const { return names_; }
  const tensorblob::Dataset& dataset() const { return *dataset_; }
  const std::shared_ptr<const tensorblob::Dataset>& snapshot() const { return dataset_; }

  // Attributes of `node`, whose inode number is `ino`.
  struct stat attributes(const Node& node, uint64_t ino) const;
  uint64_t size(const Node& node) const;
  // Copies up to `size` bytes of the node's file from `offset` into dst and
  // returns how many (0 past the end). With verify_on_read, every item the
  // bytes come from is checked first (Dataset::read_checked). Throws
  // tensorblob::Error when the backing data is missing or damaged.
  // read() without a copy where the bytes are in memory already (object
  // storage), or nullopt: then read().
  std::optional<tensorblob::ByteView> view(const Node& n, uint64_t offset, size_t size) const;
  size_t read(const Node& node, uint64_t offset, size_t size, char* dst) const;
  // The .npy header of an npy node ("" for others).
  std::string npy_header(const Node& node) const;

 private:
  std::shared_ptr<const tensorblob::Dataset> dataset_;
  Options options_;
  Namespace names_;
  std::string meta_;  // meta.yaml of this snapshot
  uid_t uid_;
  gid_t gid_;
};

class Filesystem {
 public:
  // Throws tensorblob::Error (kInvalidArgument) when the store cannot be
  // served: more items than a mount numbers, verify_on_read without
  // current per-item hashes, writable for what is not a blob or not live;
  // (kBusy) writable when another writer holds the blob.
  Filesystem(std::shared_ptr<tensorblob::Store> store, const Options& options);
  // The writer of a writable mount; null for a read-only one.
  BlobWrites* writes() const { return writes_.get(); }
  // Queues for the refresher what the kernel must forget of a file a write
  // handle had open (its size may have grown with writes never committed;
  // a created file that was never committed has no name).
  void forget_uncommitted(const Node& node, uint64_t ino);

  const Options& options() const { return options_; }
  tensorblob::Store& store() const { return *store_; }
  // The current view, and its generation (one more per commit followed).
  std::shared_ptr<const View> view() const;
  std::shared_ptr<const View> view(uint64_t* generation) const;
  NodeTable& nodes() const { return nodes_; }

  // The node an inode number denotes in `view`, or nullopt.
  std::optional<Node> node_of(const View& view, uint64_t ino) const;
  // The inode number to hand the kernel for `node` in a LOOKUP or
  // READDIRPLUS reply from the view of `generation`, counting the lookup
  // where it matters (numbered by the NodeTable, or a live mount).
  uint64_t ino_for_lookup(const Node& node, uint64_t generation) const;

  // Live mounts: reloads the store and, if a commit happened, makes its
  // snapshot the current view and returns what the kernel must forget.
  // Throws tensorblob::Error when the new commit is damaged (or cannot be
  // served): the current view stays. Call from one thread at a time.
  struct Refresh {
    Invalidation plan;
    int64_t before = 0, after = 0;  // item counts
  };
  std::optional<Refresh> refresh();
  // refresh(), from any thread, keeping the result for the refresher to
  // carry out (take_pending) and waking it. Whether a commit was found.
  // Request handlers use this: they must never notify the kernel.
  bool refresh_and_queue();
  std::vector<Refresh> take_pending();
  // Called (from any thread) when a plan was queued.
  void on_pending(std::function<void()> wake);
  // What the kernel must forget of files it looked up from a view that a
  // commit had already replaced (NodeTable::take_late).
  Invalidation plan_late(const std::vector<uint64_t>& inos) const;
  // Frozen mounts: keeps every file of the current snapshot open, so its
  // bytes stay readable whatever later commits remove. Returns how many
  // files are held.
  size_t hold_files();

 private:
  void check_servable(const View& view) const;

  std::shared_ptr<tensorblob::Store> store_;
  Options options_;
  std::unique_ptr<BlobWrites> writes_;
  mutable NodeTable nodes_;
  mutable std::mutex mu_;
  std::shared_ptr<const View> view_;
  uint64_t generation_ = 0;
  std::mutex refresh_mu_;  // one refresh at a time
  std::mutex pending_mu_;
  std::vector<Refresh> pending_;
  std::function<void()> wake_;
};

}  // namespace blobfs
