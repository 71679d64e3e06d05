// libFuzzer target: picomap's .json and dtype names.
#include "fuzz_util.h"
#include "tensorblob/npy.h"
#include "tensorblob/ragged.h"

FUZZ_TARGET(text) {
  try {
    tensorblob::RaggedMeta m = tensorblob::parse_ragged_json(text, "fuzz.json");
    tensorblob::RaggedMeta again = tensorblob::parse_ragged_json(tensorblob::format_ragged_json(m), "again");
    if (again.count != m.count || again.total_rows != m.total_rows || again.hash != m.hash) __builtin_trap();
  } catch (const tensorblob::Error&) {
  }
  try {
    (void)tensorblob::numpy_dtype_from_name(text, "fuzz.json");
  } catch (const tensorblob::Error&) {
  }
}
