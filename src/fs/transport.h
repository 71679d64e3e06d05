// Which transport carries the mount's requests, and the arithmetic of a
// request that arrived through the ring: pure functions, tested without a
// kernel (ring_transport.h uses them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace blobfs {

enum class Transport { kAuto, kUring, kDev };

// Whether to use the ring, and the one log line that says why. `param` is
// the text of /sys/module/fuse/parameters/enable_uring, or nullopt when the
// kernel has no such parameter. Throws std::runtime_error when the ring was
// asked for (kUring) and cannot be had.
struct TransportChoice {
  bool ring = false;
  std::string why;
};
TransportChoice choose_transport(Transport wanted, const std::optional<std::string>& param);

// The size of a ring request's per-opcode header (in op_in): the request's
// total length less the in-header and the payload; nullopt when the numbers
// cannot belong to one request.
std::optional<size_t> ring_op_header_size(uint64_t request_len, uint64_t payload_size);

}  // namespace blobfs
