#include "tensorblob/item_hashes.h"

#include <xxh_x86dispatch.h>  // AVX2 where the CPU has it
#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "tensorblob/error.h"
#include "tensorblob/npy.h"

namespace tensorblob {

ItemDigest item_digest(const void* data, size_t size) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits_dispatch(data, size));
  ItemDigest d;
  std::memcpy(d.data(), c.digest, 16);
  return d;
}

std::unique_ptr<ItemHashes> ItemHashes::open(const Storage& storage, const std::string& name) {
  if (!storage.stat(name)) return nullptr;
  std::unique_ptr<ReadableFile> file;
  try {
    file = storage.open(name, Access::kPread);
  } catch (const Error& e) {
    if (e.code() == Errc::kNotFound) return nullptr;  // removed in between
    throw FormatError(e.what());
  }
  const std::string& path = file->path();
  std::string head(static_cast<size_t>(std::min<uint64_t>(file->size(), 1 << 16)), '\0');
  file->read(0, head.size(), head.data());
  NpyHeader h = parse_npy_header(head, path);
  if (h.descr != "|u1" || h.fortran_order || h.shape.size() != 2 || h.shape[1] != 16 || h.shape[0] < 1)
    throw FormatError(path + ": expected a (count + 1, 16) uint8 array of digests");
  if (file->size() != h.data_offset + static_cast<uint64_t>(h.shape[0]) * 16)
    throw FormatError(path + ": file size does not match its header");
  auto out = std::unique_ptr<ItemHashes>(new ItemHashes());
  file->read(h.data_offset, 16, out->key_.data());
  out->rows_at_ = h.data_offset + 16;
  out->count_ = h.shape[0] - 1;
  out->file_ = std::move(file);
  return out;
}

std::string ItemHashes::encode(const ItemDigest& key, const std::vector<ItemDigest>& digests) {
  std::string out = npy_header("|u1", {static_cast<int64_t>(digests.size()) + 1, 16});
  out.append(reinterpret_cast<const char*>(key.data()), 16);
  for (const auto& d : digests) out.append(reinterpret_cast<const char*>(d.data()), 16);
  return out;
}

std::vector<ItemDigest> ItemHashes::digests(int64_t first, int64_t n) const {
  std::vector<ItemDigest> out(static_cast<size_t>(n));
  if (n > 0) file_->read(rows_at_ + static_cast<uint64_t>(first) * 16, static_cast<size_t>(n) * 16, out.data());
  return out;
}

bool ItemHashes::matches(int64_t i, const void* data, size_t size) const {
  ItemDigest want;
  file_->read(rows_at_ + static_cast<uint64_t>(i) * 16, 16, want.data());
  return item_digest(data, size) == want;
}

void ItemHashes::require(int64_t i, const void* data, size_t size, const std::string& what) const {
  if (!matches(i, data, size)) throw Error(Errc::kCorrupt, what + " does not match its recorded hash (" + path() + ")");
}

ItemDigest digest_from_hex(const std::string& hex) {
  ItemDigest d{};
  auto nibble = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    throw FormatError("'" + hex + "' is not 32 lowercase hex digits");
  };
  if (hex.size() != 32) throw FormatError("'" + hex + "' is not 32 lowercase hex digits");
  for (size_t i = 0; i < 16; ++i) d[i] = static_cast<unsigned char>(nibble(hex[2 * i]) * 16 + nibble(hex[2 * i + 1]));
  return d;
}

}  // namespace tensorblob
