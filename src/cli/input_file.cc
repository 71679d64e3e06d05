#include "input_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tensorblob/error.h"

namespace tblob {

using tensorblob::Errc;
using tensorblob::Error;

InputFile open_input(const std::string& path) {
  InputFile f;
  f.path = path;
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) tensorblob::throw_errno("open", path);
  f.fd = tensorblob::ScopedFd(raw);
  struct stat st;
  if (::fstat(raw, &st) != 0) tensorblob::throw_errno("stat", path);
  if (!S_ISREG(st.st_mode)) throw Error(Errc::kFormat, path + ": not a regular file");
  f.size = static_cast<uint64_t>(st.st_size);
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
  auto* p = static_cast<char*>(dst);
  for (size_t got = 0; got < n;) {
    ssize_t k = ::pread(f.fd.get(), p + got, n - got, static_cast<off_t>(offset + got));
    if (k < 0) tensorblob::throw_errno("read", f.path);
    if (k == 0) throw Error(Errc::kFormat, f.path + ": file ended early (it shrank while being read?)");
    got += static_cast<size_t>(k);
  }
}

}  // namespace tblob
