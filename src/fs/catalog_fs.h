// A whole data directory as one mount (blobfs ROOT MOUNTPOINT with ROOT a
// plain directory, or a TensorDB): plain directories, one directory per
// store (a blob, a ragged dataset by its base, a TensorDB with one
// directory per field), the root's index.yaml, and a meta.yaml in place of
// a store that cannot be opened. Inside a store directory everything is
// the store's own Filesystem, as a single-store mount shows it.
//
// Lazy: a name is classified when the kernel looks it up, a store is opened
// when something inside its directory is first asked for, and closed once
// the kernel forgets its directory. When more than max_open_stores are
// open, the least recently used ones are offered back to the kernel
// (Hooks::drop_entry), which forgets them unless files in them are open.
// Names come from listing directories and are checked before use: nothing
// outside ROOT is reached, and no symbolic link is followed.
//
// Inode numbers: 1 the root; every other number is handed out here, once
// per thing the kernel holds, and freed when it forgets it. A store's files
// keep their store's own numbers inside its Filesystem; OpenStore maps them
// (StoreInodes). Text files (index.yaml, meta.yaml of a TensorDB or a
// damaged store) never change: new text is a new number, so a reader never
// mixes two versions and no cached page needs dropping.
//
// Thread safety: every method is safe from many threads at once. Ownership:
// the CatalogFs owns every open store; stores closed by forgets are
// destroyed on the maintenance thread, never in a request handler.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "filesystem.h"
#include "options.h"
#include "store_inodes.h"
#include "tensorblob/store.h"

namespace blobfs {

class CatalogFs;

// One open store: its Filesystem and the map between its numbers and the
// kernel's.
class OpenStore final : public StoreInodes, public std::enable_shared_from_this<OpenStore> {
 public:
  OpenStore(CatalogFs& catalog, uint64_t dir_ino, std::unique_ptr<Filesystem> fs);
  ~OpenStore() override;
  Filesystem& fs() const { return *fs_; }
  uint64_t dir_ino() const { return dir_ino_; }

  uint64_t hand_out(uint64_t local) override;
  uint64_t shown(uint64_t local) const override;
  void take_back(uint64_t kernel) override;
  Invalidation to_kernel(const Invalidation& plan) const override;

 private:
  friend class CatalogFs;
  CatalogFs& catalog_;
  uint64_t dir_ino_;
  std::unique_ptr<Filesystem> fs_;
  std::shared_ptr<void> follower_;  // a live store's refresher
  std::chrono::steady_clock::time_point used_;
};

class CatalogFs {
 public:
  enum class Kind { kDir, kStoreDir, kDbDir, kText };

  // A directory or text file of the catalog itself.
  struct Node {
    Kind kind = Kind::kDir;
    uint64_t ino = 0;
    uint64_t parent = 0;
    std::string name;
    std::string path;  // the directory, the store (a ragged one by its base), the DB
    tensorblob::StoreKind store = tensorblob::StoreKind::kNone;  // kStoreDir: what opens it
    std::string db, field;                                       // kStoreDir of a TensorDB field
    struct stat st {};                                           // shown mode and times
    uint64_t identity = 0;                                       // st_ino when looked up
    std::shared_ptr<const std::string> text;                     // kText
    std::chrono::steady_clock::time_point made;
    // kStoreDir and kDbDir, guarded by the catalog's lock.
    std::shared_ptr<OpenStore> opened;
    std::vector<std::string> fields;  // kDbDir: its schema, once read
    bool loaded = false;              // kDbDir: schema read (or error set)
    std::string error;                // damaged: why it cannot be opened
    std::chrono::steady_clock::time_point tried;
    // A directory's listing, kept for the READDIR calls that continue it.
    std::vector<std::pair<std::string, bool>> listing;  // name, is a directory
    std::chrono::steady_clock::time_point listed;
    std::mutex open_mu;  // one open at a time
  };

  // What a kernel number denotes: a catalog node, or a file of an open store.
  struct Target {
    std::shared_ptr<Node> node;
    std::shared_ptr<OpenStore> store;
    uint64_t local = 0;
  };

  // A name handed to the kernel (counted), with what it shows.
  struct Entry {
    uint64_t ino = 0;
    struct stat attr {};
    double timeout = 0;  // entry and attribute timeout
  };

  struct Hooks {
    // Starts following a live store (its refresher); null: nothing follows.
    std::function<std::shared_ptr<void>(Filesystem&, const StoreInodes&)> follow;
    // Asks the kernel to drop `name` in directory `parent` (and so forget
    // what is below it). Called from the maintenance thread only.
    std::function<void(uint64_t parent, const std::string& name)> drop_entry;
  };

  // `root`: an absolute path naming a plain directory or a TensorDB.
  // Throws tensorblob::Error when it cannot be read.
  CatalogFs(std::string root, const Options& options, tensorblob::StoreOptions store_options, Hooks hooks = {});
  ~CatalogFs();
  CatalogFs(const CatalogFs&) = delete;
  CatalogFs& operator=(const CatalogFs&) = delete;

  const Options& options() const { return options_; }
  // Before start(): what follows live stores and what drops entries.
  void set_hooks(Hooks hooks) { hooks_ = std::move(hooks); }
  // Starts the maintenance thread (closing stores, keeping the bound).
  void start();
  // Stops it and every live store's follower (before the session goes).
  // Idempotent; the destructor calls it.
  void stop();

  std::optional<Target> resolve(uint64_t ino) const;
  // The store of a store directory, opened on first use; null when it is
  // damaged (dir.error says why). Marks it used.
  std::shared_ptr<OpenStore> open(Node& dir);
  // `name` in the catalog directory `dir` (kDir, kDbDir, or a damaged
  // kStoreDir), counted; nullopt when there is no such name.
  std::optional<Entry> lookup(Node& dir, const std::string& name);
  // The names `dir` lists, in order, each with whether it is a directory.
  // `fresh`: read the directory again (a listing from offset 0); otherwise
  // the listing the previous call made, while it is recent.
  std::vector<std::pair<std::string, bool>> list(Node& dir, bool fresh);
  // The kernel dropped `n` lookups of `ino`.
  void forget(uint64_t ino, uint64_t n);
  void take_back(uint64_t ino) { forget(ino, 1); }
  struct stat attributes(const Node& node) const;
  // The timeout the kernel may trust catalog names and attributes for.
  double timeout() const;
  size_t stores_open() const;
  size_t numbers_held() const;

 private:
  friend class OpenStore;
  struct Slot {
    std::shared_ptr<Node> node;  // or a store's file:
    std::shared_ptr<OpenStore> store;
    uint64_t local = 0;
    uint64_t lookups = 0;
  };
  std::shared_ptr<Node> make_child(Node& dir, const std::string& name);
  std::optional<Entry> hand_out_node(const std::shared_ptr<Node>& node);
  std::shared_ptr<const std::string> text_of(Node& dir, const std::string& name);
  void load_db(Node& dir);
  uint64_t hand_out_file(OpenStore& store, uint64_t local);
  uint64_t shown_file(const OpenStore& store, uint64_t local) const;
  void drop_slot(uint64_t ino);  // mu_ held
  struct stat attributes_locked(const Node& node) const;  // mu_ held
  void maintain();
  // Whether something made at `since` is due again (live catalogs: a poll ago).
  bool stale(std::chrono::steady_clock::time_point since) const;
  // Whether `path` (the root, then names) still reaches what it names with
  // no symbolic link on the way: a directory swapped for a link after it
  // was looked up must not lead out of the root.
  bool without_links(const std::string& path) const;

  std::string root_;
  std::string root_real_;  // root_ with its own links resolved
  Options options_;      // what each store's Filesystem is made with
  tensorblob::StoreOptions store_options_;
  Hooks hooks_;
  mutable std::mutex mu_;
  uint64_t next_ino_ = 2;
  std::unordered_map<uint64_t, Slot> slots_;
  std::map<std::pair<uint64_t, std::string>, uint64_t> by_name_;       // a directory's current child
  std::map<std::pair<const OpenStore*, uint64_t>, uint64_t> by_local_;  // a store's file
  std::vector<std::shared_ptr<OpenStore>> open_;                        // every open store
  std::vector<std::shared_ptr<OpenStore>> closing_;                     // for the maintenance thread
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread maintenance_;
};

}  // namespace blobfs
