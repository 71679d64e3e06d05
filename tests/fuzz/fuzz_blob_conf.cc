// libFuzzer target: .conf parsing (and writing back whatever parses).
#include "fuzz_util.h"
#include "tensorblob/blob_format.h"

FUZZ_TARGET(text) {
  try {
    tensorblob::BlobConf c = tensorblob::parse_blob_conf(text, "fuzz/.conf");
    // Whatever parses must write back to text that parses to the same config.
    tensorblob::BlobConf again = tensorblob::parse_blob_conf(tensorblob::format_blob_conf(c), "again");
    if (again.shape != c.shape || again.block_size != c.block_size || again.dtype != c.dtype) __builtin_trap();
  } catch (const tensorblob::Error&) {
  }
}
