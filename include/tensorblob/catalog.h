// What a data directory holds: every store under a root directory, found by
// walking it, for `tblob info ROOT` and the root's index.yaml. A store is a
// directory with a .conf or .stat (a blob or a TensorDB; damaged if either
// cannot be read) or a ragged dataset (BASE.json beside BASE.dat); other
// directories are walked into, other files are not shown.
//
// Names are taken as found, never as paths to follow: symbolic links are not
// followed (a link could lead out of the root), and a name holding a control
// character (a newline would forge lines in the index) is skipped and
// reported. Pure reads; nothing under the root is changed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensorblob/dtype.h"
#include "tensorblob/store.h"
#include "tensorblob/tensordb.h"

namespace tensorblob {

struct CatalogEntry {
  std::string name;   // relative to the root, '/'-separated; a ragged dataset by its base
  StoreKind kind = StoreKind::kNone;  // kBlob, kTensorDB or kRagged
  std::string error;  // non-empty: the store is damaged, and this says why
  int64_t count = 0;  // tensors, items, or a TensorDB's committed rows
  std::string dtype;  // blobs and ragged datasets
  Shape shape;        // a blob's tensor shape, a ragged dataset's trailing shape
  uint64_t bytes = 0;
  std::vector<FieldSpec> fields;  // TensorDB
};

struct Catalog {
  std::vector<CatalogEntry> stores;  // sorted by name
  std::vector<std::string> skipped;  // one line each: what was left out and why
};

// What one directory of a data directory shows, in name order: every
// subdirectory (a store or a plain directory; which one, catalog_kind says)
// and every ragged dataset by its base. Symbolic links, names with a
// control character and a ragged base that a directory of the same name
// shadows are left out, each with a line in `skipped` (prefixed with
// `shown_prefix`). Throws Error naming `dir` when it cannot be read.
struct CatalogListing {
  std::vector<std::string> names;
  std::vector<std::string> skipped;
};
CatalogListing list_catalog_dir(const std::string& dir, const std::string& shown_prefix = "");

// What the entry `name` of directory `dir` is, found without following a
// symbolic link at `name`: kBlob, kTensorDB, kDirectory (a subdirectory),
// kRagged (BASE.json beside BASE.dat, named by BASE) or kNone (a file or
// link the catalog does not show). `name` is one path component.
StoreKind catalog_kind(const std::string& dir, const std::string& name);

// Whether `name` can be shown as an entry: one path component, not "." or
// "..", no control character (a newline would forge lines in the index).
bool is_showable_name(const std::string& name);

// Walks `root` (a directory) at most `max_depth` directories deep. Throws
// Error only when root itself cannot be read.
Catalog scan_catalog(const std::string& root, int max_depth = 16);

// The YAML index of a catalog: per store its kind, count, dtype, shape and
// size (or its error), then what was skipped.
std::string index_yaml(const Catalog& catalog, const std::string& root);

}  // namespace tensorblob
