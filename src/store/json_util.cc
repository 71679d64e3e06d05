#include "json_util.h"

#include "tensorblob/error.h"

namespace tensorblob {

nlohmann::json parse_json(std::string_view text, std::string_view path) {
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    // nlohmann's message carries the byte position; drop its "[json.exception...]" tag.
    std::string msg = e.what();
    auto pos = msg.find("] ");
    throw FormatError(std::string(path) + ": invalid JSON: " + (pos == std::string::npos ? msg : msg.substr(pos + 2)));
  }
}

std::string describe_json(const nlohmann::json& value) {
  if (value.is_array()) return "a list";
  if (value.is_object()) return "an object";
  std::string s = value.dump();
  return s.size() > 40 ? s.substr(0, 40) + "..." : s;
}

}  // namespace tensorblob
