// libFuzzer target: .npy headers, the starts-file layout and numpy typestrs.
#include <string>

#include "fuzz_util.h"
#include "tensorblob/npy.h"
#include "tensorblob/ragged.h"

FUZZ_TARGET(bytes) {
  try {
    (void)tensorblob::npy_header_length(bytes, "fuzz.npy");
  } catch (const tensorblob::Error&) {
  }
  try {
    tensorblob::NpyHeader h = tensorblob::parse_npy_header(bytes, "fuzz.npy");
    if (h.data_offset > bytes.size()) __builtin_trap();
    try {
      (void)tensorblob::numpy_dtype_from_typestr(h.descr, "fuzz.npy");
    } catch (const tensorblob::Error&) {
    }
  } catch (const tensorblob::Error&) {
  }
  try {
    tensorblob::StartsLayout l = tensorblob::parse_starts_header(bytes, bytes.size(), "fuzz.starts.npy");
    if (l.data_offset + 8 * static_cast<uint64_t>(l.entries) != bytes.size()) __builtin_trap();
  } catch (const tensorblob::Error&) {
  }
}
