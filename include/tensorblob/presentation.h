// How a mount presents a dataset to people and programs that know nothing
// of the store: file names of items, the naming rules, and the meta.yaml
// document (which `tblob info` prints too, so the two never disagree).
// Pure functions of a Dataset's facts.
#pragma once

#include <cstdint>
#include <string>

#include "tensorblob/dataset.h"
#include "tensorblob/tensordb.h"

namespace tensorblob {

// How a mount names what it shows (DESIGN.md, the mount contract); meta.yaml
// states these rules so a reader of the mount need not guess them.
struct NamingRules {
  int width = 6;       // digits of NNNNNN; larger indices are written in full
  bool npy = true;     // NNNNNN.npy, A-B.npy and all.npy (when numpy has the dtype)
  bool ranges = true;  // A-B.bin and A-B.npy, found by name
};

// The largest index a mount serves by name; a store with more items is
// refused when mounted (inode numbers are derived from indices).
inline constexpr int64_t kMaxMountedCount = (int64_t{1} << 61) - 1;

// "%0*lld": the mount's name stem for item i (wider indices in full).
std::string index_name(int64_t i, int width);

// The YAML document blobfs shows as meta.yaml and `tblob info` prints.
std::string meta_yaml(const Dataset& dataset, const NamingRules& naming);

// The YAML document describing a TensorDB: its committed rows, block size,
// each field's dtype, shape and bytes, and what open found when the counts
// of the DB and its fields disagreed.
std::string db_meta_yaml(const TensorDB& db);

// The meta.yaml of a store that cannot be opened: where it is and why.
std::string damaged_meta_yaml(const std::string& source, const std::string& error);

}  // namespace tensorblob
