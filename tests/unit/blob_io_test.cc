// Cursor I/O: write, read, seek, tell, iteration; following tensorblob's
// test_io.py and test_simple_io.py.
#include <catch2/catch.hpp>

#include "tensorblob/blob.h"
#include "tensorblob/error.h"
#include "test_util.h"

using namespace tensorblob;
using testutil::TempDir;
using testutil::firsts;
using V = std::vector<float>;

TEST_CASE("written tensors read back exactly across block boundaries") {
  TempDir t;
  std::string p = t / "b";
  auto data = testutil::iota_f32(11, {2, 3});
  {
    Blob b = Blob::open(p, "w", testutil::f32_options({2, 3}, 4));
    CHECK(b.write(data) == 11);
    CHECK(b.size() == 11);
    CHECK(b.tell() == 11);
  }
  Blob r = Blob::open(p, "r");
  CHECK(r.size() == 11);
  Tensor all = r.read();
  CHECK(all.shape() == Shape{11, 2, 3});
  CHECK(all == data);
  CHECK(testutil::block_files(p).size() == 3);
}

TEST_CASE("a blob of exactly k full blocks has k block files, each full size") {
  TempDir t;
  std::string p = t / "b";
  {
    Blob b = Blob::open(p, "w", testutil::f32_options({5}, 3));
    b.write(testutil::iota_f32(6, {5}));
  }
  auto blocks = testutil::block_files(p);
  REQUIRE(blocks.size() == 2);
  for (const auto& f : blocks) CHECK(testutil::fs::file_size(p + "/" + f) == 3 * 5 * 4);
}

TEST_CASE("one tensor of the item shape and a batch are both accepted") {
  TempDir t;
  Blob b = Blob::open(t / "b", "w+", testutil::f32_options({3}, 2));
  Tensor one(DType::kFloat32, {3});
  one.values<float>()[0] = 42;
  CHECK(b.write(one) == 1);
  CHECK(b.write(testutil::iota_f32(2, {3}, 1)) == 2);
  b.seek(0);
  CHECK(firsts(b.read()) == V{42, 1, 1001});
}

TEST_CASE("writes with the wrong dtype or shape are refused and change nothing") {
  TempDir t;
  Blob b = Blob::open(t / "b", "w+", testutil::f32_options({2, 3}, 4));
  b.write(testutil::iota_f32(1, {2, 3}));
  CHECK_THROWS_WITH(b.write(Tensor(DType::kFloat64, {2, 3})), Catch::Contains("cannot write float64 tensors to a float32 blob"));
  CHECK_THROWS_WITH(b.write(Tensor(DType::kFloat32, {3, 2})), Catch::Contains("cannot write shape (3, 2)"));
  CHECK_THROWS_WITH(b.write(Tensor(DType::kFloat32, {6})), Catch::Contains("shape (6,)"));
  CHECK_THROWS_WITH(b.write(Tensor(DType::kFloat32, {1, 1, 2, 3})), Catch::Contains("shape (1, 1, 2, 3)"));
  CHECK(b.size() == 1);
}

TEST_CASE("read(n) reads from the cursor and stops at the end") {
  TempDir t;
  Blob b = Blob::open(t / "b", "w+", testutil::f32_options({2}, 3));
  b.write(testutil::iota_f32(7, {2}));
  b.seek(2);
  CHECK(firsts(b.read(3)) == V{2000, 3000, 4000});
  CHECK(b.tell() == 5);
  CHECK(firsts(b.read(10)) == V{5000, 6000});
  Tensor empty = b.read();
  CHECK(empty.shape() == Shape{0, 2});
  CHECK(b.read(0).shape() == Shape{0, 2});
}

TEST_CASE("seek clamps to [0, size] for SET, CUR and END") {
  TempDir t;
  Blob b = Blob::open(t / "b", "w+", testutil::f32_options({1}, 3));
  b.write(testutil::iota_f32(5, {1}));
  CHECK(b.seek(2) == 2);
  CHECK(b.seek(1, Whence::kCur) == 3);
  CHECK(b.seek(-10, Whence::kCur) == 0);
  CHECK(b.seek(-1, Whence::kEnd) == 4);
  CHECK(b.seek(3, Whence::kEnd) == 5);
  CHECK(b.seek(-7) == 0);
  CHECK(b.seek(99) == 5);
  CHECK(b.seek(INT64_MAX, Whence::kCur) == 5);
  CHECK(b.seek(INT64_MIN, Whence::kEnd) == 0);
  CHECK(b.tell() == 0);
}

TEST_CASE("r+ overwrites in place and extends at the end") {
  TempDir t;
  std::string p = t / "b";
  { Blob::open(p, "w", testutil::f32_options({2}, 3)).write(testutil::iota_f32(4, {2})); }
  {
    Blob b = Blob::open(p, "r+");
    b.seek(2);
    b.write(testutil::iota_f32(3, {2}, 0.5f));  // overwrites 2, 3 and appends one
    CHECK(b.size() == 5);
  }
  Blob r = Blob::open(p, "r");
  CHECK(firsts(r.read()) == V{0, 1000, 0.5f, 1000.5f, 2000.5f});
}

TEST_CASE("a and a+ always write at the end whatever the cursor") {
  TempDir t;
  std::string p = t / "b";
  { Blob::open(p, "w", testutil::f32_options({1}, 2)).write(testutil::iota_f32(3, {1})); }
  {
    Blob b = Blob::open(p, "a+");
    b.seek(0);
    CHECK(firsts(b.read(1)) == V{0});
    b.write(testutil::iota_f32(1, {1}, 7));
    CHECK(b.tell() == 4);
  }
  {
    Blob b = Blob::open(p, "a");
    b.seek(0);
    b.write(testutil::iota_f32(1, {1}, 8));
  }
  CHECK(firsts(Blob::open(p, "r").read()) == V{0, 1000, 2000, 7, 8});
}

TEST_CASE("iteration with next() goes from the cursor to the end") {
  TempDir t;
  Blob b = Blob::open(t / "b", "w+", testutil::f32_options({2}, 2));
  b.write(testutil::iota_f32(5, {2}));
  b.seek(2);
  V seen;
  while (auto x = b.next()) {
    CHECK(x->shape() == Shape{2});
    seen.push_back(testutil::first(*x));
  }
  CHECK(seen == V{2000, 3000, 4000});
  CHECK(b.tell() == 5);
}

TEST_CASE("writes are invisible to other openers until flush commits them") {
  TempDir t;
  std::string p = t / "b";
  Blob w = Blob::open(p, "w", testutil::f32_options({2}, 2));
  w.write(testutil::iota_f32(3, {2}));
  CHECK(Blob::open(p, "r").size() == 0);
  w.flush();
  CHECK(Blob::open(p, "r").size() == 3);
  w.write(testutil::iota_f32(1, {2}));
  CHECK(Blob::open(p, "r").size() == 3);
  w.close();
  CHECK(Blob::open(p, "r").size() == 4);
}

TEST_CASE("every dtype round-trips, including 0-d tensors") {
  TempDir t;
  for (const auto& info : all_dtypes()) {
    INFO(info.name);
    std::string p = t / std::string(info.name);
    OpenOptions o;
    o.dtype = std::string(info.name);
    o.shape = Shape{};
    o.block_size = 3;
    Tensor data(info.dtype, {7});
    for (size_t i = 0; i < data.nbytes(); ++i) data.data()[i] = std::byte(i * 37 + 1);
    { Blob::open(p, "w", o).write(data); }
    Blob r = Blob::open(p, "r");
    CHECK(r.item_bytes() == static_cast<int64_t>(info.itemsize));
    CHECK(r.read() == data);
    CHECK(r.get(3).shape() == Shape{});
  }
}

TEST_CASE("write_raw refuses a negative count") {
  TempDir t;
  Blob b = Blob::open(t / "b", "w", testutil::f32_options({2}, 2));
  CHECK_THROWS_WITH(b.write_raw(nullptr, -1), Catch::Contains("negative"));
  CHECK(b.write_raw(nullptr, 0) == 0);
}
