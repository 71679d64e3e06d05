#include "tensorblob/item_hashes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <xxh_x86dispatch.h>  // AVX2 where the CPU has it
#include <xxhash.h>

#include <cerrno>
#include <cstring>

#include "posix_file.h"
#include "tensorblob/error.h"
#include "tensorblob/fault_guard.h"
#include "tensorblob/npy.h"

namespace tensorblob {

ItemDigest item_digest(const void* data, size_t size) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits_dispatch(data, size));
  ItemDigest d;
  std::memcpy(d.data(), c.digest, 16);
  return d;
}

std::unique_ptr<ItemHashes> ItemHashes::open(const std::string& path) {
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (raw < 0) {
    if (errno == ENOENT) return nullptr;
    throw_errno("open", path);
  }
  ScopedFd fd(raw);
  struct stat st;
  if (::fstat(raw, &st) != 0) throw_errno("stat", path);
  if (!S_ISREG(st.st_mode)) throw FormatError(path + ": not a regular file");
  auto mapping = std::make_shared<const Mapping>(raw, static_cast<size_t>(st.st_size), path);
  std::string_view bytes(reinterpret_cast<const char*>(mapping->data()), mapping->size());
  NpyHeader h = parse_npy_header(bytes.substr(0, std::min<size_t>(bytes.size(), 1 << 16)), path);
  if (h.descr != "|u1" || h.fortran_order || h.shape.size() != 2 || h.shape[1] != 16 || h.shape[0] < 1)
    throw FormatError(path + ": expected a (count + 1, 16) uint8 array of digests");
  if (bytes.size() != h.data_offset + static_cast<uint64_t>(h.shape[0]) * 16)
    throw FormatError(path + ": file size does not match its header");
  auto out = std::unique_ptr<ItemHashes>(new ItemHashes());
  const auto* rows = reinterpret_cast<const unsigned char*>(mapping->data() + h.data_offset);
  std::memcpy(out->key_.data(), rows, 16);
  out->rows_ = rows + 16;
  out->count_ = h.shape[0] - 1;
  out->good_ = std::make_unique<std::atomic<uint64_t>[]>(static_cast<size_t>(out->count_ / 64 + 1));
  out->mapping_ = std::move(mapping);
  out->path_ = path;
  return out;
}

std::string ItemHashes::encode(const ItemDigest& key, const std::vector<ItemDigest>& digests) {
  std::string out = npy_header("|u1", {static_cast<int64_t>(digests.size()) + 1, 16});
  out.append(reinterpret_cast<const char*>(key.data()), 16);
  for (const auto& d : digests) out.append(reinterpret_cast<const char*>(d.data()), 16);
  return out;
}

void ItemHashes::write(const std::string& path, const ItemDigest& key, const std::vector<ItemDigest>& digests) {
  AtomicFileWriter out(path);
  std::string bytes = encode(key, digests);
  out.write(bytes.data(), bytes.size());
  out.commit();
}

bool ItemHashes::check(int64_t i, const void* data, size_t size) const {
  auto& word = good_[static_cast<size_t>(i / 64)];
  const uint64_t bit = uint64_t{1} << (i % 64);
  if (word.load(std::memory_order_relaxed) & bit) return true;
  if (!matches(i, data, size)) return false;
  word.fetch_or(bit, std::memory_order_relaxed);
  return true;
}

void ItemHashes::require(int64_t i, const void* data, size_t size, const std::string& what) const {
  bool good;
  try {
    good = check(i, data, size);
  } catch (const Error& e) {
    throw Error(e.code(), what + ": " + e.what());
  }
  if (!good) throw Error(Errc::kCorrupt, what + " does not match its recorded hash (" + path_ + ")");
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

bool ItemHashes::matches(int64_t i, const void* data, size_t size) const {
  struct Args {
    const void* data;
    size_t size;
    ItemDigest out;
  } a{data, size, {}};
  if (!run_fault_guarded([](void* p) {
        auto* x = static_cast<Args*>(p);
        x->out = item_digest(x->data, x->size);
      }, &a))
    throw Error(Errc::kIo, "the mapped file shrank while it was hashed");
  const ItemDigest& d = a.out;
  return std::memcmp(d.data(), rows_ + i * 16, 16) == 0;
}

}  // namespace tensorblob
