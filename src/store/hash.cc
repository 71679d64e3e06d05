#include "tensorblob/hash.h"

#include <xxh_x86dispatch.h>  // AVX2 where the CPU has it (libxxhash chooses at run time)
#include <xxhash.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <new>

namespace tensorblob {

namespace {

std::string hex(XXH128_hash_t h) {
  char out[33];
  std::snprintf(out, sizeof out, "%016" PRIx64 "%016" PRIx64, static_cast<uint64_t>(h.high64),
                static_cast<uint64_t>(h.low64));
  return out;
}

XXH3_state_t* st(void* p) { return static_cast<XXH3_state_t*>(p); }

}  // namespace

std::string xxh3_128_hex(const void* data, size_t size) { return hex(XXH3_128bits_dispatch(data, size)); }

ContentHasher::ContentHasher() : state_(XXH3_createState()) {
  if (!state_) throw std::bad_alloc();
  XXH3_128bits_reset(st(state_));
  XXH3_128bits_update_dispatch(st(state_), "D|v1|", 5);
}

ContentHasher::~ContentHasher() { XXH3_freeState(st(state_)); }

std::string item_frame_header(std::string_view typestr, const Shape& shape) {
  std::string out = "A|v1|";
  out += typestr;
  auto put = [&](int64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff));
  };
  put(static_cast<int64_t>(shape.size()));
  for (int64_t d : shape) put(d);
  return out;
}

void ContentHasher::add_item_header(std::string_view typestr, const Shape& shape) {
  const std::string frame = item_frame_header(typestr, shape);
  XXH3_128bits_update_dispatch(st(state_), frame.data(), frame.size());
}

void ContentHasher::add_data(const void* data, size_t size) { XXH3_128bits_update_dispatch(st(state_), data, size); }

void ContentHasher::add_item(std::string_view typestr, const Shape& shape, const void* data, size_t size) {
  add_item_header(typestr, shape);
  add_data(data, size);
}

std::string ContentHasher::finish() {
  XXH3_128bits_update_dispatch(st(state_), "D|end|", 6);
  return hex(XXH3_128bits_digest(st(state_)));
}

}  // namespace tensorblob
