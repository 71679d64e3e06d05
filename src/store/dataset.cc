#include "tensorblob/dataset.h"

#include <algorithm>
#include <cstring>

#include "tensorblob/error.h"
#include "tensorblob/item_hashes.h"

namespace tensorblob {

std::vector<std::byte> Dataset::item_copy(int64_t i) const {
  const uint64_t a = item_offset(i), b = item_offset(i + 1);
  std::vector<std::byte> out(b - a);
  read(a, out.size(), out.data());
  return out;
}

void Dataset::read_checked(uint64_t offset, size_t size, std::byte* dst) const {
  if (size == 0) return;
  const ItemHashes* h = item_hashes();
  if (!h) throw Error(Errc::kNotPermitted, source() + ": no current per-item hashes to check reads against");
  const int64_t first = item_at(offset), last = item_at(offset + size - 1) + 1;
  if (last > h->count())
    throw Error(Errc::kNotPermitted, source() + ": item " + std::to_string(h->count()) + " has no recorded hash");
  // Each item whole, into a copy that is hashed and then served from: bytes
  // that changed between a check and the copy can never pass.
  std::vector<std::byte> scratch;
  for (int64_t i = first; i < last; ++i) {
    const uint64_t a = item_offset(i), b = item_offset(i + 1);
    scratch.resize(static_cast<size_t>(b - a));
    read(a, scratch.size(), scratch.data());
    h->require(i, scratch.data(), scratch.size(), source() + ": item " + std::to_string(i));
    const uint64_t from = std::max(a, offset), to = std::min(b, offset + size);
    std::memcpy(dst + (from - offset), scratch.data() + (from - a), static_cast<size_t>(to - from));
  }
}

}  // namespace tensorblob
