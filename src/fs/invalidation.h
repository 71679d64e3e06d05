// What the kernel must forget after a commit, and nothing more: a pure
// function of the view before, the view after, the items the commit
// rewrote, and the inode numbers the kernel holds (counted by LOOKUP and
// FORGET). Appends and truncations change sizes and the listing; rewrites
// drop the pages of the files that show the rewritten items; files that no
// longer exist lose their name. Files nothing touched keep their pages.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "namespace.h"

namespace blobfs {

class View;
class NodeTable;

struct Invalidation {
  // fuse_lowlevel_notify_inval_inode(ino, offset, length): the attributes,
  // and the pages of [offset, offset + length) (length 0: to the end).
  struct Inode {
    uint64_t ino;
    int64_t offset;
    int64_t length;
    bool operator==(const Inode&) const = default;
  };
  // fuse_lowlevel_notify_inval_entry(parent, name): a name that is gone.
  struct Entry {
    uint64_t parent;
    std::string name;
    bool operator==(const Entry&) const = default;
  };
  std::vector<Inode> inodes;
  std::vector<Entry> entries;
  bool empty() const { return inodes.empty() && entries.empty(); }
};

// `held`: the inode numbers the kernel holds, with the node each denotes
// in the view they were handed out from (fixed numbers decode in either).
Invalidation plan_invalidation(const View& before, const View& after,
                               const std::vector<std::pair<int64_t, int64_t>>& rewritten,
                               const std::vector<std::pair<uint64_t, Node>>& held);

}  // namespace blobfs
