// Errors thrown by libtensorblob.
//
// Every failure is a tensorblob::Error carrying a category (what kind of
// failure, so callers can map it to an exit code), the errno the operating
// system gave when one caused it (so a mount can answer ENOSPC rather than
// EIO), and a message that names the file and the problem. Parsers throw
// FormatError, a subclass, when outside input is malformed.
#pragma once

#include <stdexcept>
#include <string>

namespace tensorblob {

enum class Errc {
  kNotFound,         // the blob or one of its files does not exist
  kFormat,           // a file exists but its content is malformed
  kIo,               // the operating system refused an operation
  kInvalidArgument,  // the caller passed something unusable (mode, shape, ...)
  kOutOfRange,       // an index or position outside the blob
  kNotPermitted,     // the open mode forbids the operation, or the blob is closed
  kBusy,             // another writer holds the blob's lock
  kCorrupt,          // stored bytes do not match their recorded hash
};

class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& message, int sys_errno = 0)
      : std::runtime_error(message), code_(code), sys_errno_(sys_errno) {}
  Errc code() const { return code_; }
  // The errno that caused this error (ENOSPC, EACCES, ...), or 0 when the
  // operating system did not refuse anything (a malformed file, a bad index).
  int sys_errno() const { return sys_errno_; }

 private:
  Errc code_;
  int sys_errno_;
};

// Malformed outside input; the message starts with the file it came from.
class FormatError : public Error {
 public:
  explicit FormatError(const std::string& message) : Error(Errc::kFormat, message) {}
};

// Throws Error for the current errno: "<path>: <what>: <strerror>", with
// kNotFound for ENOENT/ENOTDIR and kIo otherwise, keeping the errno.
[[noreturn]] void throw_errno(const std::string& what, const std::string& path);
// The same for an errno the caller already saved.
[[noreturn]] void throw_errno(int err, const std::string& what, const std::string& path);

}  // namespace tensorblob
