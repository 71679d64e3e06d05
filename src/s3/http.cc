#include "http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

namespace tensorblob::s3 {

namespace {

std::once_flag curl_once;

struct Transfer {
  HttpResponse* resp;
  std::byte* dst;
  size_t capacity;
  bool overflow = false;
  std::string_view upload;
  size_t sent = 0;
  long status = 0;  // of the answer being received, from its status line
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  // Only a success goes to the caller's buffer; an error body is kept to be read.
  if (t->dst && t->status >= 200 && t->status < 300) {
    if (t->resp->body_bytes + len > t->capacity) {
      t->overflow = true;
      return 0;  // aborts the transfer
    }
    std::memcpy(t->dst + t->resp->body_bytes, data, len);
  } else {
    t->resp->body.append(data, len);
  }
  t->resp->body_bytes += len;
  return len;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {  // a new answer (after 100 Continue)
    t->resp->headers.clear();
    const size_t sp = line.find(' ');
    t->status = sp == std::string_view::npos ? 0 : std::atol(std::string(line.substr(sp + 1, 3)).c_str());
  }
  if (auto h = parse_header_line(line)) t->resp->headers[h->first] = h->second;
  return size * n;
}

size_t on_upload(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = std::min(size * n, t->upload.size() - t->sent);
  std::memcpy(buf, t->upload.data() + t->sent, len);
  t->sent += len;
  return len;
}

}  // namespace

std::optional<std::string> HttpResponse::header(const std::string& name) const {
  auto it = headers.find(name);
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

std::optional<std::pair<std::string, std::string>> parse_header_line(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  const size_t colon = line.find(':');
  if (line.empty() || line.rfind("HTTP/", 0) == 0 || colon == std::string_view::npos || colon == 0)
    return std::nullopt;
  std::string name(line.substr(0, colon));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  return std::make_pair(std::move(name), std::string(value));
}

HttpClient::HttpClient(int stall_seconds) : stall_seconds_(std::max(1, stall_seconds)) {
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

HttpClient::~HttpClient() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* HttpClient::acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  CURL* h = curl_easy_init();
  if (!h) throw TransportError("libcurl could not make a connection handle");
  return h;
}

void HttpClient::release(void* handle) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < 128) idle_.push_back(handle);
  else curl_easy_cleanup(static_cast<CURL*>(handle));
}

HttpResponse HttpClient::perform(const HttpRequest& req, std::byte* dst, size_t capacity) {
  CURL* h = static_cast<CURL*>(acquire());
  HttpResponse resp;
  Transfer t{&resp, dst, capacity, false, req.body, 0, 0};
  curl_easy_reset(h);  // keeps the connection, forgets the last request's options
  curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, static_cast<long>(std::min(stall_seconds_, 10)));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(stall_seconds_));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L << 10);  // fewer, larger copies of a part as it arrives
  if (req.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (req.method == "PUT" || req.method == "POST") {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_upload);
    curl_easy_setopt(h, CURLOPT_READDATA, &t);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    if (req.method == "POST") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "POST");
  } else if (req.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  curl_slist* list = nullptr;
  for (const auto& [k, v] : req.headers) list = curl_slist_append(list, (k + ": " + v).c_str());
  list = curl_slist_append(list, "Expect:");  // no 100-continue round trip before a PUT
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

  const CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(list);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  if (rc != CURLE_OK) {
    curl_easy_cleanup(h);  // a connection in an unknown state is not reused
    if (t.overflow) throw TransportError("the answer is longer than the " + std::to_string(capacity) + " bytes asked for");
    std::string why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    throw TransportError(why);
  }
  // A body cut short with the connection kept is still a cut body.
  curl_off_t expected = -1;
  curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &expected);
  release(h);
  if (req.method != "HEAD" && expected >= 0 && static_cast<uint64_t>(expected) != resp.body_bytes)
    throw TransportError("the answer ended after " + std::to_string(resp.body_bytes) + " of " +
                         std::to_string(expected) + " bytes");
  return resp;
}

}  // namespace tensorblob::s3
