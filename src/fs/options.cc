#include "options.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <cctype>
#include <stdexcept>

namespace blobfs {

namespace {

[[noreturn]] void fail(std::string_view where, std::string_view key, const std::string& why) {
  throw OptionError(std::string(where) + ": " + std::string(key) + ": " + why);
}

int64_t to_int(std::string_view where, std::string_view key, std::string_view v, int64_t lo, int64_t hi) {
  int64_t x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (v.empty() || ec == std::errc::invalid_argument || p != v.data() + v.size())
    fail(where, key, "expected an integer, got '" + std::string(v) + "'");
  if (ec == std::errc::result_out_of_range || x < lo || x > hi)
    fail(where, key, std::string(v) + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return x;
}

double to_seconds(std::string_view where, std::string_view key, std::string_view v) {
  double x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size() || !std::isfinite(x))
    fail(where, key, "expected a number of seconds, got '" + std::string(v) + "'");
  if (x < 0 || x > 1e9) fail(where, key, std::string(v) + " is out of range [0, 1e9] seconds");
  return x;
}

uint64_t to_bytes(std::string_view where, std::string_view key, std::string_view v, uint64_t lo, uint64_t hi) {
  auto x = parse_byte_size(v);
  if (!x) fail(where, key, "expected a size in bytes such as 512M or 10G, got '" + std::string(v) + "'");
  if (*x < lo || *x > hi)
    fail(where, key, std::string(v) + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "] bytes");
  return *x;
}

}  // namespace

std::optional<uint64_t> parse_byte_size(std::string_view v) {
  double x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (v.empty() || ec != std::errc() || !std::isfinite(x) || x < 0) return std::nullopt;
  std::string unit(p, v.data() + v.size());
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double scale = 1;
  if (!unit.empty() && unit != "B") {
    const std::string prefixes = "KMGT";
    const size_t k = prefixes.find(unit[0]);
    if (k == std::string::npos) return std::nullopt;
    const std::string rest = unit.substr(1);
    if (!rest.empty() && rest != "B" && rest != "IB") return std::nullopt;
    for (size_t i = 0; i <= k; ++i) scale *= 1024;
  }
  const double bytes = x * scale;
  if (bytes > 9.0e18 || bytes != std::floor(bytes)) return std::nullopt;
  return static_cast<uint64_t>(bytes);
}

std::optional<bool> parse_bool(std::string_view v) {
  std::string lower(v);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* t : {"true", "yes", "on", "1"})
    if (lower == t) return true;
  for (const char* f : {"false", "no", "off", "0"})
    if (lower == f) return false;
  return std::nullopt;
}

namespace {

bool to_bool(std::string_view where, std::string_view key, std::string_view v) {
  if (auto b = parse_bool(v)) return *b;
  fail(where, key, "expected true or false (also yes/no, on/off, 1/0), got '" + std::string(v) + "'");
}

mode_t to_mode(std::string_view where, std::string_view key, std::string_view v) {
  // Octal as in chmod; YAML writes it quoted ("0444") or bare (0444 or 444).
  unsigned x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x, 8);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size() || x > 07777)
    fail(where, key, "expected an octal mode such as 0444, got '" + std::string(v) + "'");
  // Setuid, setgid and sticky bits mean nothing on tensor files and
  // directories that cannot be changed, and setuid bits on files anyone may
  // read are what security scanners flag: refuse them.
  if (x > 0777) fail(where, key, std::string(v) + " has bits outside 0777 (setuid, setgid or sticky)");
  return static_cast<mode_t>(x);
}

using Setter = std::function<void(Options&, std::string_view where, std::string_view key, std::string_view v)>;

struct Key {
  std::string name;
  bool boolean;  // alone in an -o list it means name=true
  Setter set;
};

const std::vector<Key>& setters() {
  static const std::vector<Key> table = {
      {"source", false, [](Options& o, auto, auto, auto v) { o.source = std::string(v); }},
      {"mountpoint", false, [](Options& o, auto, auto, auto v) { o.mountpoint = std::string(v); }},
      {"naming_width", false, [](Options& o, auto w, auto k, auto v) { o.naming_width = static_cast<int>(to_int(w, k, v, 1, 19)); }},
      {"npy_views", true, [](Options& o, auto w, auto k, auto v) { o.npy_views = to_bool(w, k, v); }},
      {"range_views", true, [](Options& o, auto w, auto k, auto v) { o.range_views = to_bool(w, k, v); }},
      {"writable", true, [](Options& o, auto w, auto k, auto v) { o.writable = to_bool(w, k, v); }},
      {"live", true, [](Options& o, auto w, auto k, auto v) { o.live = to_bool(w, k, v); }},
      {"refresh_interval", false,
       [](Options& o, auto w, auto k, auto v) {
         o.refresh_interval = to_seconds(w, k, v);
         if (o.refresh_interval < 0.01) fail(w, k, std::string(v) + " is below the smallest interval, 0.01 seconds");
       }},
      {"inotify", true, [](Options& o, auto w, auto k, auto v) { o.inotify = to_bool(w, k, v); }},
      {"entry_timeout", false, [](Options& o, auto w, auto k, auto v) { o.entry_timeout = to_seconds(w, k, v); }},
      {"attr_timeout", false, [](Options& o, auto w, auto k, auto v) { o.attr_timeout = to_seconds(w, k, v); }},
      {"negative_timeout", false, [](Options& o, auto w, auto k, auto v) { o.negative_timeout = to_seconds(w, k, v); }},
      {"keep_cache", true, [](Options& o, auto w, auto k, auto v) { o.keep_cache = to_bool(w, k, v); }},
      {"verify_on_read", true, [](Options& o, auto w, auto k, auto v) { o.verify_on_read = to_bool(w, k, v); }},
      {"max_cached_blocks", false,
       [](Options& o, auto w, auto k, auto v) { o.max_cached_blocks = static_cast<uint64_t>(to_int(w, k, v, 0, 1LL << 30)); }},
      {"max_open_stores", false,
       [](Options& o, auto w, auto k, auto v) { o.max_open_stores = static_cast<uint64_t>(to_int(w, k, v, 1, 1 << 20)); }},
      {"threads", false, [](Options& o, auto w, auto k, auto v) { o.threads = static_cast<int>(to_int(w, k, v, 1, 1024)); }},
      {"transport", false,
       [](Options& o, auto w, auto k, auto v) {
         if (v != "auto" && v != "uring" && v != "dev") fail(w, k, "expected auto, uring or dev, got '" + std::string(v) + "'");
         o.transport = std::string(v);
       }},
      {"clone_fd", true, [](Options& o, auto w, auto k, auto v) { o.clone_fd = to_bool(w, k, v); }},
      {"uid", false, [](Options& o, auto w, auto k, auto v) { o.uid = to_int(w, k, v, -1, UINT32_MAX - 1); }},
      {"gid", false, [](Options& o, auto w, auto k, auto v) { o.gid = to_int(w, k, v, -1, UINT32_MAX - 1); }},
      {"file_mode", false, [](Options& o, auto w, auto k, auto v) { o.file_mode = to_mode(w, k, v); }},
      {"dir_mode", false, [](Options& o, auto w, auto k, auto v) { o.dir_mode = to_mode(w, k, v); }},
      {"allow_other", true, [](Options& o, auto w, auto k, auto v) { o.allow_other = to_bool(w, k, v); }},
      {"default_permissions", true, [](Options& o, auto w, auto k, auto v) { o.default_permissions = to_bool(w, k, v); }},
      {"log_level", false,
       [](Options& o, auto w, auto k, auto v) {
         for (auto l : {LogLevel::kError, LogLevel::kWarning, LogLevel::kInfo, LogLevel::kDebug})
           if (v == log_level_name(l)) return void(o.log_level = l);
         fail(w, k, "expected error, warning, info or debug, got '" + std::string(v) + "'");
       }},
      {"s3_endpoint", false, [](Options& o, auto, auto, auto v) { o.s3_endpoint = std::string(v); }},
      {"s3_region", false, [](Options& o, auto, auto, auto v) { o.s3_region = std::string(v); }},
      {"s3_profile", false, [](Options& o, auto, auto, auto v) { o.s3_profile = std::string(v); }},
      {"cache_dir", false, [](Options& o, auto, auto, auto v) { o.cache_dir = std::string(v); }},
      {"cache_max_bytes", false,
       [](Options& o, auto w, auto k, auto v) { o.cache_max_bytes = to_bytes(w, k, v, 1 << 20, uint64_t{1} << 60); }},
      {"s3_memory_bytes", false,
       [](Options& o, auto w, auto k, auto v) { o.s3_memory_bytes = to_bytes(w, k, v, 1 << 20, uint64_t{1} << 40); }},
      {"s3_part_size", false,
       [](Options& o, auto w, auto k, auto v) { o.s3_part_size = to_bytes(w, k, v, 64 << 10, uint64_t{1} << 30); }},
      {"s3_prefetch_bytes", false,
       [](Options& o, auto w, auto k, auto v) { o.s3_prefetch_bytes = to_bytes(w, k, v, 0, uint64_t{1} << 40); }},
      {"s3_requests", false, [](Options& o, auto w, auto k, auto v) { o.s3_requests = static_cast<int>(to_int(w, k, v, 1, 256)); }},
      {"s3_retries", false, [](Options& o, auto w, auto k, auto v) { o.s3_retries = static_cast<int>(to_int(w, k, v, 0, 20)); }},
      {"s3_timeout", false,
       [](Options& o, auto w, auto k, auto v) {
         o.s3_timeout = to_seconds(w, k, v);
         if (o.s3_timeout < 1) fail(w, k, std::string(v) + " is below the shortest timeout, 1 second");
       }},
      {"map_blocks", true, [](Options& o, auto w, auto k, auto v) { o.map_blocks = to_bool(w, k, v); }},
      {"metrics_listen", false,
       [](Options& o, auto w, auto k, auto v) {
         if (!v.empty()) {
           try {
             parse_listen_address(v);
           } catch (const std::invalid_argument& e) {
             fail(w, k, e.what());
           }
         }
         o.metrics_listen = std::string(v);
       }},
  };
  return table;
}

}  // namespace

ListenAddress parse_listen_address(std::string_view text) {
  ListenAddress a;
  std::string_view port;
  if (text.starts_with('[')) {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      throw std::invalid_argument("expected [IPV6]:PORT, got '" + std::string(text) + "'");
    a.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos)
      throw std::invalid_argument("expected HOST:PORT (e.g. 127.0.0.1:9464), got '" + std::string(text) + "'");
    a.host = std::string(text.substr(0, colon));
    if (a.host.find(':') != std::string::npos)
      throw std::invalid_argument("an IPv6 address goes in brackets: [" + a.host + "]:PORT");
    port = text.substr(colon + 1);
  }
  if (a.host.empty()) throw std::invalid_argument("no host before the port in '" + std::string(text) + "'");
  unsigned value = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || p != port.data() + port.size() || value < 1 || value > 65535)
    throw std::invalid_argument("port must be an integer 1-65535, got '" + std::string(port) + "'");
  a.port = static_cast<uint16_t>(value);
  return a;
}

std::string_view log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "error";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kInfo: return "info";
    case LogLevel::kDebug: return "debug";
  }
  return "info";
}

const std::vector<std::string>& option_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> k;
    for (const auto& key : setters()) k.push_back(key.name);
    return k;
  }();
  return keys;
}

bool is_boolean_option(std::string_view key) {
  for (const auto& k : setters())
    if (k.name == key) return k.boolean;
  return false;
}

void set_option(Options& opts, std::string_view key, std::string_view value, std::string_view where) {
  for (const auto& k : setters())
    if (k.name == key) return k.set(opts, where, key, value);
  throw OptionError(std::string(where) + ": unknown option '" + std::string(key) + "'");
}

void apply_config_yaml(Options& opts, const std::string& text, const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw OptionError(path + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  if (root.IsNull()) return;  // an empty file keeps every default
  if (!root.IsMap()) throw OptionError(path + ": the config must be a map of key: value");
  for (const auto& kv : root) {
    const std::string where = path + ":" + std::to_string(kv.first.Mark().line + 1);
    if (!kv.first.IsScalar()) throw OptionError(where + ": keys must be plain names");
    const std::string key = kv.first.Scalar();
    if (!kv.second.IsScalar() && !kv.second.IsNull())
      throw OptionError(where + ": " + key + ": expected a single value, not a list or map");
    set_option(opts, key, kv.second.IsNull() ? "" : kv.second.Scalar(), where);
  }
}

void apply_mount_options(Options& opts, std::string_view list) {
  static const std::vector<std::string_view> ignored = {
      "ro", "rw", "dev", "nodev", "suid", "nosuid", "exec", "noexec", "atime", "noatime", "relatime",
      "norelatime", "strictatime", "nodiratime", "diratime", "async", "auto", "noauto", "user", "nouser",
      "users", "nofail", "_netdev", "defaults", "lazytime", "nolazytime", "silent", "loud",
      // fuse2's "mount over a non-empty directory": fuse3 always allows it,
      // and old fstab lines still carry it.
      "nonempty"};
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string_view item = list.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    start = comma == std::string_view::npos ? list.size() + 1 : comma + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string_view key = item.substr(0, eq);
    if (eq == std::string_view::npos) {
      if (std::find(ignored.begin(), ignored.end(), item) != ignored.end() || item.starts_with("x-")) continue;
      // A boolean key alone means true, as fuse's own allow_other does.
      if (is_boolean_option(item)) {
        set_option(opts, item, "true", "-o");
        continue;
      }
      throw OptionError("-o: " + std::string(item) + ": expected key=value");
    }
    if (key == "comment" || key.starts_with("x-") || key == "fsname" || key == "subtype") continue;
    set_option(opts, key, item.substr(eq + 1), "-o");
  }
}

}  // namespace blobfs
