// The S3 requests a store needs (HEAD, ranged and conditional GET, list,
// PUT, multipart upload, DELETE), signed, retried and turned into Errors.
// Owns an HttpClient; safe for concurrent use.
#pragma once

#include <cstdint>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http.h"
#include "s3_config.h"
#include "s3_xml.h"

namespace tensorblob::s3 {

struct ObjectInfo {
  uint64_t size = 0;
  std::string etag;
  int64_t mtime_ns = 0;
};

// A conditional request found the object is no longer the version named
// (If-Match failed): it was replaced since it was opened.
class ObjectChanged : public Error {
 public:
  explicit ObjectChanged(const std::string& message) : Error(Errc::kNotFound, message, 2 /* ENOENT */) {}
};

// Whether an answer is worth asking again: server errors and throttling.
bool retryable_status(long status, std::string_view code);
// How long to wait before attempt `attempt` (1 = the first retry): doubling
// from 50 ms to at most 2 s, times `jitter` in [0.5, 1.5).
int backoff_ms(int attempt, double jitter);
// The Error for an answer that is not a success, naming `what`
// ("s3://bucket/key"). `creds_source` says where the credentials came from.
Error error_for(long status, const ErrorBody& body, const std::string& what, const std::string& endpoint,
                const std::string& creds_source);

class S3Client {
 public:
  S3Client(ResolvedConfig config, int retries, int stall_seconds);

  const ResolvedConfig& config() const { return config_; }
  // "s3://bucket/key", for messages.
  static std::string url_of(const std::string& bucket, const std::string& key);

  // nullopt when there is no such object.
  std::optional<ObjectInfo> head(const std::string& bucket, const std::string& key);
  // Bytes [offset, offset + n) into dst. With `if_match`, ObjectChanged when
  // the object is no longer that version. Error(kNotFound) when missing.
  ObjectInfo get_range(const std::string& bucket, const std::string& key, uint64_t offset, size_t n, std::byte* dst,
                       const std::string& if_match);
  // The whole object, at most `limit` bytes (Error(kFormat) if larger).
  // With `if_none_match`, nullopt when the object is still that version.
  struct Whole {
    ObjectInfo info;
    std::string body;
  };
  std::optional<Whole> get_whole(const std::string& bucket, const std::string& key, const std::string& if_none_match,
                                 size_t limit);
  // The objects under `prefix` (all of them, or at least `limit` when there
  // are more); with a delimiter, the common prefixes too.
  std::vector<ListedObject> list(const std::string& bucket, const std::string& prefix, const std::string& delimiter,
                                 std::vector<std::string>* prefixes = nullptr, int max_keys = 1000,
                                 size_t limit = SIZE_MAX);
  // Returns the new object's ETag.
  std::string put(const std::string& bucket, const std::string& key, std::string_view body);
  std::string start_upload(const std::string& bucket, const std::string& key);
  std::string upload_part(const std::string& bucket, const std::string& key, const std::string& upload_id, int part,
                          std::string_view body);
  std::string finish_upload(const std::string& bucket, const std::string& key, const std::string& upload_id,
                            const std::vector<std::string>& etags);
  void abort_upload(const std::string& bucket, const std::string& key, const std::string& upload_id);
  void remove(const std::string& bucket, const std::string& key);

 private:
  struct Call {
    std::string method = "GET";
    std::string bucket, key;
    std::vector<std::pair<std::string, std::string>> query;
    std::vector<std::pair<std::string, std::string>> headers;  // sent unsigned
    std::string_view body;
    std::byte* dst = nullptr;
    size_t capacity = 0;
  };
  // Signs and sends, retrying what is worth retrying; returns the last
  // answer (success or not). Throws TransportError after the last attempt.
  HttpResponse send(const Call& call);
  [[noreturn]] void fail(const HttpResponse& r, const std::string& what) const;

  ResolvedConfig config_;
  int retries_;
  HttpClient http_;
};

}  // namespace tensorblob::s3
