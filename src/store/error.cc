#include "tensorblob/error.h"

#include <cerrno>
#include <cstring>

namespace tensorblob {

void throw_errno(int err, const std::string& what, const std::string& path) {
  Errc code = (err == ENOENT || err == ENOTDIR) ? Errc::kNotFound : Errc::kIo;
  throw Error(code, path + ": " + what + ": " + std::strerror(err), err);
}

void throw_errno(const std::string& what, const std::string& path) { throw_errno(errno, what, path); }

}  // namespace tensorblob
