// How one store's own inode numbers reach the kernel. A single-store mount
// hands them over unchanged (SameInodes); a catalog mount renumbers the files
// of every store it has open into one space (catalog_fs.h). The request
// handlers and the refresher speak a store's numbers and go through this
// whenever a number crosses to or from the kernel.
//
// Thread safety: implementations are safe from many threads at once.
#pragma once

#include <cstdint>

#include "invalidation.h"

namespace blobfs {

class Filesystem;

class StoreInodes {
 public:
  virtual ~StoreInodes() = default;
  // The kernel's number for the store's `local` in a reply that hands the
  // kernel a file (a lookup, a READDIRPLUS entry, a create): one lookup more.
  virtual uint64_t hand_out(uint64_t local) = 0;
  // The kernel's number for `local` where nothing is counted (st_ino of a
  // plain listing, the dot entries).
  virtual uint64_t shown(uint64_t local) const = 0;
  // A reply that carried `kernel` (from hand_out) never reached the kernel.
  virtual void take_back(uint64_t kernel) = 0;
  // What the kernel must forget, in its numbers; files it holds no number
  // for are left out.
  virtual Invalidation to_kernel(const Invalidation& plan) const = 0;
};

// A single-store mount: the store's numbers are the mount's.
class SameInodes final : public StoreInodes {
 public:
  explicit SameInodes(Filesystem& fs) : fs_(fs) {}
  uint64_t hand_out(uint64_t local) override { return local; }
  uint64_t shown(uint64_t local) const override { return local; }
  void take_back(uint64_t kernel) override;
  Invalidation to_kernel(const Invalidation& plan) const override { return plan; }

 private:
  Filesystem& fs_;
};

}  // namespace blobfs
