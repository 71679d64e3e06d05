// What a hostile user broke (issue: second hardening pass), at the library:
// special files where store files should be, a sidecar cut or damaged under
// a reader, files replaced under a mapping, leaked blocks, space reserved far
// ahead of the data.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>

#include "tensorblob/blob.h"
#include "tensorblob/error.h"
#include "tensorblob/fault_guard.h"
#include "tensorblob/ragged.h"
#include "tensorblob/store.h"
#include "tensorblob/verify.h"
#include "test_util.h"

using namespace tensorblob;
using testutil::TempDir;
namespace fs = std::filesystem;

namespace {

std::string make_blob(const TempDir& t, int64_t n = 10) {
  const std::string p = t / "b";
  Blob w = Blob::open(p, "w", testutil::f32_options({4}, 4));
  w.write(testutil::iota_f32(n, {4}));
  w.close();
  return p;
}

void replace_with_fifo(const std::string& path) {
  fs::remove_all(path);
  REQUIRE(::mkfifo(path.c_str(), 0644) == 0);
}

}  // namespace

TEST_CASE("a FIFO where a store file should be is refused at once, naming it") {
  TempDir t;
  for (const char* name : {".conf", ".stat"}) {
    INFO(name);
    const std::string p = make_blob(t);
    replace_with_fifo(p + "/" + name);
    testutil::check_error([&] { Blob::open(p, "r"); }, Errc::kFormat, p + "/" + name + ": not a regular file (a FIFO)");
    fs::remove_all(p);
  }
  const std::string p = make_blob(t);
  replace_with_fifo(testutil::block_path(p, 1));
  Blob r = Blob::open(p, "r");
  CHECK(testutil::first(r.get(0)) == 0);
  testutil::check_error([&] { r.get(5); }, Errc::kFormat, "block file is not a regular file (a FIFO)");
  // A FIFO sidecar is a damaged sidecar: reported, never waited on.
  replace_with_fifo(p + "/.hashes.npy");
  auto ds = open_dataset(p);
  CHECK_THAT(ds->facts().item_hashes, Catch::StartsWith("damaged:") && Catch::Contains("a FIFO"));
}

TEST_CASE("a damaged sidecar is reported and ignored; verify --update rewrites it") {
  TempDir t;
  const std::string p = make_blob(t);
  update_blob_item_hashes(p);
  const std::string good = testutil::read_file(p + "/.hashes.npy");
  for (std::string bad : {std::string(), std::string("garbage, not numpy"), good.substr(0, good.size() - 5)}) {
    testutil::write_file(p + "/.hashes.npy", bad);
    auto ds = open_dataset(p);
    CHECK(ds->count() == 10);
    CHECK(ds->item_hashes() == nullptr);
    CHECK_THAT(ds->facts().item_hashes, Catch::StartsWith("damaged:"));
    std::vector<std::byte> buf(48);
    CHECK_NOTHROW(ds->read(0, 48, buf.data()));
    VerifyReport r = verify_blob(p);
    CHECK(r.ok);
    CHECK(!r.has_item_hashes);
    update_blob_item_hashes(p);
    CHECK(verify_blob(p).has_item_hashes);
  }
}

TEST_CASE("a sidecar cut while a reader checks against it is an error, not a crash") {
  TempDir t;
  const std::string p = make_blob(t);
  update_blob_item_hashes(p);
  auto ds = open_dataset(p);
  std::vector<std::byte> buf(ds->item_offset(10));
  CHECK_NOTHROW(ds->read_checked(0, buf.size(), buf.data()));
  REQUIRE(::truncate((p + "/.hashes.npy").c_str(), 100) == 0);
  CHECK_THROWS_AS(ds->read_checked(0, buf.size(), buf.data()), Error);
}

TEST_CASE("a checked read hashes what it returns every time: a byte changed later is never served") {
  TempDir t;
  const std::string p = make_blob(t);
  update_blob_item_hashes(p);
  auto ds = open_dataset(p);
  std::vector<std::byte> buf(16);
  CHECK_NOTHROW(ds->read_checked(ds->item_offset(6), 16, buf.data()));
  // Flip a byte of tensor 6 in its block, in place (same inode, same mapping).
  const std::string block = testutil::block_path(p, 1);
  int fd = ::open(block.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  unsigned char c;
  REQUIRE(::pread(fd, &c, 1, 2 * 16 + 3) == 1);
  c ^= 0x40;
  REQUIRE(::pwrite(fd, &c, 1, 2 * 16 + 3) == 1);
  ::close(fd);
  testutil::check_error([&] { ds->read_checked(ds->item_offset(6), 16, buf.data()); }, Errc::kCorrupt,
                        "item 6 does not match its recorded hash");
}

TEST_CASE("a ragged dataset rebuilt under a reader still reads its old bytes, with no false error") {
  install_fault_guard();  // the shrink checks only run with it
  TempDir t;
  const std::string base = t / "d";
  auto build = [&](float value) {
    RaggedBuilder b(base);
    std::vector<float> item(64, value);
    for (int i = 0; i < 5; ++i) b.add("<f4", {16, 4}, item.data(), item.size() * 4, "item");
    b.commit();
  };
  build(1.0f);
  auto old = open_dataset(base);
  std::vector<std::byte> before(old->item_offset(5));
  old->read(0, before.size(), before.data());
  build(2.0f);  // new files renamed over the old ones
  std::vector<std::byte> again(before.size());
  CHECK_NOTHROW(old->read(0, again.size(), again.data()));
  CHECK(again == before);
  const auto now = open_dataset(base)->item_copy(0);
  float first = 0;
  std::memcpy(&first, now.data(), 4);
  CHECK(first == 2.0f);  // and a new reader sees the new dataset
}

TEST_CASE("files a killed writer left are reported by verify and removed by the next writer; others are kept") {
  TempDir t;
  const std::string p = make_blob(t);
  const std::string ours = "0a1b2c3d-0000-4000-8000-0000abcd7b1b";    // our tag: 7b1b
  const std::string python = "0a1b2c3d-0000-4000-8000-0000abcd1234";  // a UUID Python might have left
  for (const auto& name : {ours, python, std::string("notes.txt")}) testutil::write_file(p + "/" + name, "x");
  testutil::write_file(p + "/.stat.tmp.99999", "{");
  VerifyReport r = verify_blob(p);
  CHECK(r.ok);
  CHECK(r.strays.size() == 4);
  CHECK(r.stray_bytes == 4);
  { Blob::open(p, "a").close(); }
  CHECK(!fs::exists(p + "/" + ours));
  CHECK(!fs::exists(p + "/.stat.tmp.99999"));
  CHECK(fs::exists(p + "/" + python));
  CHECK(fs::exists(p + "/notes.txt"));
  CHECK(verify_blob(p).strays.size() == 2);
}

TEST_CASE("space is reserved as the data grows, not a whole block ahead") {
  TempDir t;
  if (!testutil::can_fallocate(t.path())) {
    WARN("fallocate is not supported under " << t.path() << ": nothing to check");
    return;
  }
  // 4 MiB tensors with the default 8192 a block: a 32 GiB block file.
  const std::string p = t / "big";
  Blob w = Blob::open(p, "w", testutil::f32_options({1 << 20}, kDefaultBlockSize));
  w.write(testutil::iota_f32(2, {1 << 20}));
  w.close();
  struct stat st;
  REQUIRE(::stat(testutil::block_path(p, 0).c_str(), &st) == 0);
  CHECK(st.st_size == int64_t{8192} << 22);                // full size, as Python writes it
  CHECK(st.st_blocks * 512 >= int64_t{8} << 20);           // what was written is reserved
  CHECK(st.st_blocks * 512 <= int64_t{24} << 20);          // and one step ahead, not 32 GiB
}
