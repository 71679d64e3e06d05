// blobfs's command line: `blobfs SOURCE MOUNTPOINT [-o OPTIONS] [-f] [-d]
// [--config FILE]`, also as mount.fuse3 calls it from /etc/fstab. A pure
// parser; resolve_options then merges config file, -o lists and positionals.
#pragma once

#include <string>
#include <vector>

#include "options.h"

namespace blobfs {

struct CommandLine {
  std::vector<std::string> positional;  // SOURCE MOUNTPOINT (either may come from the config)
  std::vector<std::string> o_lists;     // each -o argument, in order
  std::string config;                   // --config FILE
  bool foreground = false;              // -f (and -d)
  bool debug = false;                   // -d: FUSE's own request trace, foreground
  bool help = false;
  bool version = false;
};

// Throws OptionError on an unknown flag, a missing value or too many arguments.
CommandLine parse_command_line(const std::vector<std::string>& args);

// Defaults, then the config file's text (if any), then each -o list, then the
// positionals. Throws OptionError naming what is wrong, including a missing
// source or mountpoint.
Options resolve_options(const CommandLine& cl, const std::string& config_text);

extern const char* const kUsage;

}  // namespace blobfs
