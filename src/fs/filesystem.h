// The files a mount shows, independent of FUSE: for each node its attributes
// and its bytes (an optional .npy header, then a byte range of the dataset's
// concatenation). The FUSE callbacks are thin wrappers over this, and the
// unit tests read through it without mounting.
//
// Owns the dataset. Thread-safe: every method is const and the dataset is.
#pragma once

#include <sys/stat.h>

#include <memory>
#include <string>

#include "namespace.h"
#include "options.h"
#include "tensorblob/dataset.h"

namespace blobfs {

class Filesystem {
 public:
  Filesystem(std::unique_ptr<tensorblob::Dataset> dataset, const Options& options);

  const Namespace& names() const { return names_; }
  const Options& options() const { return options_; }
  const tensorblob::Dataset& dataset() const { return *dataset_; }

  struct stat attributes(const Node& node) const;
  uint64_t size(const Node& node) const;
  // Copies up to `size` bytes of the node's file from `offset` into dst and
  // returns how many (0 past the end). Throws tensorblob::Error when the
  // backing data is missing or damaged.
  size_t read(const Node& node, uint64_t offset, size_t size, char* dst) const;
  // The .npy header of an npy node ("" for others).
  std::string npy_header(const Node& node) const;

 private:
  std::unique_ptr<tensorblob::Dataset> dataset_;
  Options options_;
  Namespace names_;
  std::string meta_;  // meta.yaml, fixed for the life of the mount
  uid_t uid_;
  gid_t gid_;
};

}  // namespace blobfs
