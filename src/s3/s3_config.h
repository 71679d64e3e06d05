// Where an S3 store is and how to reach it, resolved the way the AWS tools
// resolve it (so a user's existing setup works unchanged): the endpoint from
// the s3_endpoint key or AWS_ENDPOINT_URL, the region from s3_region,
// AWS_REGION or AWS_DEFAULT_REGION, the credentials from AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, then the shared credentials file
// (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile AWS_PROFILE).
// The parsers are pure functions; resolve() is the one that reads the
// environment and files.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "sigv4.h"
#include "tensorblob/s3.h"

namespace tensorblob::s3 {

// s3://BUCKET/PREFIX split: the prefix without leading '/' and, when it is
// not empty, without trailing '/'. Throws Error(kInvalidArgument) naming the
// URL when it is not one (no bucket, a bucket name S3 would refuse).
struct S3Url {
  std::string bucket, prefix;
};
S3Url parse_s3_url(std::string_view url);

// http[s]://HOST[:PORT][/] parsed; Error(kInvalidArgument) naming `what`
// (the key or variable it came from) when it is not a URL we can use.
struct Endpoint {
  std::string scheme = "https";
  std::string host;  // a name, an IPv4 address or [IPv6]
  int port = 0;      // 0: the scheme's
  // "host" or "host:port" as the Host header says it.
  std::string authority() const;
  std::string base() const { return scheme + "://" + authority(); }
};
Endpoint parse_endpoint(std::string_view url, std::string_view what);

// An INI file as the AWS tools write it: section -> key -> value; keys are
// lowercased, values trimmed; '#' and ';' start comments at line start.
using IniFile = std::map<std::string, std::map<std::string, std::string>>;
IniFile parse_ini(std::string_view text);

// Everything needed to send a request, resolved.
struct ResolvedConfig {
  Endpoint endpoint;
  std::string endpoint_source;  // "s3_endpoint", "AWS_ENDPOINT_URL" or "AWS", for messages
  std::string region;
  bool path_style = true;  // custom endpoints: path style; AWS: virtual-host style
  Credentials credentials;
  std::string credentials_source;  // "environment", "~/.aws/credentials [profile]", "none"
};

// Resolves `options` against the environment (`getenv`) and the files it
// names (`read_file`: nullopt when missing). Never logs a secret.
ResolvedConfig resolve(const S3Options& options, const std::function<const char*(const char*)>& getenv,
                       const std::function<std::optional<std::string>(const std::string&)>& read_file);
// The same, against the process's environment and files.
ResolvedConfig resolve(const S3Options& options);

}  // namespace tensorblob::s3
