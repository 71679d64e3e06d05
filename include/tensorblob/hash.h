// xxh3-128 hashing as picomap uses it (src/store/FORMATS.md 2.5): one content hash
// over a framed stream of items, stored as 32 lowercase hex digits in
// xxHash's canonical (big-endian) order.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "tensorblob/dtype.h"

namespace tensorblob {

// The canonical hex of XXH3-128 (seed 0) over one buffer.
std::string xxh3_128_hex(const void* data, size_t size);

// The bytes hashed before an item's data: "A|v1|", typestr, ndim and shape
// as int64 little-endian (the shape's first entry is the last-but-ndim field).
std::string item_frame_header(std::string_view typestr, const Shape& shape);

// Streams picomap's dataset hash: "D|v1|", then per item "A|v1|", typestr,
// ndim and shape as int64 LE, the data bytes, then "D|end|".
// Owns its XXH3 state; not thread-safe.
class ContentHasher {
 public:
  ContentHasher();
  ~ContentHasher();
  ContentHasher(const ContentHasher&) = delete;
  ContentHasher& operator=(const ContentHasher&) = delete;

  void add_item(std::string_view typestr, const Shape& shape, const void* data, size_t size);
  // Data of the current item in pieces (after add_item_header).
  void add_item_header(std::string_view typestr, const Shape& shape);
  void add_data(const void* data, size_t size);
  std::string finish();  // the hex digest; the hasher is spent afterwards

 private:
  void* state_;  // XXH3_state_t, kept out of this header
};

}  // namespace tensorblob
