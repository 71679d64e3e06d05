// truncate, extend and remove; following tensorblob's test_extend.py and
// test_unlink.py.
#include <catch2/catch.hpp>

#include "tensorblob/blob.h"
#include "tensorblob/error.h"
#include "test_util.h"

using namespace tensorblob;
using testutil::TempDir;
using testutil::firsts;
using V = std::vector<float>;

namespace {

void make(const std::string& p, int64_t n, int64_t block_size, float base) {
  Blob b = Blob::open(p, "w", testutil::f32_options({2}, block_size));
  b.write(testutil::iota_f32(n, {2}, base));
}

V expected(int64_t n, float base) { return firsts(testutil::iota_f32(n, {2}, base)); }

V concat(V a, const V& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("truncate removes whole blocks past the end and commits") {
  TempDir t;
  std::string p = t / "b";
  make(p, 10, 3, 0);
  REQUIRE(testutil::block_files(p).size() == 4);
  {
    Blob b = Blob::open(p, "r+");
    b.seek(8);
    b.truncate(4);
    CHECK(b.size() == 4);
    CHECK(b.tell() == 4);
    CHECK(testutil::block_files(p).size() == 2);
    CHECK(Blob::open(p, "r").size() == 4);  // committed without close
  }
  Blob r = Blob::open(p, "r");
  CHECK(firsts(r.read()) == expected(4, 0));
}

TEST_CASE("truncate defaults to the cursor and refuses growing") {
  TempDir t;
  std::string p = t / "b";
  make(p, 6, 4, 0);
  Blob b = Blob::open(p, "r+");
  b.seek(2);
  b.truncate();
  CHECK(b.size() == 2);
  CHECK_THROWS_WITH(b.truncate(3), Catch::Contains("cannot truncate a blob of 2 tensors to 3"));
  CHECK_THROWS_AS(b.truncate(-1), Error);
  b.truncate(0);
  CHECK(b.size() == 0);
  CHECK(testutil::block_files(p).empty());
  CHECK(testutil::read_file(p + "/.stat") == R"({"len":0,"bds":[]})");
}

TEST_CASE("writing after truncate into the kept block overwrites its stale tail") {
  TempDir t;
  std::string p = t / "b";
  make(p, 4, 4, 0);
  Blob b = Blob::open(p, "r+");
  b.truncate(1);
  b.seek(0, Whence::kEnd);
  b.write(testutil::iota_f32(2, {2}, 0.25f));
  b.seek(0);
  CHECK(firsts(b.read()) == V{0, 0.25f, 1000.25f});
}

TEST_CASE("extend of a block-aligned blob copies blocks and keeps order") {
  TempDir t;
  make(t / "a", 6, 3, 0);
  make(t / "o", 7, 3, 0.5f);
  {
    Blob a = Blob::open(t / "a", "a");
    a.extend(Blob::open(t / "o", "r"));
    CHECK(a.size() == 13);
  }
  CHECK(firsts(Blob::open(t / "a", "r").read()) == concat(expected(6, 0), expected(7, 0.5f)));
  CHECK(testutil::block_files(t / "a").size() == 5);
}

TEST_CASE("extend of an unaligned blob moves its tail after other's full blocks, as tensorblob does") {
  TempDir t;
  make(t / "a", 4, 3, 0);     // one full block + 1 tail tensor
  make(t / "o", 7, 3, 0.5f);  // two full blocks + 1 tail tensor
  {
    Blob a = Blob::open(t / "a", "r+");
    a.extend(Blob::open(t / "o", "r"));
  }
  V a = expected(4, 0), o = expected(7, 0.5f);
  V want = {a[0], a[1], a[2], o[0], o[1], o[2], o[3], o[4], o[5], a[3], o[6]};
  Blob r = Blob::open(t / "a", "r");
  CHECK(firsts(r.read()) == want);
  CHECK(testutil::block_files(t / "a").size() == 4);  // the old partial block is gone
}

TEST_CASE("extend with keep_order appends tensor by tensor") {
  TempDir t;
  make(t / "a", 4, 3, 0);
  make(t / "o", 7, 3, 0.5f);
  {
    Blob a = Blob::open(t / "a", "a");
    a.extend(Blob::open(t / "o", "r"), /*keep_order=*/true);
  }
  CHECK(firsts(Blob::open(t / "a", "r").read()) == concat(expected(4, 0), expected(7, 0.5f)));
}

TEST_CASE("extend with a different block size keeps order") {
  TempDir t;
  make(t / "a", 5, 3, 0);
  make(t / "o", 9, 4, 0.5f);
  {
    Blob a = Blob::open(t / "a", "a");
    a.extend(Blob::open(t / "o", "r"));
  }
  CHECK(firsts(Blob::open(t / "a", "r").read()) == concat(expected(5, 0), expected(9, 0.5f)));
}

TEST_CASE("extend from an empty blob and into an empty blob") {
  TempDir t;
  make(t / "a", 0, 3, 0);
  make(t / "o", 5, 3, 0.5f);
  make(t / "e", 0, 3, 0);
  {
    Blob a = Blob::open(t / "a", "a");
    a.extend(Blob::open(t / "e", "r"));
    CHECK(a.size() == 0);
    a.extend(Blob::open(t / "o", "r"));
  }
  CHECK(firsts(Blob::open(t / "a", "r").read()) == expected(5, 0.5f));
}

TEST_CASE("extend refuses a dtype or shape mismatch, itself, and an unreadable source") {
  TempDir t;
  make(t / "a", 2, 3, 0);
  {
    Blob::open(t / "s", "w", testutil::f32_options({3}, 3));
  }
  OpenOptions i64;
  i64.dtype = "int64";
  i64.shape = Shape{2};
  { Blob::open(t / "i", "w", i64); }
  Blob a = Blob::open(t / "a", "a+");
  CHECK_THROWS_WITH(a.extend(Blob::open(t / "s", "r")), Catch::Contains("with " + (t / "s")));
  CHECK_THROWS_WITH(a.extend(Blob::open(t / "i", "r")), Catch::Contains("a int64 (2,) blob"));
  CHECK_THROWS_WITH(a.extend(a), Catch::Contains("with itself"));
  CHECK(a.size() == 2);
}

TEST_CASE("remove deletes the blocks, the config files and the directory") {
  TempDir t;
  make(t / "b", 7, 3, 0);
  CHECK(Blob::remove(t / "b"));
  CHECK(!testutil::fs::exists(t / "b"));
}

TEST_CASE("remove keeps a directory that holds foreign files") {
  TempDir t;
  make(t / "b", 7, 3, 0);
  testutil::write_file(t / "b/notes.txt", "mine");
  CHECK(!Blob::remove(t / "b"));
  CHECK(testutil::fs::exists(t / "b/notes.txt"));
  CHECK(!testutil::fs::exists(t / "b/.conf"));
  CHECK(testutil::block_files(t / "b") == std::vector<std::string>{"notes.txt"});
}

TEST_CASE("remove of a missing blob is an error") {
  TempDir t;
  CHECK_THROWS_WITH(Blob::remove(t / "nope"), Catch::Contains("no such blob"));
}
