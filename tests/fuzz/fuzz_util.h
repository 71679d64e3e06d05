// Shared by the libFuzzer targets: FUZZ_TARGET(text) { ... } receives the
// input as a std::string_view. Every parser must either succeed or throw
// tensorblob::Error (or its own documented exception); anything else -- a
// crash, a sanitizer report, an uncaught exception, a hang -- is a bug.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tensorblob/error.h"

#define FUZZ_TARGET(param)                                                      \
  static void fuzz_one(std::string_view param);                                 \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {     \
    fuzz_one(std::string_view(reinterpret_cast<const char*>(data), size));      \
    return 0;                                                                   \
  }                                                                             \
  static void fuzz_one(std::string_view param)
