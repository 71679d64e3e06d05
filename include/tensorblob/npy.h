// The NumPy .npy header (format versions 1.0, 2.0, 3.0): writing the exact
// bytes numpy.save produces, and parsing any header numpy writes.
//
// Pure functions over bytes. The parser throws FormatError with the `path`
// it is given at the front of the message.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "tensorblob/dtype.h"

namespace tensorblob {

struct NpyHeader {
  std::string descr;  // numpy typestr, e.g. "<f4", "|b1"
  bool fortran_order = false;
  Shape shape;
  size_t data_offset = 0;  // bytes before the array data (magic + length + dict)
  int major_version = 1;
};

// The header numpy.save writes for a C-order array of `descr` and `shape`:
// dict in sorted-key order, growth padding, spaces to a 64-byte multiple, '\n'.
std::string npy_header(std::string_view descr, const Shape& shape);

// Bytes needed from the start of a .npy file to parse its header: 10 or 12
// for the fixed prefix, then the full header length once the prefix is known.
// Returns nullopt when `prefix` is too short to tell.
std::optional<size_t> npy_header_length(std::string_view prefix, std::string_view path);

// Parses the header at the start of `bytes` (which must hold all of it).
NpyHeader parse_npy_header(std::string_view bytes, std::string_view path);

// The DType a little-endian numpy typestr stores ("<f4" -> kFloat32), or
// nullopt for typestrs the blob format cannot hold (big-endian, strings, objects).
std::optional<DType> dtype_from_typestr(std::string_view typestr);

}  // namespace tensorblob

namespace tensorblob {

// A numpy dtype as picomap records it: the typestr goes into the hash and
// .npy headers, the name into the JSON (src/store/FORMATS.md 1.1).
struct NumpyDType {
  std::string typestr;  // "<f4", "|u1", ">f4", "<U3"
  std::string name;     // "float32", "uint8", ">f4", "<U3"
  size_t itemsize = 0;
};

// From a typestr ("<f4", "=i8", ">f4", "|b1", "<U3", "|S4"). Throws
// FormatError (prefixed by `where`) for object, datetime, void and unknown types.
NumpyDType numpy_dtype_from_typestr(std::string_view typestr, std::string_view where);
// From picomap's JSON "dtype": a numpy word ("float32", "bool") or a typestr.
NumpyDType numpy_dtype_from_name(std::string_view name, std::string_view where);

}  // namespace tensorblob
