// Standard output for tblob's commands: every write checked, so a full disk
// behind a redirection is an error (exit 3) rather than a silent loss, and a
// reader that closed the pipe (`| head`) ends the command quietly.
#pragma once

#include <cstddef>
#include <string_view>

namespace tblob {

// Writes to stdout; throws tensorblob::Error naming "stdout" with the errno
// (EPIPE when the reader went away: main then exits 0 without a message).
void write_stdout(const void* data, size_t n);
void write_stdout(std::string_view text);
// Flushes stdout, throwing as write_stdout does.
void flush_stdout();

}  // namespace tblob
