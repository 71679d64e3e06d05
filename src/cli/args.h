// Command-line parsing for tblob: a generic option scanner and the parsers
// for the values commands take (shapes, ranges, counts). Pure functions; each
// throws UsageError with a one-line message naming the bad value.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tensorblob/dtype.h"

namespace tblob {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ArgSpec {
  std::vector<std::string> flags;        // options without a value, e.g. "--create"
  std::vector<std::string> with_value;   // options taking one value, e.g. "--dtype"
};

struct ParsedArgs {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;  // flags map to ""
  bool has(const std::string& name) const { return options.count(name) > 0; }
  std::optional<std::string> get(const std::string& name) const;
};

// Accepts "--opt value" and "--opt=value"; "--" ends options; "--help" is
// always a flag. Unknown options, missing values and repeats are errors.
ParsedArgs parse_args(const std::vector<std::string>& args, const ArgSpec& spec);

// "768", "3,224,224", "" or "()" (a scalar). Dimensions must be >= 1.
tensorblob::Shape parse_shape(std::string_view text);

// A decimal integer, optionally negative, with no trailing text; `what` names it.
int64_t parse_int(std::string_view text, std::string_view what);

// "A:B" as a Python slice of [0, count): either side may be empty or negative.
// Returns the half-open [first, last) after clamping, like list[A:B].
std::pair<int64_t, int64_t> parse_range(std::string_view text, int64_t count);

}  // namespace tblob
