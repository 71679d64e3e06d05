// picomap's file names, JSON and starts file (src/store/FORMATS.md 2.1-2.4).
#include <cstring>
#include <nlohmann/json.hpp>

#include "json_util.h"
#include "tensorblob/error.h"
#include "tensorblob/ragged.h"

namespace tensorblob {

namespace {

std::string prefix(std::string_view path) { return std::string(path) + ": "; }

}  // namespace

RaggedMeta parse_ragged_json(std::string_view text, std::string_view path) {
  using nlohmann::json;
  json obj = parse_json(text, path);
  if (!obj.is_object()) throw FormatError(prefix(path) + "must be a JSON object");
  static const char* kKeys[] = {"trail_dim", "hash", "creation_time", "dtype", "count", "total_rows"};
  for (const auto& [key, _] : obj.items())
    if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys))
      throw FormatError(prefix(path) + "unknown key '" + key + "'");
  for (const char* key : kKeys)
    if (!obj.contains(key)) throw FormatError(prefix(path) + "missing key '" + key + "'");
  auto count_of = [&](const char* key) {
    const json& v = obj[key];
    if (!v.is_number_integer() || (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0))
      throw FormatError(prefix(path) + "'" + key + "' must be a non-negative integer, got " + describe_json(v));
    if (v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) throw FormatError(prefix(path) + "'" + key + "' is too large");
    return v.get<int64_t>();
  };
  auto string_of = [&](const char* key) {
    if (!obj[key].is_string()) throw FormatError(prefix(path) + "'" + key + "' must be a string");
    return obj[key].get<std::string>();
  };
  RaggedMeta m;
  m.count = count_of("count");
  m.total_rows = count_of("total_rows");
  m.hash = string_of("hash");
  m.creation_time = string_of("creation_time");
  m.dtype_name = string_of("dtype");
  if (m.hash.size() != 32 || m.hash.find_first_not_of("0123456789abcdef") != std::string::npos)
    throw FormatError(prefix(path) + "'hash' must be 32 lowercase hex digits, got \"" + m.hash + "\"");
  const json& trail = obj["trail_dim"];
  if (trail.is_null()) {
    if (m.count != 0) throw FormatError(prefix(path) + "'trail_dim' is null but count is " + std::to_string(m.count));
  } else if (trail.is_array()) {
    Shape s;
    for (const auto& d : trail) {
      if (!d.is_number_integer() || (!d.is_number_unsigned() && d.get<int64_t>() < 0) ||
          d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        throw FormatError(prefix(path) + "'trail_dim' must be a list of non-negative integers");
      s.push_back(d.get<int64_t>());
    }
    m.trail = s;
  } else {
    throw FormatError(prefix(path) + "'trail_dim' must be a list of integers or null");
  }
  if (m.count == 0 && m.total_rows != 0)
    throw FormatError(prefix(path) + "count is 0 but total_rows is " + std::to_string(m.total_rows));
  if (m.count > m.total_rows)
    throw FormatError(prefix(path) + "count " + std::to_string(m.count) + " exceeds total_rows " +
                      std::to_string(m.total_rows) + " (every item has at least one row)");
  return m;
}

std::string format_ragged_json(const RaggedMeta& m) {
  nlohmann::ordered_json obj;
  if (m.trail) obj["trail_dim"] = *m.trail;
  else obj["trail_dim"] = nullptr;
  obj["hash"] = m.hash;
  obj["creation_time"] = m.creation_time;
  obj["dtype"] = m.dtype_name;
  obj["count"] = m.count;
  obj["total_rows"] = m.total_rows;
  return obj.dump(-1, ' ', /*ensure_ascii=*/true);
}

std::string picomap_creation_time(std::time_t t) {
  static const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  ::localtime_r(&t, &tm);
  int hour12 = tm.tm_hour % 12 == 0 ? 12 : tm.tm_hour % 12;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s %02d %s %04d, %02d:%02d%s", kDays[tm.tm_wday], tm.tm_mday, kMonths[tm.tm_mon],
                tm.tm_year + 1900, hour12, tm.tm_min, tm.tm_hour < 12 ? "AM" : "PM");
  return buf;
}

StartsLayout parse_starts_header(std::string_view file_prefix, uint64_t file_size, std::string_view path) {
  NpyHeader h = parse_npy_header(file_prefix, path);
  if (h.descr != "<u8" && h.descr != "<i8" && h.descr != "=u8" && h.descr != "=i8")
    throw FormatError(prefix(path) + "expected 8-byte little-endian integers, got '" + h.descr + "'");
  if (h.fortran_order || h.shape.size() != 1)
    throw FormatError(prefix(path) + "expected a 1-D array, got shape " + shape_to_string(h.shape));
  if (h.shape[0] < 1) throw FormatError(prefix(path) + "has no entries (it needs count + 1)");
  uint64_t want = h.data_offset + 8 * static_cast<uint64_t>(h.shape[0]);
  if (h.shape[0] > (INT64_MAX - 4096) / 8 || file_size != want)
    throw FormatError(prefix(path) + "is " + std::to_string(file_size) + " bytes but its header promises " +
                      std::to_string(want));
  return {h.data_offset, h.shape[0]};
}

std::string format_starts_npy(const std::vector<uint64_t>& starts) {
  std::string out = npy_header("<u8", {static_cast<int64_t>(starts.size())});
  for (uint64_t v : starts)
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return out;
}

}  // namespace tensorblob
