// Per-tensor hashes of fixed-shape blobs: recording, checking, staleness.
#include <catch2/catch.hpp>

#include "tensorblob/blob.h"
#include "tensorblob/dataset.h"
#include "tensorblob/error.h"
#include "tensorblob/verify.h"
#include "tensorblob/presentation.h"
#include "tensorblob/store.h"
#include "test_util.h"

using namespace tensorblob;
using testutil::TempDir;
namespace fs = std::filesystem;

namespace {

std::string make(const TempDir& t, bool record) {
  OpenOptions o = testutil::f32_options({4}, 3);
  o.record_hashes = record;
  Blob b = Blob::open(t / "b", "w", o);
  b.write(testutil::iota_f32(10, {4}));
  b.close();
  return t / "b";
}

void corrupt_tensor(const std::string& dir, int64_t i) {
  auto st = parse_blob_status(testutil::read_file(dir + "/.stat"), "s");
  std::string block = dir + "/" + st.blocks[i / 3];
  std::string bytes = testutil::read_file(block);
  bytes[(i % 3) * 16 + 2] ^= 0x10;
  testutil::write_file(block, bytes);
}

}  // namespace

TEST_CASE("record_hashes writes a sidecar on close and verify names the first bad tensor") {
  TempDir t;
  std::string dir = make(t, true);
  REQUIRE(fs::exists(dir + "/.hashes.npy"));
  VerifyReport ok = verify_blob(dir);
  CHECK(ok.ok);
  CHECK(ok.has_item_hashes);
  CHECK(ok.items_checked == 10);
  corrupt_tensor(dir, 7);
  corrupt_tensor(dir, 8);
  VerifyReport bad = verify_blob(dir);
  CHECK(!bad.ok);
  REQUIRE(bad.first_bad);
  CHECK(*bad.first_bad == 7);
  auto ds = open_dataset(dir);
  std::vector<std::byte> buf(ds->item_offset(10));
  CHECK_NOTHROW(ds->read_checked(0, ds->item_offset(7), buf.data()));
  CHECK_THROWS_WITH(ds->read_checked(ds->item_offset(5), ds->item_offset(4), buf.data()),
                    Catch::Contains("item 7 does not match its recorded hash"));
}

TEST_CASE("without a sidecar verify reads every tensor and reports no hashes") {
  TempDir t;
  std::string dir = make(t, false);
  CHECK(!fs::exists(dir + "/.hashes.npy"));
  VerifyReport r = verify_blob(dir);
  CHECK(r.ok);
  CHECK(!r.has_item_hashes);
  CHECK(r.items_checked == 10);
  auto st = parse_blob_status(testutil::read_file(dir + "/.stat"), "s");
  fs::remove(dir + "/" + st.blocks[2]);
  CHECK_THROWS_WITH(verify_blob(dir), Catch::Contains(st.blocks[2]));
}

TEST_CASE("update records hashes; a later change makes them stale or removes them") {
  TempDir t;
  std::string dir = make(t, false);
  update_blob_item_hashes(dir);
  CHECK(verify_blob(dir).has_item_hashes);
  {
    Blob b = Blob::open(dir, "r+");
    b.seek(2);
    b.write(testutil::iota_f32(1, {4}, 0.5f));  // an overwrite
  }
  CHECK(!fs::exists(dir + "/.hashes.npy"));  // our writer drops hashes it invalidated
  update_blob_item_hashes(dir);
  std::string sidecar = testutil::read_file(dir + "/.hashes.npy");
  { Blob::open(dir, "a").write(testutil::iota_f32(1, {4})); }
  testutil::write_file(dir + "/.hashes.npy", sidecar);  // as if another tool appended and left it
  VerifyReport r = verify_blob(dir);
  CHECK(r.ok);
  CHECK(r.stale_item_hashes);
  CHECK(!r.has_item_hashes);
  CHECK(meta_yaml(*open_dataset(dir), {}).find("stale") != std::string::npos);
}

TEST_CASE("remove deletes the sidecar too") {
  TempDir t;
  std::string dir = make(t, true);
  CHECK(Blob::remove(dir));
}
