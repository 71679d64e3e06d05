// Random access: index, slice, gather, zero-copy views; following
// tensorblob's test_slice.py.
#include <catch2/catch.hpp>

#include "tensorblob/blob.h"
#include "tensorblob/error.h"
#include "test_util.h"

using namespace tensorblob;
using testutil::TempDir;
using testutil::firsts;
using V = std::vector<float>;

namespace {

// A readable blob of n tensors of shape (2,), tensor i starting at i*1000.
Blob make_blob(const TempDir& t, int64_t n, int64_t block_size) {
  Blob b = Blob::open(t / "b", "w+", testutil::f32_options({2}, block_size));
  b.write(testutil::iota_f32(n, {2}));
  return b;
}

V python_slice(int64_t n, std::optional<int64_t> a, std::optional<int64_t> b, int64_t step) {
  // The expected result, written the slow obvious way from Python's rules.
  auto norm = [&](int64_t x) { return x < 0 ? x + n : x; };
  V out;
  if (step > 0) {
    int64_t s = a ? std::clamp<int64_t>(norm(*a), 0, n) : 0, e = b ? std::clamp<int64_t>(norm(*b), 0, n) : n;
    for (int64_t i = s; i < e; i += step) out.push_back(static_cast<float>(i * 1000));
  } else {
    int64_t s = a ? std::clamp<int64_t>(norm(*a), -1, n - 1) : n - 1;
    int64_t e = b ? std::clamp<int64_t>(norm(*b), -1, n - 1) : -1;
    for (int64_t i = s; i > e; i += step) out.push_back(static_cast<float>(i * 1000));
  }
  return out;
}

}  // namespace

TEST_CASE("get takes negative indices and refuses out-of-range ones") {
  TempDir t;
  Blob b = make_blob(t, 10, 3);
  CHECK(testutil::first(b.get(0)) == 0);
  CHECK(testutil::first(b.get(9)) == 9000);
  CHECK(testutil::first(b.get(-1)) == 9000);
  CHECK(testutil::first(b.get(-10)) == 0);
  for (int64_t bad : std::vector<int64_t>{10, -11, INT64_MAX, INT64_MIN}) {
    testutil::check_error([&] { b.get(bad); }, Errc::kOutOfRange, "out of range for a blob of 10 tensors");
  }
}

TEST_CASE("slices follow Python's start, stop and step rules") {
  TempDir t;
  Blob b = make_blob(t, 10, 3);
  using O = std::optional<int64_t>;
  const O none;
  const std::vector<std::tuple<O, O, int64_t>> cases = {
      {none, none, 1}, {2, 7, 1},  {2, 7, 2},     {none, none, 3}, {-3, none, 1}, {none, -3, 1},
      {8, 2, 1},       {7, 2, -1}, {none, none, -1}, {none, none, -4}, {-1, -11, -2}, {100, -100, -1},
      {-100, 100, 1},  {5, 5, 1},  {0, 10, 9},    {9, none, -3},   {3, 20, 4},    {-20, 4, 1}};
  for (const auto& [a, s, step] : cases) {
    INFO("slice " << (a ? std::to_string(*a) : "None") << ":" << (s ? std::to_string(*s) : "None") << ":" << step);
    Tensor got = b.slice(a, s, step);
    CHECK(firsts(got) == python_slice(10, a, s, step));
    CHECK(got.shape()[1] == 2);
  }
  CHECK_THROWS_WITH(b.slice(0, 5, 0), Catch::Contains("step cannot be zero"));
  CHECK(firsts(b.slice(none, none, INT64_MIN)) == V{9000});
  CHECK(b.slice(3, 3).shape() == Shape{0, 2});
}

TEST_CASE("gather returns tensors in the caller's order, duplicates and negatives included") {
  TempDir t;
  Blob b = make_blob(t, 10, 3);
  std::vector<int64_t> idx = {9, 0, 4, -1, 4, 3, 8};
  CHECK(firsts(b.gather(idx)) == V{9000, 0, 4000, 9000, 4000, 3000, 8000});
  CHECK(b.gather({}).shape() == Shape{0, 2});
  std::vector<int64_t> bad = {1, 10};
  CHECK_THROWS_WITH(b.gather(bad), Catch::Contains("index 10 out of range"));
}

TEST_CASE("read_items copies a range and checks its bounds") {
  TempDir t;
  Blob b = make_blob(t, 10, 3);
  std::vector<float> buf(8);
  b.read_items(2, 4, buf.data());
  CHECK(buf == V{2000, 2001, 3000, 3001, 4000, 4001, 5000, 5001});
  b.read_items(10, 0, buf.data());
  CHECK_THROWS_WITH(b.read_items(8, 3, buf.data()), Catch::Contains("[8, 11) out of range"));
  CHECK_THROWS_AS(b.read_items(-1, 1, buf.data()), Error);
}

TEST_CASE("an item view points into the mapped block and outlives eviction and close") {
  TempDir t;
  Blob b = make_blob(t, 10, 3);
  b.flush();
  ItemView v = b.item_view(7);
  CHECK(v.size == 8);
  CHECK(reinterpret_cast<const float*>(v.data)[0] == 7000);
  b.close();
  CHECK(reinterpret_cast<const float*>(v.data)[1] == 7001);
  CHECK_THROWS_AS(b.item_view(0), Error);
}

TEST_CASE("read_bytes serves any byte range of the concatenated tensors") {
  TempDir t;
  Blob b = make_blob(t, 10, 3);  // 8 bytes a tensor, 24 a block
  std::vector<float> all(20);
  b.read_items(0, 10, all.data());
  const auto* raw = reinterpret_cast<const std::byte*>(all.data());
  for (int64_t off : {0, 1, 7, 23, 24, 25, 50, 79, 80})
    for (int64_t n : {0, 1, 3, 17, 30}) {
      if (off + n > 80) continue;
      std::vector<std::byte> got(static_cast<size_t>(n));
      b.read_bytes(off, n, got.data());
      CHECK(std::equal(got.begin(), got.end(), raw + off));
    }
  std::byte one;
  CHECK_THROWS_WITH(b.read_bytes(80, 1, &one), Catch::Contains("bytes [80, 81) out of range for 80 bytes"));
  CHECK_THROWS_AS(b.read_bytes(-1, 1, &one), Error);
}
