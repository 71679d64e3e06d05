// What a write through a writable mount means, without a mount: the
// handle's plan and the bytes it produces, for every kind of file.
#include "write_handle.h"

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "tensorblob/npy.h"
#include "test_util.h"

using namespace blobfs;
using testutil::TempDir;

namespace {

// A blob of 10 float32 tensors of shape (2,) (8 bytes each); the committed
// byte k of the concatenation is k % 251.
BlobShape ten() { return BlobShape{10, 8, "<f4", {2}}; }

void committed_bytes(uint64_t at, size_t n, std::byte* dst) {
  for (size_t k = 0; k < n; ++k) dst[k] = std::byte((at + k) % 251);
}

struct Fixture {
  TempDir t;
  std::shared_ptr<tensorblob::Storage> dir = tensorblob::open_posix_storage(t.path());
  int serial = 0;
  WriteHandle handle(Node node, bool truncated = false, bool created = false, BlobShape b = ten()) {
    return WriteHandle(node, b, truncated, created, std::make_unique<Staging>(dir, ".stage" + std::to_string(serial++)));
  }
};

std::string bytes(const std::vector<std::byte>& v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size()); }

std::string rewritten(const WriteHandle& h, int64_t first, int64_t n) {
  std::vector<std::byte> out(static_cast<size_t>(n * 8));
  h.rewritten(first, n, out.data(), committed_bytes);
  return bytes(out);
}

std::string appended(const WriteHandle& h, int64_t k, int64_t n) {
  std::vector<std::byte> out(static_cast<size_t>(n * 8));
  h.appended(k, n, out.data());
  return bytes(out);
}

std::string committed(uint64_t at, size_t n) {
  std::vector<std::byte> out(n);
  committed_bytes(at, n, out.data());
  return bytes(out);
}

}  // namespace

TEST_CASE("cp over a tensor file replaces that tensor, and only a whole tensor") {
  Fixture f;
  WriteHandle h = f.handle({NodeKind::kItemBin, 3, 4}, /*truncated=*/true);
  REQUIRE(h.write(0, "ABCDEFGH", 8) == 0);
  WritePlan p;
  REQUIRE(h.plan(ten(), p) == 0);
  CHECK(p.first == 3);
  CHECK(p.count == 1);
  CHECK(p.append == 0);
  CHECK(rewritten(h, 3, 1) == "ABCDEFGH");
  WriteHandle part = f.handle({NodeKind::kItemBin, 3, 4}, true);
  REQUIRE(part.write(0, "ABCD", 4) == 0);
  CHECK(part.plan(ten(), p) == EINVAL);            // a partial tensor at close
  CHECK(part.write(4, "EFGHIJKL", 8) == EFBIG);     // past the end of a tensor file
}

TEST_CASE("a write inside a tensor file keeps the bytes around it") {
  Fixture f;
  WriteHandle h = f.handle({NodeKind::kItemBin, 3, 4});
  REQUIRE(h.write(2, "xy", 2) == 0);
  WritePlan p;
  REQUIRE(h.plan(ten(), p) == 0);
  CHECK(p.first == 3);
  CHECK(p.count == 1);
  std::string want = committed(24, 8);
  want[2] = 'x';
  want[3] = 'y';
  CHECK(rewritten(h, 3, 1) == want);
  CHECK(h.size() == 8);
}

TEST_CASE("later writes win over earlier ones where they overlap") {
  Fixture f;
  WriteHandle h = f.handle({NodeKind::kRangeBin, 2, 5});  // 24 bytes
  REQUIRE(h.write(0, "aaaaaaaaaa", 10) == 0);
  REQUIRE(h.write(4, "bbb", 3) == 0);
  REQUIRE(h.write(8, "cccccccc", 8) == 0);
  WritePlan p;
  REQUIRE(h.plan(ten(), p) == 0);
  CHECK(p.first == 2);
  CHECK(p.count == 2);  // bytes 0..15: tensors 2 and 3; tensor 4 untouched
  CHECK(rewritten(h, 2, 2) == "aaaabbbacccccccc");
}

TEST_CASE("bytes at all.bin's end append whole tensors; a partial one or a hole is refused") {
  Fixture f;
  WriteHandle h = f.handle({NodeKind::kAllBin, 0, 10});
  REQUIRE(h.write(80, "0123456789abcdef", 16) == 0);
  REQUIRE(h.write(8, "zz", 2) == 0);  // and an overwrite of tensor 1
  WritePlan p;
  REQUIRE(h.plan(ten(), p) == 0);
  CHECK(p.append == 2);
  CHECK(p.first == 1);
  CHECK(p.count == 1);
  CHECK(appended(h, 0, 2) == "0123456789abcdef");
  CHECK(rewritten(h, 1, 1) == "zz" + committed(10, 6));
  // Appends land at the end the blob has at commit, even if it moved.
  BlobShape moved = ten();
  moved.count = 12;
  REQUIRE(h.plan(moved, p) == 0);
  CHECK(p.append == 2);
  CHECK(h.write(200, "x", 1) == EINVAL);  // a hole past the end
  WriteHandle part = f.handle({NodeKind::kAllBin, 0, 10});
  REQUIRE(part.write(80, "012", 3) == 0);
  CHECK(part.plan(ten(), p) == EINVAL);
}

TEST_CASE("all.bin opened with O_TRUNC replaces the blob's contents") {
  Fixture f;
  WriteHandle h = f.handle({NodeKind::kAllBin, 0, 10}, true);
  REQUIRE(h.write(0, "0123456789abcdefABCDEFGH", 24) == 0);
  WritePlan p;
  REQUIRE(h.plan(ten(), p) == 0);
  CHECK(p.replace);
  CHECK(p.append == 3);
  CHECK(p.count == 0);
  CHECK(appended(h, 1, 2) == "89abcdefABCDEFGH");
  WriteHandle empty = f.handle({NodeKind::kAllBin, 0, 10}, true);
  REQUIRE(empty.plan(ten(), p) == 0);  // `: > all.bin` empties the blob
  CHECK(p.replace);
  CHECK(p.append == 0);
}

TEST_CASE("np.save into a tensor file: the header must be the blob's dtype, shape and C order") {
  Fixture f;
  auto save = [&](const std::string& descr, tensorblob::Shape shape, bool created = false, int64_t index = 3) {
    WriteHandle h = f.handle({NodeKind::kItemNpy, index, index + 1}, true, created);
    std::string file = tensorblob::npy_header(descr, shape) + "ABCDEFGH";
    REQUIRE(h.write(0, file.data(), file.size()) == 0);
    WritePlan p;
    return std::make_pair(h.plan(ten(), p), p);
  };
  auto [ok, p] = save("<f4", {2});
  CHECK(ok == 0);
  CHECK(p.first == 3);
  CHECK(p.count == 1);
  CHECK(save("<f4", {1, 2}).first == 0);  // a batch of one
  CHECK(save("<i4", {2}).first == EINVAL);
  CHECK(save("<f4", {3}).first == EINVAL);
  CHECK(save(">f4", {2}).first == EINVAL);
  {
    WriteHandle h = f.handle({NodeKind::kItemNpy, 3, 4}, true);
    std::string hdr = tensorblob::npy_header("<f4", {2});
    hdr.replace(hdr.find("False"), 5, "True ");  // fortran_order
    hdr += "ABCDEFGH";
    REQUIRE(h.write(0, hdr.data(), hdr.size()) == 0);
    WritePlan q;
    CHECK(h.plan(ten(), q) == EINVAL);
  }
  // To the next index: an append of one tensor, refused if the index moved.
  auto [next, a] = save("<f4", {2}, true, 10);
  CHECK(next == 0);
  CHECK(a.append == 1);
  CHECK(a.append_at == 10);
  WriteHandle late = f.handle({NodeKind::kItemNpy, 10, 11}, true, true);
  std::string file = tensorblob::npy_header("<f4", {2}) + "ABCDEFGH";
  REQUIRE(late.write(0, file.data(), file.size()) == 0);
  BlobShape moved = ten();
  moved.count = 11;
  WritePlan q;
  CHECK(late.plan(moved, q) == EEXIST);
}

TEST_CASE("writing into a .npy in place may rewrite its header, not change it") {
  Fixture f;
  const std::string hdr = tensorblob::npy_header("<f4", {2});
  WriteHandle same = f.handle({NodeKind::kItemNpy, 3, 4});
  REQUIRE(same.write(0, hdr.data(), hdr.size()) == 0);
  REQUIRE(same.write(hdr.size() + 4, "wxyz", 4) == 0);
  WritePlan p;
  REQUIRE(same.plan(ten(), p) == 0);
  CHECK(rewritten(same, 3, 1) == committed(24, 4) + "wxyz");
  WriteHandle other = f.handle({NodeKind::kItemNpy, 3, 4});
  REQUIRE(other.write(10, "X", 1) == 0);
  CHECK(other.plan(ten(), p) == EINVAL);
}

TEST_CASE("after a commit through fsync, writes start from the new state") {
  Fixture f;
  WriteHandle h = f.handle({NodeKind::kAllBin, 0, 10});
  REQUIRE(h.write(80, "01234567", 8) == 0);
  BlobShape after = ten();
  after.count = 11;
  h.committed(after);
  CHECK(!h.dirty());
  CHECK(h.size() == 88);
  REQUIRE(h.write(88, "89abcdef", 8) == 0);
  WritePlan p;
  REQUIRE(h.plan(after, p) == 0);
  CHECK(p.append == 1);
  CHECK(appended(h, 0, 1) == "89abcdef");
}
