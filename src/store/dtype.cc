#include "tensorblob/dtype.h"

#include <string>

#include "tensorblob/error.h"

namespace tensorblob {

const std::vector<DTypeInfo>& all_dtypes() {
  // Order must match the DType enum: dtype_info indexes this table.
  static const std::vector<DTypeInfo> table = {
      {DType::kFloat32, "float32", 4, "<f4"},
      {DType::kFloat64, "float64", 8, "<f8"},
      {DType::kFloat16, "float16", 2, "<f2"},
      {DType::kBFloat16, "bfloat16", 2, ""},
      {DType::kComplex32, "complex32", 4, ""},
      {DType::kComplex64, "complex64", 8, "<c8"},
      {DType::kComplex128, "complex128", 16, "<c16"},
      {DType::kUInt8, "uint8", 1, "|u1"},
      {DType::kInt8, "int8", 1, "|i1"},
      {DType::kInt16, "int16", 2, "<i2"},
      {DType::kInt32, "int32", 4, "<i4"},
      {DType::kInt64, "int64", 8, "<i8"},
      {DType::kUInt16, "uint16", 2, "<u2"},
      {DType::kUInt32, "uint32", 4, "<u4"},
      {DType::kUInt64, "uint64", 8, "<u8"},
      {DType::kBool, "bool", 1, "|b1"},
      {DType::kFloat8E4M3FN, "float8_e4m3fn", 1, ""},
      {DType::kFloat8E4M3FNUZ, "float8_e4m3fnuz", 1, ""},
      {DType::kFloat8E5M2, "float8_e5m2", 1, ""},
      {DType::kFloat8E5M2FNUZ, "float8_e5m2fnuz", 1, ""},
      {DType::kFloat8E8M0FNU, "float8_e8m0fnu", 1, ""},
  };
  return table;
}

const DTypeInfo& dtype_info(DType dtype) { return all_dtypes().at(static_cast<size_t>(dtype)); }

namespace {

struct Alias {
  std::string_view alias;
  DType dtype;
};

// torch attribute names users type instead of the canonical name (src/store/FORMATS.md 1.2).
constexpr Alias kAliases[] = {
    {"float", DType::kFloat32},   {"double", DType::kFloat64},     {"half", DType::kFloat16},
    {"chalf", DType::kComplex32}, {"cfloat", DType::kComplex64},   {"cdouble", DType::kComplex128},
    {"short", DType::kInt16},     {"int", DType::kInt32},          {"long", DType::kInt64},
};

// torch dtypes that exist but cannot be stored as plain elements.
constexpr std::string_view kUnstorable[] = {"qint8", "quint8", "qint32", "quint4x2", "quint2x4",
                                            "bits1x8", "bits2x4", "bits4x2", "bits8", "bits16"};

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

}  // namespace

DType parse_dtype(std::string_view name) {
  for (const auto& info : all_dtypes())
    if (info.name == name) return info.dtype;
  for (const auto& a : kAliases)
    if (a.alias == name) return a.dtype;
  for (auto q : kUnstorable)
    if (q == name)
      throw FormatError("dtype " + quoted(name) +
                        " is a quantized or bit-packed torch type that tensorblob cannot store");
  throw FormatError("unknown dtype " + quoted(name));
}

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t out = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &out))
    throw Error(Errc::kInvalidArgument, std::string(what) + " overflows a 64-bit size");
  return out;
}

int64_t shape_elements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0)
      throw Error(Errc::kInvalidArgument, "negative dimension in shape " + shape_to_string(shape));
    n = checked_mul(n, d, ("shape " + shape_to_string(shape)).c_str());
  }
  return n;
}

int64_t item_bytes(DType dtype, const Shape& shape) {
  return checked_mul(shape_elements(shape), static_cast<int64_t>(dtype_info(dtype).itemsize),
                     ("item size of shape " + shape_to_string(shape)).c_str());
}

std::string shape_to_string(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

}  // namespace tensorblob
