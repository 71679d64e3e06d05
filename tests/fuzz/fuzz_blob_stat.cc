// libFuzzer target: .stat parsing; every block name it accepts must be safe.
#include "fuzz_util.h"
#include "tensorblob/blob_format.h"

FUZZ_TARGET(text) {
  try {
    tensorblob::BlobStatus s = tensorblob::parse_blob_status(text, "fuzz/.stat");
    for (const auto& name : s.blocks)
      if (name.find('/') != std::string::npos || name == ".." || name == "." || name.empty()) __builtin_trap();
    if (s.len < 0) __builtin_trap();
    (void)tensorblob::format_blob_status(s);
  } catch (const tensorblob::Error&) {
  }
}
