#include "output.h"

#include <cerrno>
#include <cstdio>

#include "tensorblob/error.h"

namespace tblob {

void write_stdout(const void* data, size_t n) {
  if (n && std::fwrite(data, 1, n, stdout) != n) tensorblob::throw_errno("write", "stdout");
}

void write_stdout(std::string_view text) { write_stdout(text.data(), text.size()); }

void flush_stdout() {
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) tensorblob::throw_errno(errno ? errno : EIO, "write", "stdout");
}

}  // namespace tblob
