// tblob: the command line for tensorblob stores. See `tblob --help`.
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "commands.h"
#include "output.h"
#include "tensorblob/error.h"
#include "tensorblob/fault_guard.h"

namespace {

void print_overview(std::FILE* out) {
  std::fprintf(out, "usage: tblob COMMAND [ARGS...]   (tblob COMMAND --help for details)\n\ncommands:\n");
  for (const auto& c : tblob::commands()) std::fprintf(out, "  %-9s %s\n", c.name, c.summary);
  std::fprintf(out,
               "\nexit codes: 0 success (also when a reader closes the pipe early), 1 the data is wrong,\n"
               "2 usage error, 3 I/O or format error\n");
}

int exit_code_for(const tensorblob::Error& e) {
  switch (e.code()) {
    case tensorblob::Errc::kInvalidArgument:
    case tensorblob::Errc::kOutOfRange:
      return tblob::kExitUsage;
    case tensorblob::Errc::kCorrupt:
      return tblob::kExitDataWrong;
    default:
      return tblob::kExitIo;
  }
}

// The command's exit code; errors other than the usage and store errors a
// command reports itself are thrown to main.
int run(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::fprintf(stderr, "tblob: no command given (usage: tblob COMMAND [ARGS...]; see tblob --help)\n");
    return tblob::kExitUsage;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_overview(stdout);
    return tblob::kExitOk;
  }
  if (args[0] == "--version") {
    std::printf("tblob %s\n", TENSORBLOB_VERSION);
    return tblob::kExitOk;
  }
  const tblob::Command* cmd = nullptr;
  for (const auto& c : tblob::commands())
    if (args[0] == c.name) cmd = &c;
  if (!cmd) {
    std::fprintf(stderr, "tblob: unknown command '%s' (see tblob --help)\n", args[0].c_str());
    return tblob::kExitUsage;
  }
  try {
    tblob::ParsedArgs parsed = tblob::parse_args({args.begin() + 1, args.end()}, cmd->spec);
    if (parsed.has("--help")) {
      std::fputs(cmd->help, stdout);
      return tblob::kExitOk;
    }
    return cmd->run(parsed);
  } catch (const tblob::UsageError& e) {
    std::fprintf(stderr, "tblob: %s: %s (see tblob %s --help)\n", cmd->name, e.what(), cmd->name);
    return tblob::kExitUsage;
  }
}

}  // namespace

int main(int argc, char** argv) {
  // A reader that closes the pipe early (| head) gets EPIPE on our next
  // write, which ends the command quietly with exit code 0: what it read is
  // what it asked for. (A SIGPIPE would kill us with 141 instead.)
  std::signal(SIGPIPE, SIG_IGN);
  // A block file cut while we read it is an error naming it, not a SIGBUS.
  tensorblob::install_fault_guard();
  try {
    const int code = run({argv + 1, argv + argc});
    tblob::flush_stdout();  // a full disk behind '>' is an error, not a silent loss
    return code;
  } catch (const tensorblob::Error& e) {
    if (e.sys_errno() == EPIPE) return tblob::kExitOk;
    std::fprintf(stderr, "tblob: %s\n", e.what());
    return exit_code_for(e);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "tblob: out of memory\n");
    return tblob::kExitIo;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tblob: %s\n", e.what());
    return tblob::kExitIo;
  }
}
