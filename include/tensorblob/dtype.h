// Element types and tensor shapes.
//
// A DType is one of the element types tensorblob stores (src/store/FORMATS.md 1.2),
// known by its canonical torch name; parse_dtype also accepts the aliases
// torch users type ("float", "long", ...). Shapes are vectors of dimensions;
// every size computed from them is overflow-checked, because shapes come from
// files we do not trust.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tensorblob {

enum class DType : uint8_t {
  kFloat32, kFloat64, kFloat16, kBFloat16, kComplex32, kComplex64, kComplex128,
  kUInt8, kInt8, kInt16, kInt32, kInt64, kUInt16, kUInt32, kUInt64, kBool,
  kFloat8E4M3FN, kFloat8E4M3FNUZ, kFloat8E5M2, kFloat8E5M2FNUZ, kFloat8E8M0FNU,
};

struct DTypeInfo {
  DType dtype;
  std::string_view name;     // canonical torch name, as written to .conf
  size_t itemsize;           // bytes per element
  std::string_view typestr;  // numpy typestr ("<f4", "|b1"); empty if numpy has none
};

// Every supported dtype, in enum order.
const std::vector<DTypeInfo>& all_dtypes();
const DTypeInfo& dtype_info(DType dtype);

// Canonical name or torch alias -> DType. Throws FormatError naming the
// unknown name (and saying why for torch types tensorblob cannot store).
DType parse_dtype(std::string_view name);

using Shape = std::vector<int64_t>;

// Product of the dimensions (1 for a 0-d shape). Throws Error(kInvalidArgument)
// on a negative dimension or when the product overflows int64.
int64_t shape_elements(const Shape& shape);

// itemsize × shape_elements, overflow-checked like shape_elements.
int64_t item_bytes(DType dtype, const Shape& shape);

// a × b, throwing Error(kInvalidArgument) with `what` in the message on overflow
// or a negative operand.
int64_t checked_mul(int64_t a, int64_t b, const char* what);

// "(2, 3)" / "()" / "(5,)": the Python spelling, for messages and YAML.
std::string shape_to_string(const Shape& shape);

}  // namespace tensorblob
