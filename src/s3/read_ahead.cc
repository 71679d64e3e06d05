#include "read_ahead.h"

#include <algorithm>

namespace tensorblob::s3 {

PartSpan parts_covering(uint64_t offset, uint64_t n, uint64_t part_bytes, uint64_t object_size) {
  if (n == 0 || part_bytes == 0 || offset >= object_size) return {};
  const uint64_t end = std::min(object_size, offset + n);
  return {offset / part_bytes, (end + part_bytes - 1) / part_bytes};
}

uint64_t part_size(uint64_t index, uint64_t part_bytes, uint64_t object_size) {
  const uint64_t start = index * part_bytes;
  if (start >= object_size) return 0;
  return std::min(part_bytes, object_size - start);
}

ReadAhead::ReadAhead(uint64_t start_bytes, uint64_t max_bytes)
    : start_(std::max<uint64_t>(1, start_bytes)), max_(std::max(start_bytes, max_bytes)) {}

uint64_t ReadAhead::on_read(uint64_t offset, uint64_t n) {
  ++clock_;
  // Readers through the kernel arrive a little out of order (several
  // threads, the kernel's own read-ahead): "continues" allows some slack.
  const uint64_t slack = std::max<uint64_t>(start_, 1 << 20);
  for (Stream& s : streams_) {
    const bool continues = offset + n + slack > s.next && offset <= s.next + slack;
    if (!continues) continue;
    s.next = std::max(s.next, offset + n);
    s.window = s.window == 0 ? start_ : std::min(max_, s.window * 2);
    s.used = clock_;
    return s.window;
  }
  Stream fresh{offset + n, 0, clock_};
  if (streams_.size() < kStreams) {
    streams_.push_back(fresh);
  } else {
    *std::min_element(streams_.begin(), streams_.end(),
                      [](const Stream& a, const Stream& b) { return a.used < b.used; }) = fresh;
  }
  return 0;
}

uint64_t ReadAhead::window_at(uint64_t end) const {
  for (const Stream& s : streams_)
    if (s.next == end) return s.window;
  return 0;
}

void ReadAhead::seed(uint64_t offset, uint64_t window) {
  ++clock_;
  Stream fresh{offset, std::min(max_, std::max(window, start_)), clock_};
  for (Stream& s : streams_)
    if (s.next == offset) return void(s = fresh);
  if (streams_.size() < kStreams) {
    streams_.push_back(fresh);
  } else {
    *std::min_element(streams_.begin(), streams_.end(),
                      [](const Stream& a, const Stream& b) { return a.used < b.used; }) = fresh;
  }
}

}  // namespace tensorblob::s3
