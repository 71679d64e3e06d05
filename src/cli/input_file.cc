#include "input_file.h"

#include "tensorblob/dtype.h"
#include "tensorblob/error.h"

namespace tblob {

using tensorblob::Errc;
using tensorblob::Error;

InputFile open_input(const std::string& path) {
  InputFile f;
  f.path = path;
  f.file = tensorblob::open_regular_file(path, tensorblob::Access::kPread);
  f.size = f.file->size();
  std::string prefix(std::min<uint64_t>(f.size, 12), '\0');
  read_exact(f, prefix.data(), prefix.size(), 0);
  if (prefix.size() < 6 || prefix.compare(0, 6, "\x93NUMPY") != 0) return f;
  auto len = tensorblob::npy_header_length(prefix, path);
  if (!len || *len > f.size) throw Error(Errc::kFormat, path + ": file too short for its .npy header");
  if (*len > (1u << 24)) throw Error(Errc::kFormat, path + ": .npy header of " + std::to_string(*len) + " bytes is implausible");
  std::string header(*len, '\0');
  read_exact(f, header.data(), header.size(), 0);
  f.npy = tensorblob::parse_npy_header(header, path);
  return f;
}

void read_exact(const InputFile& f, void* dst, size_t n, uint64_t offset) {
  try {
    f.file->read(offset, n, dst);
  } catch (const Error& e) {
    if (e.sys_errno() == ENODATA) throw Error(Errc::kFormat, f.path + ": file ended early (it shrank while being read?)");
    throw;
  }
}

void check_npy_payload(const InputFile& f, int64_t elements, size_t itemsize) {
  if (f.npy->fortran_order)
    throw Error(Errc::kFormat, f.path + ": Fortran-order arrays are not supported; save a C-order copy");
  const uint64_t want = f.npy->data_offset + static_cast<uint64_t>(tensorblob::checked_mul(
                                                 elements, static_cast<int64_t>(itemsize), f.path.c_str()));
  if (f.size != want)
    throw Error(Errc::kFormat, f.path + ": header promises " + std::to_string(want) + " bytes but the file has " +
                                   std::to_string(f.size));
}

}  // namespace tblob
