// The pure parts of the io_uring transport: which transport a start gets
// and why, and how a ring request's lengths split into its parts.
#include "transport.h"

#include <linux/fuse.h>

#include <catch2/catch.hpp>
#include <stdexcept>

using namespace blobfs;

TEST_CASE("the transport follows the kernel's switch, and says why") {
  CHECK(choose_transport(Transport::kAuto, std::string("Y")).ring);
  CHECK(choose_transport(Transport::kAuto, std::string("Y")).why == "transport: io_uring, one queue per CPU");
  CHECK(choose_transport(Transport::kUring, std::string("1")).ring);

  const TransportChoice off = choose_transport(Transport::kAuto, std::string("N"));
  CHECK_FALSE(off.ring);
  CHECK(off.why == "transport: /dev/fuse, since FUSE over io_uring is off "
                   "(/sys/module/fuse/parameters/enable_uring is N)");
  const TransportChoice none = choose_transport(Transport::kAuto, std::nullopt);
  CHECK_FALSE(none.ring);
  CHECK(none.why.find("this kernel has no FUSE over io_uring") != std::string::npos);
  CHECK_FALSE(choose_transport(Transport::kAuto, std::string("")).ring);

  // dev wins whatever the kernel offers; uring refuses to start without it.
  CHECK_FALSE(choose_transport(Transport::kDev, std::string("Y")).ring);
  CHECK_THROWS_WITH(choose_transport(Transport::kUring, std::string("N")),
                    Catch::Contains("transport: uring, but FUSE over io_uring is off") &&
                        Catch::Contains("set it to Y as root"));
  CHECK_THROWS_AS(choose_transport(Transport::kUring, std::nullopt), std::runtime_error);
}

TEST_CASE("a ring request's per-opcode header is what its length leaves") {
  const uint64_t in = sizeof(fuse_in_header);
  CHECK(ring_op_header_size(in + sizeof(fuse_read_in), 0) == sizeof(fuse_read_in));  // READ: a header, no payload
  CHECK(ring_op_header_size(in + 11, 11) == 0u);                                      // LOOKUP: the name only
  CHECK(ring_op_header_size(in, 0) == 0u);                                            // STATFS
  CHECK(ring_op_header_size(in + sizeof(fuse_write_in) + 4096, 4096) == sizeof(fuse_write_in));
  CHECK_FALSE(ring_op_header_size(in - 1, 0));        // shorter than its in-header
  CHECK_FALSE(ring_op_header_size(in + 10, 11));      // more payload than length
  CHECK_FALSE(ring_op_header_size(in + 129, 0));      // a header larger than op_in
  CHECK_FALSE(ring_op_header_size(UINT64_MAX, 0));
}
