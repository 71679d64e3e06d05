// The tblob commands, one file each (cmd_*.cc). A command gets its arguments
// after the command name, parses them, does its work and returns the exit
// code; errors are thrown (UsageError, tensorblob::Error) and turned into a
// one-line message and an exit code by main.
#pragma once

#include <string>
#include <vector>

#include "args.h"

namespace tblob {

// Exit codes (DESIGN.md, the command line).
inline constexpr int kExitOk = 0;
inline constexpr int kExitDataWrong = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitIo = 3;

struct Command {
  const char* name;
  const char* summary;  // one line for `tblob --help`
  const char* help;     // full text for `tblob NAME --help`
  ArgSpec spec;
  int (*run)(const ParsedArgs& args);
};

const std::vector<Command>& commands();

int cmd_create(const ParsedArgs& args);
int cmd_import(const ParsedArgs& args);
int cmd_export(const ParsedArgs& args);
int cmd_info(const ParsedArgs& args);
int cmd_cat(const ParsedArgs& args);
int cmd_truncate(const ParsedArgs& args);
int cmd_extend(const ParsedArgs& args);
int cmd_verify(const ParsedArgs& args);
int cmd_build(const ParsedArgs& args);
int cmd_push(const ParsedArgs& args);
int cmd_pull(const ParsedArgs& args);

// The positional arguments, exactly `n` of them, or a UsageError naming the command.
const std::vector<std::string>& expect_positional(const ParsedArgs& args, size_t n, const char* command);

}  // namespace tblob
