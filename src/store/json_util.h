// JSON helpers shared by the parsers of .conf, .stat and picomap's .json.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace tensorblob {

// Parses untrusted text; throws FormatError "<path>: invalid JSON: <where>".
nlohmann::json parse_json(std::string_view text, std::string_view path);

// A short description of an untrusted value for an error message: scalars as
// written (cut to 40 characters), arrays and objects by kind only. Never
// serialises a whole value, which for deeply nested input would recurse
// until the stack runs out.
std::string describe_json(const nlohmann::json& value);

}  // namespace tensorblob
