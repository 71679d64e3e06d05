// Input files for import and build: opened once, .npy header parsed if the
// file has one, read in pieces at known offsets.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "posix_file.h"
#include "tensorblob/npy.h"

namespace tblob {

struct InputFile {
  std::string path;
  tensorblob::ScopedFd fd;
  std::optional<tensorblob::NpyHeader> npy;  // nullopt: no .npy magic (raw bytes)
  uint64_t size = 0;
};

// Opens `path` (a regular file) and parses its .npy header if it has the
// magic. Throws tensorblob::Error naming the file.
InputFile open_input(const std::string& path);

// Reads exactly n bytes at `offset`; a file that ends early is a format error.
void read_exact(const InputFile& f, void* dst, size_t n, uint64_t offset);

}  // namespace tblob
