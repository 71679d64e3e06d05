// The blobs Python tensorblob wrote (tests/conformance/tensorblob, copied from
// shared/conformance) read back the values of tensorblob_ref.ROW_MAKERS, and
// the same rows written by us give the same bytes, block names excepted.
#include <catch2/catch.hpp>
#include <cstring>

#include "tensorblob/blob.h"
#include "test_util.h"

using namespace tensorblob;
using testutil::TempDir;

namespace {

const std::string kDir = "tests/conformance/tensorblob/";

template <typename T>
Tensor make(DType dt, Shape shape, const std::function<T(int64_t flat, const Shape& idx)>& f) {
  Tensor t(dt, shape);
  auto v = t.values<T>();
  Shape idx(shape.size(), 0);
  for (size_t flat = 0; flat < v.size(); ++flat) {
    v[flat] = f(static_cast<int64_t>(flat), idx);
    for (size_t d = shape.size(); d-- > 0;) {  // next C-order index
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return t;
}

// The rows of each golden example, from tensorblob_ref.py's ROW_MAKERS.
Tensor expected_rows(const std::string& name, int64_t n) {
  if (name == "f32_3blocks")
    return make<float>(DType::kFloat32, {n, 2, 3}, [](int64_t, const Shape& i) {
      return static_cast<float>(i[0] * 100 + i[1] * 10 + i[2]) + 0.25f;
    });
  if (name == "i64_2full")
    return make<int64_t>(DType::kInt64, {n, 5},
                         [](int64_t f, const Shape&) { return f * 1'000'000'007LL - 3'000'000'000LL; });
  if (name == "i64_default_bs")
    return make<int64_t>(DType::kInt64, {n, 2},
                         [](int64_t, const Shape& i) { return i[1] == 0 ? i[0] : -i[0] * (1LL << 33); });
  if (name == "bf16")  // exact in bfloat16: the top half of the float32 bits
    return make<uint16_t>(DType::kBFloat16, {n, 2, 2}, [](int64_t f, const Shape&) {
      float x = static_cast<float>(f) * 0.5f - 1.0f;
      uint32_t bits;
      std::memcpy(&bits, &x, 4);
      return static_cast<uint16_t>(bits >> 16);
    });
  if (name == "bool")
    return make<uint8_t>(DType::kBool, {n, 3}, [](int64_t, const Shape& i) { return (i[0] + i[1]) % 2 == 0; });
  if (name == "i16_scalar")
    return make<int16_t>(DType::kInt16, {n}, [](int64_t f, const Shape&) { return static_cast<int16_t>(f * -7); });
  if (name == "empty") return Tensor(DType::kFloat32, {n, 4});
  FAIL("no row formula for " << name);
  return {};
}

const std::vector<std::string> kBlobs = {"f32_3blocks", "i64_2full", "i64_default_bs", "empty",
                                         "bf16",        "bool",      "i16_scalar"};

}  // namespace

TEST_CASE("every golden blob written by Python tensorblob reads back its rows") {
  for (const auto& name : kBlobs) {
    INFO(name);
    Blob b = Blob::open(kDir + name, "r");
    Tensor rows = b.read();
    CHECK(rows == expected_rows(name, b.size()));
    if (b.size()) CHECK(b.get(-1) == b.get(b.size() - 1));
  }
  CHECK(Blob::open(kDir + "i16_scalar", "r").shape() == Shape{});
  CHECK(Blob::open(kDir + "bf16", "r").dtype() == DType::kBFloat16);
}

TEST_CASE("golden sizes and configs are what the manifest says") {
  CHECK(Blob::open(kDir + "f32_3blocks", "r").size() == 10);
  CHECK(Blob::open(kDir + "i64_2full", "r").size() == 6);
  CHECK(Blob::open(kDir + "i64_default_bs", "r").block_size() == 8192);
  CHECK(Blob::open(kDir + "empty", "r").size() == 0);
  CHECK(Blob::open(kDir + "bool", "r").size() == 5);
}

TEST_CASE("the same rows written by us give Python's bytes, block names excepted") {
  TempDir t;
  for (const auto& name : kBlobs) {
    INFO(name);
    Blob golden = Blob::open(kDir + name, "r");
    std::string out = t / name;
    {
      OpenOptions o;
      o.dtype = std::string(dtype_info(golden.dtype()).name);
      o.shape = golden.shape();
      o.block_size = golden.block_size();
      Blob w = Blob::open(out, "w", o);
      if (golden.size()) w.write(expected_rows(name, golden.size()));
    }
    CHECK(testutil::read_file(out + "/.conf") == testutil::read_file(kDir + name + "/.conf"));
    auto ours = parse_blob_status(testutil::read_file(out + "/.stat"), out);
    auto theirs = parse_blob_status(testutil::read_file(kDir + name + "/.stat"), name);
    REQUIRE(ours.blocks.size() == theirs.blocks.size());
    CHECK(ours.len == theirs.len);
    BlobStatus renamed = ours;
    renamed.blocks = theirs.blocks;
    CHECK(format_blob_status(renamed) == testutil::read_file(kDir + name + "/.stat"));
    for (size_t k = 0; k < ours.blocks.size(); ++k)
      CHECK(testutil::read_file(out + "/" + ours.blocks[k]) ==
            testutil::read_file(kDir + name + "/" + theirs.blocks[k]));
  }
}
