#include "transport.h"

#include <linux/fuse.h>

#include <stdexcept>

namespace blobfs {

namespace {
constexpr size_t kOpInSize = 128;  // FUSE_URING_OP_IN_OUT_SZ: a ring entry's per-opcode header
}  // namespace

TransportChoice choose_transport(Transport wanted, const std::optional<std::string>& param) {
  if (wanted == Transport::kDev) return {false, "transport: /dev/fuse (transport: dev)"};
  const char* knob = "/sys/module/fuse/parameters/enable_uring";
  std::string why;
  if (!param) why = std::string("this kernel has no FUSE over io_uring (no ") + knob + ")";
  else if (param->empty() || ((*param)[0] != 'Y' && (*param)[0] != 'y' && (*param)[0] != '1'))
    why = std::string("FUSE over io_uring is off (") + knob + " is " +
          (param->empty() ? std::string("empty") : param->substr(0, param->find('\n'))) + ")";
  if (why.empty()) return {true, "transport: io_uring, one queue per CPU"};
  if (wanted == Transport::kUring)
    throw std::runtime_error("transport: uring, but " + why + "; set it to Y as root, or use transport: auto");
  return {false, "transport: /dev/fuse, since " + why};
}

std::optional<size_t> ring_op_header_size(uint64_t request_len, uint64_t payload_size) {
  const uint64_t in = sizeof(fuse_in_header);
  if (request_len < in || payload_size > request_len - in) return std::nullopt;
  const uint64_t op = request_len - in - payload_size;
  if (op > kOpInSize) return std::nullopt;
  return static_cast<size_t>(op);
}

}  // namespace blobfs
