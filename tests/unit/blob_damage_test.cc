// Damaged and hostile blob directories: every one is a clear error that names
// the file, never a crash, never a silent wrong answer, never a write.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "tensorblob/blob.h"
#include "tensorblob/error.h"
#include "tensorblob/fault_guard.h"
#include "test_util.h"

using namespace tensorblob;
using testutil::TempDir;
namespace fs = std::filesystem;

namespace {

// A committed blob of 5 float32 (2,) tensors in blocks of 2: three block files.
std::string make_blob(const TempDir& t) {
  std::string p = t / "b";
  Blob b = Blob::open(p, "w", testutil::f32_options({2}, 2));
  b.write(testutil::iota_f32(5, {2}));
  return p;
}

}  // namespace

TEST_CASE("a missing .conf is an error naming it, in every mode") {
  TempDir t;
  std::string p = make_blob(t);
  fs::remove(p + "/.conf");
  for (const char* mode : {"r", "r+", "a", "a+", "w", "w+"}) {
    INFO(mode);
    CHECK_THROWS_WITH(Blob::open(p, mode, testutil::f32_options({2}, 2)),
                      Catch::Contains(p + "/.conf: missing"));
  }
  CHECK(testutil::block_files(p).size() == 3);  // nothing was deleted
}

TEST_CASE("a missing .stat is an error naming it and nothing is modified") {
  TempDir t;
  std::string p = make_blob(t);
  fs::remove(p + "/.stat");
  for (const char* mode : {"r", "r+", "a", "w"}) {
    INFO(mode);
    CHECK_THROWS_WITH(Blob::open(p, mode), Catch::Contains(p + "/.stat: status file missing"));
  }
  CHECK(!fs::exists(p + "/.stat"));
  CHECK(testutil::block_files(p).size() == 3);
}

TEST_CASE("corrupt .conf and .stat files are format errors naming the file") {
  TempDir t;
  std::string p = make_blob(t);
  std::string conf = testutil::read_file(p + "/.conf"), stat = testutil::read_file(p + "/.stat");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {".conf", ""},
      {".conf", conf.substr(0, conf.size() / 2)},
      {".conf", "\xff\xfe garbage"},
      {".stat", ""},
      {".stat", stat.substr(0, 10)},
      {".stat", R"({"len":5,"bds":["../b/x","y","z"]})"},
      {".stat", R"({"len":9,"bds":[]})"},
  };
  for (const auto& [file, content] : cases) {
    INFO(file << " = " << content);
    testutil::write_file(p + "/.conf", conf);
    testutil::write_file(p + "/.stat", stat);
    testutil::write_file(p + "/" + file, content);
    testutil::check_error([&] { Blob::open(p, "r"); }, Errc::kFormat, p + "/" + file);
  }
}

TEST_CASE(".stat listing too few blocks for its length is refused") {
  TempDir t;
  std::string p = make_blob(t);
  auto st = parse_blob_status(testutil::read_file(p + "/.stat"), "s");
  st.blocks.pop_back();
  testutil::write_file(p + "/.stat", format_blob_status(st));
  CHECK_THROWS_WITH(Blob::open(p, "r"), Catch::Contains("5 tensors need 3 blocks of 2 but only 2 are listed"));
}

TEST_CASE("a missing block fails only the reads that touch it, naming the file") {
  TempDir t;
  std::string p = make_blob(t);
  std::string gone = testutil::block_path(p, 1);
  fs::remove(gone);
  Blob r = Blob::open(p, "r");
  CHECK(testutil::first(r.get(0)) == 0);
  CHECK(testutil::first(r.get(4)) == 4000);
  CHECK_THROWS_WITH(r.get(2), Catch::Contains(gone + ": block file listed in .stat is missing"));
  testutil::check_error([&] { r.get(3); }, Errc::kNotFound, gone);
  CHECK_THROWS_WITH(r.read(), Catch::Contains(gone));
  CHECK(!fs::exists(gone));  // never recreated, unlike Python
}

TEST_CASE("a short block is an error naming it and is not extended") {
  TempDir t;
  std::string p = make_blob(t);
  std::string shrunk = testutil::block_path(p, 2);
  fs::resize_file(shrunk, 7);
  Blob r = Blob::open(p, "r+");
  CHECK_THROWS_WITH(r.get(4), Catch::Contains(shrunk + ": block file is 7 bytes, expected 16"));
  testutil::check_error([&] { r.get(-1); }, Errc::kFormat, shrunk);
  CHECK(fs::file_size(shrunk) == 7);
  CHECK(testutil::first(r.get(1)) == 1000);
}

TEST_CASE("a longer block is accepted and its extra bytes ignored") {
  TempDir t;
  std::string p = make_blob(t);
  fs::resize_file(testutil::block_path(p, 0), 1000);
  CHECK(testutil::first(Blob::open(p, "r").get(1)) == 1000);
}

TEST_CASE("a block replaced by a directory or a symlink is refused") {
  TempDir t;
  std::string p = make_blob(t);
  std::string b0 = testutil::block_path(p, 0), b1 = testutil::block_path(p, 1);
  fs::remove(b0);
  fs::create_directory(b0);
  testutil::write_file(t / "outside", std::string(16, 'x'));
  fs::remove(b1);
  fs::create_symlink(t / "outside", b1);
  Blob r = Blob::open(p, "r");
  CHECK_THROWS_WITH(r.get(0), Catch::Contains(b0 + ": block file is not a regular file"));
  CHECK_THROWS_WITH(r.get(2), Catch::Contains(b1 + ": block file is a symbolic link"));
  CHECK(testutil::first(r.get(4)) == 4000);
}

TEST_CASE("unlisted files and leftover temp files in the directory are ignored") {
  TempDir t;
  std::string p = make_blob(t);
  testutil::write_file(p + "/.stat.tmp", "{garbage");
  testutil::write_file(p + "/0f0f0f0f-0000-4000-8000-000000000000", "orphan");
  Blob r = Blob::open(p, "r");
  CHECK(r.size() == 5);
  CHECK(testutil::first(r.get(4)) == 4000);
}

TEST_CASE("a read-only directory opens for reading") {
  TempDir t;
  std::string p = make_blob(t);
  ::chmod(p.c_str(), 0555);
  CHECK(Blob::open(p, "r").size() == 5);
  ::chmod(p.c_str(), 0755);
}

TEST_CASE("a block truncated under its mapping is an error, not a crash, with the fault guard") {
  install_fault_guard();
  TempDir t;
  OpenOptions o = testutil::f32_options({1024}, 4);  // 16 KiB blocks: truncation cuts whole pages
  {
    Blob w = Blob::open(t / "b", "w", o);
    w.write(testutil::iota_f32(8, {1024}));
  }
  Blob r = Blob::open(t / "b", "r");
  CHECK(testutil::first(r.get(0)) == 0);  // maps block 0
  std::string block = testutil::block_path(t / "b", 0);
  fs::resize_file(block, 4096);           // pages past 4 KiB are gone under the mapping
  testutil::check_error([&] { r.get(2); }, Errc::kIo, block + ": block file shrank while it was read");
  // The mapping was dropped: the next access reopens the file and reports its size.
  testutil::check_error([&] { r.get(3); }, Errc::kFormat, block + ": block file is 4096 bytes");
  CHECK(testutil::first(r.get(5)) == 5000);  // the other block still reads
  std::vector<int64_t> idx = {5, 1};
  CHECK_NOTHROW(r.gather(std::vector<int64_t>{5, 6}));
  CHECK_THROWS_AS(r.gather(idx), Error);
}

TEST_CASE("a gather from a block cut inside a mapped page is an error, not zeros, with the fault guard") {
  install_fault_guard();
  TempDir t;
  OpenOptions o = testutil::f32_options({1024}, 4);  // 16 KiB blocks of four 4 KiB tensors
  {
    Blob w = Blob::open(t / "b", "w", o);
    w.write(testutil::iota_f32(8, {1024}));
  }
  Blob r = Blob::open(t / "b", "r");
  CHECK(testutil::first(r.gather(std::vector<int64_t>{3, 0})) == 3000);  // maps block 0
  std::string block = testutil::block_path(t / "b", 0);
  fs::resize_file(block, 16 * 1024 - 100);  // tensor 3's last 100 bytes: the rest of its page reads as zeros
  CHECK(testutil::firsts(r.gather(std::vector<int64_t>{2, 0, 5})) == std::vector<float>{2000, 0, 5000});
  testutil::check_error([&] { r.gather(std::vector<int64_t>{1, 3, 5}); }, Errc::kIo,
                        block + ": block file shrank while it was read");
}
