// AWS Signature Version 4 (the request signing every S3 implementation
// checks), computed with OpenSSL. Pure functions of their inputs: the time
// and the credentials are arguments, so the published test vectors can be
// checked without a server.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tensorblob::s3 {

// Lowercase hex of SHA-256 of `data`.
std::string sha256_hex(std::string_view data);
// The hex SHA-256 of an empty body, which GET, HEAD and DELETE sign.
inline constexpr std::string_view kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters
// (A-Z a-z 0-9 - . _ ~) kept, everything else %XX in uppercase; '/' kept when
// `keep_slash` (object paths), encoded otherwise (query keys and values).
std::string uri_encode(std::string_view s, bool keep_slash);

struct Credentials {
  std::string access_key, secret_key;
  std::string session_token;  // empty unless temporary credentials
  bool empty() const { return access_key.empty(); }
};

// What is signed. `path` and `query` are not yet encoded; `headers` are the
// headers to sign (names in any case; host and x-amz-date among them).
struct SigningInput {
  std::string method;
  std::string path = "/";
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload_hash = std::string(kEmptySha256);
};

struct SigningResult {
  std::string canonical_request, string_to_sign, signed_headers, signature;
  std::string authorization;  // the Authorization header's value
};

// Signs for `region` and `service` ("s3") at `amz_date` ("20130524T000000Z").
SigningResult sign_v4(const SigningInput& in, const Credentials& creds, std::string_view region,
                      std::string_view service, std::string_view amz_date);

// The query string in the canonical order and encoding, which is also what a
// request must send for its signature to match.
std::string canonical_query(const std::vector<std::pair<std::string, std::string>>& query);

// "YYYYMMDDTHHMMSSZ" for a time in seconds since the epoch.
std::string amz_date(long long epoch_seconds);

}  // namespace tensorblob::s3
