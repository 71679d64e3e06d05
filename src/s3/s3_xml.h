// The XML S3 answers with, parsed: pure functions of the response body that
// throw FormatError naming `what` (the request) when it is not what S3 sends.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tensorblob::s3 {

struct ListedObject {
  std::string key;
  uint64_t size = 0;
  std::string etag;  // as sent, quotes removed
  int64_t mtime_ns = 0;
};

struct ListPage {
  std::vector<ListedObject> objects;
  std::vector<std::string> prefixes;  // CommonPrefixes, with the delimiter
  bool truncated = false;
  std::string next_token;  // NextContinuationToken when truncated
};
// A ListObjectsV2 result.
ListPage parse_list_page(std::string_view xml, std::string_view what);

// An error body: <Error><Code>..</Code><Message>..</Message></Error>. Empty
// fields when the body is not one (a HEAD has no body; a proxy may send HTML).
struct ErrorBody {
  std::string code, message;
};
ErrorBody parse_error_body(std::string_view xml);

// InitiateMultipartUploadResult's UploadId.
std::string parse_upload_id(std::string_view xml, std::string_view what);
// A CompleteMultipartUpload request body for parts 1..N with these ETags.
std::string complete_upload_body(const std::vector<std::string>& etags);
// Whether a 200 answer to CompleteMultipartUpload is in fact an error (S3
// may fail it after sending 200), and the resulting ETag when it is not.
struct CompleteResult {
  bool ok = false;
  std::string etag;
  ErrorBody error;
};
CompleteResult parse_complete_result(std::string_view xml);

// Quotes removed from an ETag header or element.
std::string unquote_etag(std::string_view etag);
// "2013-05-24T00:00:00.000Z" (ISO 8601, as listings give it) in ns since the
// epoch; nullopt when malformed.
std::optional<int64_t> parse_iso8601(std::string_view s);
// "Fri, 24 May 2013 00:00:00 GMT" (RFC 7231, the Last-Modified header).
std::optional<int64_t> parse_http_date(std::string_view s);

}  // namespace tensorblob::s3
