#include "tensorblob/error.h"

#include <cerrno>
#include <cstring>

namespace tensorblob {

void throw_errno(const std::string& what, const std::string& path) {
  int err = errno;
  Errc code = (err == ENOENT || err == ENOTDIR) ? Errc::kNotFound : Errc::kIo;
  throw Error(code, path + ": " + what + ": " + std::strerror(err));
}

}  // namespace tensorblob
