// Errors thrown by libtensorblob.
//
// Every failure is a tensorblob::Error carrying a category (what kind of
// failure, so callers can map it to an errno or an exit code) and a message
// that names the file and the problem. Parsers throw FormatError, a subclass,
// when outside input is malformed.
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
  Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Errc code() const { return code_; }

 private:
  Errc code_;
};

// Malformed outside input; the message starts with the file it came from.
class FormatError : public Error {
 public:
  explicit FormatError(const std::string& message) : Error(Errc::kFormat, message) {}
};

// Throws Error(kIo) for the current errno: "<what>: <path>: <strerror>".
[[noreturn]] void throw_errno(const std::string& what, const std::string& path);

}  // namespace tensorblob
