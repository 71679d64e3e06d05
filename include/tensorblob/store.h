// A Store is one stored collection (a blob directory or a ragged dataset)
// followed through its commits: it hands out the newest snapshot it has
// loaded (a Dataset, which never changes) and, when asked, reloads the
// committed state and says what changed. Readers take a snapshot per unit
// of work (a reply, a command) and read only through it.
//
// Ownership: a Store owns its storage and the newest snapshot; snapshots
// handed out stay valid after the Store is gone.
// Thread safety: every method is safe from many threads at once; refresh()
// calls are serialised internally.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tensorblob/dataset.h"
#include "tensorblob/error.h"
#include "tensorblob/s3.h"
#include "tensorblob/storage.h"

namespace tensorblob {

// What a path names.
enum class StoreKind {
  kNone,       // nothing, or nothing we can read
  kBlob,       // a tensorblob directory (.conf and .stat inside; damaged with only one)
  kTensorDB,   // a TensorDB directory (its .conf says so)
  kRagged,     // a picomap dataset, named by its base or any of its files
  kDirectory,  // a plain directory: neither .conf nor .stat inside
};
// `path` may be local or s3://BUCKET/PREFIX (reached with `s3`).
StoreKind store_kind(const std::string& path, const S3Options& s3 = {});

// The directory `dir` as a Storage: a local one, or s3://BUCKET/PREFIX.
std::shared_ptr<Storage> open_storage(const std::string& dir, const S3Options& s3 = {});

struct StoreOptions {
  // Most block files kept open (and mapped) at once; 0: vm.max_map_count /
  // 16, and at most half the process's descriptor limit.
  size_t max_cached_blocks = 0;
  // How block files are read (storage.h). kPread keeps nothing mapped.
  Access access = Access::kMapped;
  // How stores at s3:// paths are reached.
  S3Options s3;
};

// What changed between two snapshots of one store.
struct StoreChange {
  std::shared_ptr<const Dataset> before, after;
  // Items present in both whose bytes may differ, as sorted half-open
  // ranges. Items past before->count() are new; past after->count(), gone.
  std::vector<std::pair<int64_t, int64_t>> rewritten;
};

class Store {
 public:
  virtual ~Store() = default;

  // The newest snapshot loaded. Cheap.
  virtual std::shared_ptr<const Dataset> snapshot() const = 0;
  // Reloads the committed state if its files changed. Returns what changed,
  // or nullopt when nothing did. Throws Error when the new state is damaged;
  // snapshot() then stays the last good one.
  virtual std::optional<StoreChange> refresh() = 0;
  // The directory the store lives in.
  virtual const Storage& storage() const = 0;
  // Items of `before` and `after` (two snapshots of this store, in either
  // order of age) whose bytes may differ, as StoreChange::rewritten says.
  virtual std::vector<std::pair<int64_t, int64_t>> rewritten(const Dataset& before, const Dataset& after) const = 0;
  // Names in storage() whose change means a commit may have happened (for
  // change notification: .stat for a blob, the .json and intent file for a
  // ragged dataset).
  virtual std::vector<std::string> commit_names() const = 0;

  // Runs fn(snapshot) and returns its result. If it fails because a file of
  // the snapshot is gone (a later commit replaced it and the file was
  // removed), reloads and runs fn again on the new snapshot, a few times at
  // most: a reader never gets an error for a commit it did not see.
  template <typename F>
  auto read(F&& fn) {
    for (int attempt = 0;; ++attempt) {
      std::shared_ptr<const Dataset> snap = snapshot();
      try {
        return fn(*snap);
      } catch (const Error& e) {
        if (e.code() != Errc::kNotFound || attempt >= 3 || !moved_past(*snap)) throw;
      }
    }
  }

 protected:
  // Reloads; whether the newest snapshot is now newer than `old`.
  bool moved_past(const Dataset& old);
};

// Opens what `path` names: a blob directory, or a ragged dataset by its base
// or any of its files. Throws Error naming the file.
std::shared_ptr<Store> open_store(const std::string& path, const StoreOptions& options = {});

// The field `field` of the TensorDB at `db` as a Store whose snapshots stop
// at the DB's committed rows (TensorDB::size()), however many rows the
// field's own blob holds; refresh() follows the DB's count as well as the
// field. Throws Error for a damaged DB or a field its schema lacks.
std::shared_ptr<Store> open_tensordb_field(const std::string& db, const std::string& field,
                                           const StoreOptions& options = {});

// The newest snapshot of what `path` names (open_store(path)->snapshot()).
std::shared_ptr<const Dataset> open_dataset(const std::string& path, const StoreOptions& options = {});

}  // namespace tensorblob
