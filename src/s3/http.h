// HTTP/1.1 requests over libcurl, on a pool of kept-alive connections.
// One request is one call, on the calling thread; many threads may call at
// once (each takes its own connection). Knows nothing of S3: signing,
// retries and error bodies are the caller's (s3_client.h).
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tensorblob/error.h"

namespace tensorblob::s3 {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view body;  // sent for PUT and POST; must outlive the call
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lowercased; last one wins
  std::string body;                            // unless written to a buffer
  size_t body_bytes = 0;                       // bytes received, wherever they went
  std::optional<std::string> header(const std::string& name) const;
};

// The request did not get a whole answer: no connection, a timeout, a
// connection dropped mid-answer. Always worth retrying.
class TransportError : public Error {
 public:
  explicit TransportError(const std::string& message) : Error(Errc::kIo, message, 5 /* EIO */) {}
};

// "Name: value" of one header line as libcurl hands it (with CRLF), the
// name lowercased; nullopt for the status line and the blank line.
std::optional<std::pair<std::string, std::string>> parse_header_line(std::string_view line);

class HttpClient {
 public:
  // `stall_seconds`: a transfer that moves no byte for this long is dropped.
  explicit HttpClient(int stall_seconds);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Performs `req`. With `dst`, the body is written there and must fit in
  // `capacity` (a longer body is an error); without, it is kept in
  // response.body. Throws TransportError when no whole answer came.
  HttpResponse perform(const HttpRequest& req, std::byte* dst = nullptr, size_t capacity = 0);

 private:
  void* acquire();  // a CURL easy handle
  void release(void* handle);

  int stall_seconds_;
  std::mutex mu_;
  std::vector<void*> idle_;
};

}  // namespace tensorblob::s3
