#include "args.h"

#include <algorithm>
#include <charconv>

namespace tblob {

std::optional<std::string> ParsedArgs::get(const std::string& name) const {
  auto it = options.find(name);
  if (it == options.end()) return std::nullopt;
  return it->second;
}

ParsedArgs parse_args(const std::vector<std::string>& args, const ArgSpec& spec) {
  auto in = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  ParsedArgs out;
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (options_done || a.size() < 2 || a[0] != '-' || (a[1] != '-' && !std::isalpha(static_cast<unsigned char>(a[1])))) {
      out.positional.push_back(a);  // "-1" is a value (a negative index), not an option
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    std::string name = a, value;
    bool inline_value = false;
    if (auto eq = a.find('='); eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      inline_value = true;
    }
    if (name == "-h") name = "--help";
    if (out.options.count(name)) throw UsageError("option " + name + " given twice");
    if (name == "--help" || in(spec.flags, name)) {
      if (inline_value) throw UsageError("option " + name + " takes no value");
      out.options[name] = "";
    } else if (in(spec.with_value, name)) {
      if (!inline_value) {
        if (i + 1 >= args.size()) throw UsageError("option " + name + " needs a value");
        value = args[++i];
      }
      out.options[name] = value;
    } else {
      throw UsageError("unknown option " + name);
    }
  }
  return out;
}

int64_t parse_int(std::string_view text, std::string_view what) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || p != end)
    throw UsageError(std::string(what) + " must be an integer, got '" + std::string(text) + "'");
  return v;
}

tensorblob::Shape parse_shape(std::string_view text) {
  tensorblob::Shape shape;
  if (text.size() >= 2 && text.front() == '(' && text.back() == ')') text = text.substr(1, text.size() - 2);
  if (text.empty()) return shape;
  if (!text.empty() && text.back() == ',') text.remove_suffix(1);  // "(5,)"
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view part = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    int64_t d = parse_int(part, "shape dimension");
    if (d < 1) throw UsageError("shape dimensions must be at least 1, got " + std::to_string(d));
    shape.push_back(d);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  tensorblob::shape_elements(shape);  // refuses products that overflow
  return shape;
}

std::pair<int64_t, int64_t> parse_range(std::string_view text, int64_t count) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos)
    throw UsageError("range must be A:B (a Python slice without step), got '" + std::string(text) + "'");
  auto side = [&](std::string_view s, int64_t dflt) {
    if (s.empty()) return dflt;
    int64_t v = parse_int(s, "range bound");
    if (v < 0) v = std::max<int64_t>(0, v + count);
    return std::min(v, count);
  };
  int64_t a = side(text.substr(0, colon), 0), b = side(text.substr(colon + 1), count);
  return {a, std::max(a, b)};
}

}  // namespace tblob
