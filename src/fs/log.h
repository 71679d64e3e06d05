// One line per event on stderr (journald picks it up under systemd), filtered
// by the configured level. Thread-safe.
#pragma once

#include <string>

#include "options.h"

namespace blobfs {

void set_log_level(LogLevel level);
// From now on log to syslog (ident "blobfs") instead of stderr: a daemon
// that detached has no stderr left.
void log_to_syslog();
void log(LogLevel level, const std::string& message);
// Logs `message` only the first time `key` is seen (e.g. one line per damaged
// block file however many reads touch it). Remembers at most 10,000 keys.
void log_once(LogLevel level, const std::string& key, const std::string& message);

}  // namespace blobfs
