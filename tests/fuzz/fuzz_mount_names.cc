// libFuzzer target: names looked up in a mount, and the inode numbers the
// kernel hands back. A name that resolves must print back to itself.
#include <string>

#include "fuzz_util.h"
#include "namespace.h"

FUZZ_TARGET(text) {
  for (int width : {1, 6, 19}) {
    blobfs::Namespace ns(1'000'000, width, true, true);
    if (auto node = ns.lookup(text)) {
      if (ns.name(*node) != text) __builtin_trap();
      if (auto ino = blobfs::Namespace::fixed_ino(*node); ino && ns.from_ino(*ino) != node) __builtin_trap();
      if (node->first < 0 || node->first > node->last || node->last > ns.count()) __builtin_trap();
    }
  }
  if (text.size() >= 8) {
    uint64_t ino = 0;
    for (int i = 0; i < 8; ++i) ino |= static_cast<uint64_t>(static_cast<unsigned char>(text[i])) << (8 * i);
    blobfs::Namespace ns(1000, 6, true, true);
    if (auto node = ns.from_ino(ino))
      if (node->last > 1000 || node->first > node->last) __builtin_trap();
  }
}
