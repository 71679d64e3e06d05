// Which parts of an object a read needs, and how far ahead to fetch for a
// reader going through it in order. Pure logic, no I/O.
#pragma once

#include <cstdint>
#include <vector>

namespace tensorblob::s3 {

// Part indices [first, last) holding bytes [offset, offset + n) of an
// object of `object_size` bytes cut in parts of `part_bytes`; empty when n
// is 0 or the range starts past the end. The last part may be short.
struct PartSpan {
  uint64_t first = 0, last = 0;
  bool empty() const { return first >= last; }
};
PartSpan parts_covering(uint64_t offset, uint64_t n, uint64_t part_bytes, uint64_t object_size);
// The size of part `index`.
uint64_t part_size(uint64_t index, uint64_t part_bytes, uint64_t object_size);

// Tracks a few sequential streams through one object (several readers may
// go through one block file at once). A read that continues a stream
// doubles its window from `start_bytes` up to `max_bytes`; any other read
// starts a new stream (replacing the least recent) and asks for nothing
// ahead, so random reads fetch only what they touch. Not thread-safe.
class ReadAhead {
 public:
  static constexpr int kStreams = 8;
  ReadAhead(uint64_t start_bytes, uint64_t max_bytes);
  // Records a read of [offset, offset + n); returns how many bytes after
  // offset + n to fetch ahead (0: none).
  uint64_t on_read(uint64_t offset, uint64_t n);
  // The window of the stream whose last read ended at `end` (0: none).
  uint64_t window_at(uint64_t end) const;
  // A stream that comes from elsewhere (the previous file) with `window`,
  // and goes on at `offset`.
  void seed(uint64_t offset, uint64_t window);

 private:
  struct Stream {
    uint64_t next = 0;    // where the stream's last read ended
    uint64_t window = 0;  // 0 until the stream's second read
    uint64_t used = 0;    // for replacing the least recent
  };
  uint64_t start_, max_;
  uint64_t clock_ = 0;
  std::vector<Stream> streams_;
};

}  // namespace tensorblob::s3
