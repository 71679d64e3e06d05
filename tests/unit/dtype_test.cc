#include "tensorblob/dtype.h"

#include <catch2/catch.hpp>

#include "tensorblob/error.h"

using namespace tensorblob;

TEST_CASE("every canonical dtype name parses back to itself with its item size") {
  for (const auto& info : all_dtypes()) {
    CHECK(parse_dtype(info.name) == info.dtype);
    CHECK(dtype_info(info.dtype).name == info.name);
  }
  CHECK(dtype_info(DType::kBFloat16).itemsize == 2);
  CHECK(dtype_info(DType::kComplex128).itemsize == 16);
  CHECK(dtype_info(DType::kBool).itemsize == 1);
  CHECK(dtype_info(DType::kFloat8E5M2).itemsize == 1);
  CHECK(all_dtypes().size() == 21);
}

TEST_CASE("torch aliases map to their canonical dtype") {
  CHECK(parse_dtype("float") == DType::kFloat32);
  CHECK(parse_dtype("double") == DType::kFloat64);
  CHECK(parse_dtype("half") == DType::kFloat16);
  CHECK(parse_dtype("long") == DType::kInt64);
  CHECK(parse_dtype("int") == DType::kInt32);
  CHECK(parse_dtype("short") == DType::kInt16);
  CHECK(parse_dtype("cfloat") == DType::kComplex64);
  CHECK(parse_dtype("cdouble") == DType::kComplex128);
  CHECK(parse_dtype("chalf") == DType::kComplex32);
}

TEST_CASE("unknown and unstorable dtypes are refused with the name in the message") {
  CHECK_THROWS_WITH(parse_dtype("float33"), Catch::Contains("unknown dtype 'float33'"));
  CHECK_THROWS_WITH(parse_dtype(""), Catch::Contains("unknown dtype"));
  CHECK_THROWS_WITH(parse_dtype("qint8"), Catch::Contains("quantized"));
  CHECK_THROWS_WITH(parse_dtype("Float32"), Catch::Contains("unknown dtype"));
  CHECK_THROWS_AS(parse_dtype("torch.float32"), FormatError);
}

TEST_CASE("shape sizes are products with overflow and sign checks") {
  CHECK(shape_elements({}) == 1);
  CHECK(shape_elements({2, 3, 4}) == 24);
  CHECK(item_bytes(DType::kFloat32, {768}) == 3072);
  CHECK(item_bytes(DType::kInt16, {}) == 2);
  CHECK_THROWS_AS(shape_elements({-1, 3}), Error);
  CHECK_THROWS_WITH(shape_elements({1LL << 40, 1LL << 40}), Catch::Contains("overflows"));
  CHECK_THROWS_WITH(item_bytes(DType::kFloat64, {1LL << 61}), Catch::Contains("overflows"));
  CHECK_THROWS_AS(checked_mul(INT64_MAX, 2, "x"), Error);
}

TEST_CASE("shapes print in Python's spelling") {
  CHECK(shape_to_string({}) == "()");
  CHECK(shape_to_string({5}) == "(5,)");
  CHECK(shape_to_string({2, 3}) == "(2, 3)");
}
