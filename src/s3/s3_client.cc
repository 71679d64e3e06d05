#include "s3_client.h"

#include <cerrno>
#include <chrono>
#include <ctime>
#include <random>
#include <thread>

namespace tensorblob::s3 {

namespace {

ObjectInfo info_from(const HttpResponse& r, uint64_t size) {
  ObjectInfo info;
  info.size = size;
  info.etag = unquote_etag(r.header("etag").value_or(""));
  if (auto lm = r.header("last-modified")) info.mtime_ns = parse_http_date(*lm).value_or(0);
  return info;
}

std::optional<uint64_t> parse_size(const std::optional<std::string>& s) {
  if (!s || s->empty() || s->size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : *s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// "bytes 0-9/443" -> 443.
std::optional<uint64_t> total_from_content_range(const std::optional<std::string>& s) {
  if (!s) return std::nullopt;
  const size_t slash = s->rfind('/');
  if (slash == std::string::npos) return std::nullopt;
  return parse_size(s->substr(slash + 1));
}

double jitter() {
  thread_local std::mt19937 rng(std::random_device{}());
  return std::uniform_real_distribution<double>(0.5, 1.5)(rng);
}

}  // namespace

bool retryable_status(long status, std::string_view code) {
  if (status >= 500 || status == 429 || status == 408) return true;
  return code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" || code == "ServiceUnavailable";
}

int backoff_ms(int attempt, double jitter) {
  double ms = 50.0;
  for (int i = 1; i < attempt && ms < 2000; ++i) ms *= 2;
  if (ms > 2000) ms = 2000;
  return static_cast<int>(ms * jitter);
}

Error error_for(long status, const ErrorBody& body, const std::string& what, const std::string& endpoint,
                const std::string& creds_source) {
  const std::string detail = body.code.empty() ? "HTTP " + std::to_string(status)
                                               : body.code + (body.message.empty() ? "" : ": " + body.message);
  if (body.code == "NoSuchBucket")
    return Error(Errc::kNotFound, what + ": the bucket does not exist at " + endpoint, ENOENT);
  if (status == 404) return Error(Errc::kNotFound, what + ": no such object", ENOENT);
  if (status == 403 || status == 401)
    return Error(Errc::kNotPermitted,
                 what + ": access denied (" + detail + "); check the credentials (from " + creds_source +
                     ") and the region",
                 EACCES);
  if (status == 412) return ObjectChanged(what + ": the object was replaced since it was opened");
  if (status == 416) return Error(Errc::kFormat, what + ": the range asked for is outside the object", EIO);
  return Error(Errc::kIo, what + ": " + endpoint + " answered " + detail, EIO);
}

S3Client::S3Client(ResolvedConfig config, int retries, int stall_seconds)
    : config_(std::move(config)), retries_(std::max(0, retries)), http_(stall_seconds) {}

std::string S3Client::url_of(const std::string& bucket, const std::string& key) {
  return "s3://" + bucket + "/" + key;
}

HttpResponse S3Client::send(const Call& c) {
  const std::string host = config_.path_style ? config_.endpoint.authority() : c.bucket + "." + config_.endpoint.authority();
  const std::string path = config_.path_style ? "/" + c.bucket + (c.key.empty() ? "" : "/" + c.key) : "/" + c.key;
  const std::string query = canonical_query(c.query);
  const std::string url = config_.endpoint.scheme + "://" + host + uri_encode(path, true) + (query.empty() ? "" : "?" + query);
  const std::string payload = c.body.empty() ? std::string(kEmptySha256) : sha256_hex(c.body);
  for (int attempt = 0;; ++attempt) {
    SigningInput in;
    in.method = c.method;
    in.path = path;
    in.query = c.query;
    in.payload_hash = payload;
    const std::string date = amz_date(static_cast<long long>(std::time(nullptr)));
    in.headers = {{"host", host}, {"x-amz-date", date}, {"x-amz-content-sha256", payload}};
    if (!config_.credentials.session_token.empty())
      in.headers.emplace_back("x-amz-security-token", config_.credentials.session_token);
    HttpRequest req;
    req.method = c.method;
    req.url = url;
    req.body = c.body;
    req.headers = in.headers;
    if (!config_.credentials.empty())
      req.headers.emplace_back("Authorization", sign_v4(in, config_.credentials, config_.region, "s3", date).authorization);
    for (const auto& h : c.headers) req.headers.push_back(h);
    try {
      HttpResponse r = http_.perform(req, c.dst, c.capacity);
      const bool again =
          retryable_status(r.status, r.status >= 300 ? parse_error_body(r.body).code : std::string_view{});
      if (!again || attempt >= retries_) return r;
    } catch (const TransportError& e) {
      if (attempt >= retries_)
        throw TransportError(url_of(c.bucket, c.key) + ": " + config_.endpoint.base() + " (" + config_.endpoint_source +
                             "): " + e.what() + " (after " + std::to_string(attempt + 1) + " attempts)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms(attempt + 1, jitter())));
  }
}

void S3Client::fail(const HttpResponse& r, const std::string& what) const {
  throw error_for(r.status, parse_error_body(r.body), what, config_.endpoint.base() + " (" + config_.endpoint_source + ")",
                  config_.credentials_source);
}

std::optional<ObjectInfo> S3Client::head(const std::string& bucket, const std::string& key) {
  Call c;
  c.method = "HEAD";
  c.bucket = bucket;
  c.key = key;
  HttpResponse r = send(c);
  if (r.status == 404) return std::nullopt;
  if (r.status != 200) fail(r, url_of(bucket, key));
  auto size = parse_size(r.header("content-length"));
  if (!size) throw Error(Errc::kIo, url_of(bucket, key) + ": the answer to HEAD has no Content-Length", EIO);
  return info_from(r, *size);
}

ObjectInfo S3Client::get_range(const std::string& bucket, const std::string& key, uint64_t offset, size_t n,
                               std::byte* dst, const std::string& if_match) {
  const std::string what = url_of(bucket, key);
  if (n == 0) throw Error(Errc::kInvalidArgument, what + ": an empty range");
  Call c;
  c.bucket = bucket;
  c.key = key;
  c.headers.emplace_back("Range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + n - 1));
  if (!if_match.empty()) c.headers.emplace_back("If-Match", "\"" + if_match + "\"");
  c.dst = dst;
  c.capacity = n;
  HttpResponse r = send(c);
  if (r.status != 206 && r.status != 200) fail(r, what);
  if (r.body_bytes != n)
    throw Error(Errc::kIo,
                what + ": asked for " + std::to_string(n) + " bytes at " + std::to_string(offset) + ", got " +
                    std::to_string(r.body_bytes),
                EIO);
  const uint64_t total = r.status == 206 ? total_from_content_range(r.header("content-range")).value_or(0) : n;
  return info_from(r, total);
}

std::optional<S3Client::Whole> S3Client::get_whole(const std::string& bucket, const std::string& key,
                                                   const std::string& if_none_match, size_t limit) {
  const std::string what = url_of(bucket, key);
  Call c;
  c.bucket = bucket;
  c.key = key;
  if (!if_none_match.empty()) c.headers.emplace_back("If-None-Match", "\"" + if_none_match + "\"");
  HttpResponse r = send(c);
  if (r.status == 304) return std::nullopt;
  if (r.status != 200) fail(r, what);
  if (r.body.size() > limit)
    throw Error(Errc::kFormat, what + ": larger than " + std::to_string(limit) + " bytes");
  Whole w;
  w.info = info_from(r, r.body.size());
  w.body = std::move(r.body);
  return w;
}

std::vector<ListedObject> S3Client::list(const std::string& bucket, const std::string& prefix,
                                         const std::string& delimiter, std::vector<std::string>* prefixes,
                                         int max_keys, size_t limit) {
  std::vector<ListedObject> out;
  std::string token;
  const std::string what = "s3://" + bucket + "/" + prefix;
  for (;;) {
    Call c;
    c.bucket = bucket;
    c.query = {{"list-type", "2"}, {"prefix", prefix}, {"max-keys", std::to_string(max_keys)}};
    if (!delimiter.empty()) c.query.emplace_back("delimiter", delimiter);
    if (!token.empty()) c.query.emplace_back("continuation-token", token);
    HttpResponse r = send(c);
    if (r.status != 200) fail(r, what);
    ListPage page = parse_list_page(r.body, what + " (listing)");
    for (auto& o : page.objects) out.push_back(std::move(o));
    if (prefixes)
      for (auto& p : page.prefixes) prefixes->push_back(std::move(p));
    if (!page.truncated || out.size() >= limit) return out;
    token = page.next_token;
  }
}

std::string S3Client::put(const std::string& bucket, const std::string& key, std::string_view body) {
  Call c;
  c.method = "PUT";
  c.bucket = bucket;
  c.key = key;
  c.body = body;
  HttpResponse r = send(c);
  if (r.status != 200) fail(r, url_of(bucket, key));
  return unquote_etag(r.header("etag").value_or(""));
}

std::string S3Client::start_upload(const std::string& bucket, const std::string& key) {
  Call c;
  c.method = "POST";
  c.bucket = bucket;
  c.key = key;
  c.query = {{"uploads", ""}};
  HttpResponse r = send(c);
  if (r.status != 200) fail(r, url_of(bucket, key));
  return parse_upload_id(r.body, url_of(bucket, key) + " (starting an upload)");
}

std::string S3Client::upload_part(const std::string& bucket, const std::string& key, const std::string& upload_id,
                                  int part, std::string_view body) {
  Call c;
  c.method = "PUT";
  c.bucket = bucket;
  c.key = key;
  c.query = {{"partNumber", std::to_string(part)}, {"uploadId", upload_id}};
  c.body = body;
  HttpResponse r = send(c);
  if (r.status != 200) fail(r, url_of(bucket, key) + " (part " + std::to_string(part) + ")");
  return unquote_etag(r.header("etag").value_or(""));
}

std::string S3Client::finish_upload(const std::string& bucket, const std::string& key, const std::string& upload_id,
                                    const std::vector<std::string>& etags) {
  const std::string body = complete_upload_body(etags);
  Call c;
  c.method = "POST";
  c.bucket = bucket;
  c.key = key;
  c.query = {{"uploadId", upload_id}};
  c.body = body;
  HttpResponse r = send(c);
  if (r.status != 200) fail(r, url_of(bucket, key));
  CompleteResult done = parse_complete_result(r.body);
  if (!done.ok)
    throw Error(Errc::kIo, url_of(bucket, key) + ": completing the upload failed (" + done.error.code + ": " +
                               done.error.message + ")",
                EIO);
  return done.etag;
}

void S3Client::abort_upload(const std::string& bucket, const std::string& key, const std::string& upload_id) {
  Call c;
  c.method = "DELETE";
  c.bucket = bucket;
  c.key = key;
  c.query = {{"uploadId", upload_id}};
  send(c);  // best effort: a left part expires with the bucket's lifecycle rules
}

void S3Client::remove(const std::string& bucket, const std::string& key) {
  Call c;
  c.method = "DELETE";
  c.bucket = bucket;
  c.key = key;
  HttpResponse r = send(c);
  if (r.status != 204 && r.status != 200 && r.status != 404) fail(r, url_of(bucket, key));
}

}  // namespace tensorblob::s3
