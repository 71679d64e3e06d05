#include "s3_config.h"

#include <cctype>
#include <cstdlib>

#include "tensorblob/error.h"
#include "tensorblob/storage.h"

namespace tensorblob::s3 {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// S3's rules for bucket names, loosely: what every implementation accepts.
bool valid_bucket(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b)
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' ||
          c == '.' || c == '_'))
      return false;
  return std::isalnum(static_cast<unsigned char>(b.front())) && std::isalnum(static_cast<unsigned char>(b.back()));
}

}  // namespace

S3Url parse_s3_url(std::string_view url) {
  const std::string shown(url);
  if (!is_s3_url(url)) throw Error(Errc::kInvalidArgument, shown + ": not an s3:// URL");
  std::string_view rest = url.substr(5);
  const size_t slash = rest.find('/');
  S3Url out;
  out.bucket = std::string(rest.substr(0, slash));
  if (!valid_bucket(out.bucket))
    throw Error(Errc::kInvalidArgument,
                shown + ": \"" + out.bucket + "\" is not a bucket name (3 to 63 lowercase letters, digits, '-', '.')");
  std::string_view prefix = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  // Keys are names, not paths: "." and ".." parts and empty parts would name
  // objects no S3 tool would list under this prefix.
  size_t start = 0;
  while (start <= prefix.size() && !prefix.empty()) {
    size_t end = prefix.find('/', start);
    if (end == std::string_view::npos) end = prefix.size();
    std::string_view part = prefix.substr(start, end - start);
    if (part.empty() || part == "." || part == "..")
      throw Error(Errc::kInvalidArgument, shown + ": a key prefix may not hold empty, \".\" or \"..\" parts");
    start = end + 1;
  }
  out.prefix = std::string(prefix);
  return out;
}

std::string Endpoint::authority() const {
  const bool default_port = port == 0 || (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
  return default_port ? host : host + ":" + std::to_string(port);
}

Endpoint parse_endpoint(std::string_view url, std::string_view what) {
  const std::string shown = std::string(what) + " \"" + std::string(url) + "\"";
  Endpoint e;
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos)
    throw Error(Errc::kInvalidArgument, shown + ": not a URL (expected http://HOST[:PORT] or https://HOST[:PORT])");
  e.scheme = lower(url.substr(0, sep));
  if (e.scheme != "http" && e.scheme != "https")
    throw Error(Errc::kInvalidArgument, shown + ": the scheme must be http or https");
  std::string_view rest = url.substr(sep + 3);
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find_first_of("/?#@ ") != std::string_view::npos)
    throw Error(Errc::kInvalidArgument, shown + ": only a scheme, a host and a port are allowed");
  std::string_view host = rest, port;
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) throw Error(Errc::kInvalidArgument, shown + ": unclosed '[' in the host");
    host = rest.substr(0, close + 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') throw Error(Errc::kInvalidArgument, shown + ": junk after the host");
      port = rest.substr(close + 2);
    }
  } else if (const size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.empty() || host == "[]") throw Error(Errc::kInvalidArgument, shown + ": no host");
  e.host = lower(host);
  if (!port.empty() || rest.back() == ':') {
    int p = 0;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || p > 65535)
        throw Error(Errc::kInvalidArgument, shown + ": the port must be a number from 1 to 65535");
      p = p * 10 + (c - '0');
    }
    if (p < 1 || p > 65535) throw Error(Errc::kInvalidArgument, shown + ": the port must be a number from 1 to 65535");
    e.port = p;
  }
  return e;
}

IniFile parse_ini(std::string_view text) {
  IniFile out;
  std::string section;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      const size_t close = line.find(']');
      if (close == std::string_view::npos) continue;  // the AWS tools refuse it; we just skip it
      section = std::string(trim(line.substr(1, close - 1)));
      if (section.rfind("profile ", 0) == 0) section = std::string(trim(std::string_view(section).substr(8)));
      continue;
    }
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos || section.empty()) continue;
    out[section][lower(trim(line.substr(0, eq)))] = std::string(trim(line.substr(eq + 1)));
  }
  return out;
}

ResolvedConfig resolve(const S3Options& options, const std::function<const char*(const char*)>& getenv,
                       const std::function<std::optional<std::string>(const std::string&)>& read_file) {
  auto env = [&](const char* name) -> std::string {
    const char* v = getenv(name);
    return v ? std::string(v) : std::string();
  };
  ResolvedConfig c;
  std::string endpoint = options.endpoint;
  c.endpoint_source = "s3_endpoint";
  if (endpoint.empty()) {
    endpoint = env("AWS_ENDPOINT_URL_S3");
    c.endpoint_source = "AWS_ENDPOINT_URL_S3";
  }
  if (endpoint.empty()) {
    endpoint = env("AWS_ENDPOINT_URL");
    c.endpoint_source = "AWS_ENDPOINT_URL";
  }

  const std::string home = env("HOME");
  const std::string profile = !options.profile.empty() ? options.profile
                              : !env("AWS_PROFILE").empty() ? env("AWS_PROFILE")
                                                            : std::string("default");
  std::string config_path = env("AWS_CONFIG_FILE");
  if (config_path.empty() && !home.empty()) config_path = home + "/.aws/config";
  IniFile config;
  if (!config_path.empty())
    if (auto text = read_file(config_path)) config = parse_ini(*text);
  auto config_value = [&](const char* key) -> std::string {
    auto s = config.find(profile);
    if (s == config.end()) return {};
    auto v = s->second.find(key);
    return v == s->second.end() ? std::string() : v->second;
  };

  c.region = !options.region.empty()             ? options.region
             : !env("AWS_REGION").empty()         ? env("AWS_REGION")
             : !env("AWS_DEFAULT_REGION").empty() ? env("AWS_DEFAULT_REGION")
             : !config_value("region").empty()    ? config_value("region")
                                                  : std::string("us-east-1");
  if (endpoint.empty() && !config_value("endpoint_url").empty()) {
    endpoint = config_value("endpoint_url");
    c.endpoint_source = config_path + " endpoint_url";
  }
  if (endpoint.empty()) {
    c.endpoint = parse_endpoint("https://s3." + c.region + ".amazonaws.com", "AWS");
    c.endpoint_source = "AWS";
    c.path_style = false;
  } else {
    c.endpoint = parse_endpoint(endpoint, c.endpoint_source);
    c.path_style = true;
  }

  if (!env("AWS_ACCESS_KEY_ID").empty()) {
    c.credentials = {env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"), env("AWS_SESSION_TOKEN")};
    c.credentials_source = "AWS_ACCESS_KEY_ID";
    return c;
  }
  std::string cred_path = env("AWS_SHARED_CREDENTIALS_FILE");
  if (cred_path.empty() && !home.empty()) cred_path = home + "/.aws/credentials";
  if (!cred_path.empty()) {
    if (auto text = read_file(cred_path)) {
      IniFile creds = parse_ini(*text);
      auto s = creds.find(profile);
      if (s != creds.end()) {
        c.credentials = {s->second["aws_access_key_id"], s->second["aws_secret_access_key"],
                         s->second["aws_session_token"]};
        c.credentials_source = cred_path + " [" + profile + "]";
        return c;
      }
    }
  }
  c.credentials_source = "none";
  return c;
}

ResolvedConfig resolve(const S3Options& options) {
  return resolve(
      options, [](const char* n) { return std::getenv(n); },
      [](const std::string& path) -> std::optional<std::string> {
        try {
          return read_regular_file(path, 1 << 20);
        } catch (const Error& e) {
          // Missing, or /dev/null (how one says "no config file"): none.
          if (e.code() == Errc::kNotFound || e.code() == Errc::kFormat) return std::nullopt;
          throw;
        }
      });
}

}  // namespace tensorblob::s3
