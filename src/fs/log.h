// One line per event on stderr (journald picks it up under systemd), filtered
// by the configured level. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "options.h"

namespace blobfs {

void set_log_level(LogLevel level);
// `message` made safe for one log line: a newline, carriage return, tab, any
// other control byte and backslash are written as \n, \r, \t, \xNN and \\,
// so a path with a newline in it cannot start a second, forged event.
std::string escape_for_log(std::string_view message);
// From now on log to syslog (ident "blobfs") instead of stderr: a daemon
// that detached has no stderr left.
void log_to_syslog();
void log(LogLevel level, const std::string& message);
// Logs `message` only the first time `key` is seen (e.g. one line per damaged
// block file however many reads touch it). Remembers at most 10,000 keys.
void log_once(LogLevel level, const std::string& key, const std::string& message);

}  // namespace blobfs
