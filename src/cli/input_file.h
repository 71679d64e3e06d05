// Input files for import and build: opened once (regular files only, never
// blocking on a FIFO), .npy header parsed if the file has one, read in pieces
// at known offsets.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "tensorblob/npy.h"
#include "tensorblob/storage.h"

namespace tblob {

struct InputFile {
  std::string path;
  std::unique_ptr<tensorblob::ReadableFile> file;
  std::optional<tensorblob::NpyHeader> npy;  // nullopt: no .npy magic (raw bytes)
  uint64_t size = 0;
};

// Opens `path` (a regular file) and parses its .npy header if it has the
// magic. Throws tensorblob::Error naming the file.
InputFile open_input(const std::string& path);

// Reads exactly n bytes at `offset`; a file that ends early is an error.
void read_exact(const InputFile& f, void* dst, size_t n, uint64_t offset);

// Refused before anything is written, whatever the command: Fortran order,
// and a header that promises more (or fewer) bytes than the file has, for
// `items` elements of `itemsize` bytes.
void check_npy_payload(const InputFile& f, int64_t elements, size_t itemsize);

}  // namespace tblob
