// libFuzzer target: the values tblob takes on its command line (--range,
// --shape, integers) and the option scanner itself.
#include <string>
#include <vector>

#include "args.h"
#include "fuzz_util.h"

FUZZ_TARGET(text) {
  try {
    auto [a, b] = tblob::parse_range(text, 1000);
    if (a < 0 || a > b || b > 1000) __builtin_trap();
  } catch (const tblob::UsageError&) {
  }
  try {
    (void)tblob::parse_shape(text);
  } catch (const tblob::UsageError&) {
  } catch (const tensorblob::Error&) {
  }
  try {
    (void)tblob::parse_int(text, "n");
  } catch (const tblob::UsageError&) {
  }
  std::vector<std::string> args;
  size_t start = 0;
  while (start <= text.size()) {
    size_t sp = text.find(' ', start);
    args.emplace_back(text.substr(start, sp == std::string_view::npos ? std::string_view::npos : sp - start));
    if (sp == std::string_view::npos) break;
    start = sp + 1;
  }
  try {
    (void)tblob::parse_args(args, {{"--create"}, {"--dtype", "--shape"}});
  } catch (const tblob::UsageError&) {
  }
}
