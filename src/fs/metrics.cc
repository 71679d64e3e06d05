#include "metrics.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

namespace blobfs {

namespace {

constexpr const char* kOpNames[] = {"lookup",  "getattr", "open",   "read",  "opendir", "readdir",
                                    "readdirplus", "statfs", "ioctl", "setattr", "create", "write",
                                    "flush", "fsync", "release", "forget", "refused"};
static_assert(sizeof kOpNames / sizeof kOpNames[0] == static_cast<size_t>(Op::kCount));

// Prometheus wants Go's float formatting: shortest round trip, +Inf.
std::string number(double v) {
  char buf[32];
  if (v == static_cast<double>(static_cast<int64_t>(v)) && v > -9e15 && v < 9e15)
    return std::to_string(static_cast<int64_t>(v));  // counts as integers, not 1e+01
  double back = 0;
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    std::sscanf(buf, "%lf", &back);
    if (back == v) break;
  }
  return buf;
}

void header(std::ostringstream& out, const std::string& name, const std::string& help, const char* type) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

std::string errno_label(int e) {
  const char* name = strerrorname_np(e);
  return name ? name : std::to_string(e);
}

}  // namespace

const char* op_name(Op op) { return kOpNames[static_cast<size_t>(op)]; }

Metrics& Metrics::global() {
  static Metrics m;
  return m;
}

void Metrics::request(Op op, double seconds) {
  if (!enabled()) return;
  OpStats& s = ops_[static_cast<size_t>(op)];
  s.count.fetch_add(1, std::memory_order_relaxed);
  s.nanos.fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
  for (size_t k = 0; k < kBuckets.size(); ++k)
    if (seconds <= kBuckets[k]) {
      s.buckets[k].fetch_add(1, std::memory_order_relaxed);
      break;
    }
}

void Metrics::error(int err) {
  if (!enabled() || err <= 0) return;
  errors_[static_cast<size_t>(err > kMaxErrno ? 0 : err)].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::bytes_read(uint64_t n) {
  if (enabled()) bytes_read_.fetch_add(n, std::memory_order_relaxed);
}

void Metrics::refresh(RefreshResult r) {
  if (enabled()) refreshes_[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::add_source(std::function<std::vector<Sample>()> source) { sources_.push_back(std::move(source)); }

std::string Metrics::render() const {
  std::ostringstream out;
  header(out, "blobfs_requests_total", "Requests the kernel sent to the daemon, by kind.", "counter");
  for (size_t k = 0; k < kOps; ++k)
    out << "blobfs_requests_total{op=\"" << kOpNames[k] << "\"} " << ops_[k].count.load(std::memory_order_relaxed)
        << '\n';
  header(out, "blobfs_request_duration_seconds", "Time from a request's arrival to its reply, by kind.", "histogram");
  for (size_t k = 0; k < kOps; ++k) {
    const OpStats& s = ops_[k];
    const uint64_t count = s.count.load(std::memory_order_relaxed);
    if (count == 0) continue;
    uint64_t cumulative = 0;
    for (size_t b = 0; b < kBuckets.size(); ++b) {
      cumulative += s.buckets[b].load(std::memory_order_relaxed);
      // Counts are read one by one while requests go on: never let a
      // bucket exceed the total that follows it.
      out << "blobfs_request_duration_seconds_bucket{op=\"" << kOpNames[k] << "\",le=\"" << number(kBuckets[b])
          << "\"} " << std::min(cumulative, count) << '\n';
    }
    out << "blobfs_request_duration_seconds_bucket{op=\"" << kOpNames[k] << "\",le=\"+Inf\"} " << count << '\n';
    out << "blobfs_request_duration_seconds_sum{op=\"" << kOpNames[k] << "\"} "
        << number(static_cast<double>(s.nanos.load(std::memory_order_relaxed)) / 1e9) << '\n';
    out << "blobfs_request_duration_seconds_count{op=\"" << kOpNames[k] << "\"} " << count << '\n';
  }
  header(out, "blobfs_read_bytes_total", "Bytes of file data the daemon returned to reads.", "counter");
  out << "blobfs_read_bytes_total " << bytes_read_.load(std::memory_order_relaxed) << '\n';
  header(out, "blobfs_errors_total", "Replies with an error, by errno name.", "counter");
  for (int e = 0; e <= kMaxErrno; ++e) {
    const uint64_t n = errors_[static_cast<size_t>(e)].load(std::memory_order_relaxed);
    if (n) out << "blobfs_errors_total{errno=\"" << (e ? errno_label(e) : "other") << "\"} " << n << '\n';
  }
  header(out, "blobfs_refreshes_total",
         "Checks of a live mount's source: unchanged, a commit followed, or a commit that could not be served.",
         "counter");
  const char* results[] = {"unchanged", "commit", "failed"};
  for (size_t k = 0; k < 3; ++k)
    out << "blobfs_refreshes_total{result=\"" << results[k] << "\"} " << refreshes_[k].load(std::memory_order_relaxed)
        << '\n';
  std::string last;
  for (const auto& source : sources_)
    for (const Sample& s : source()) {
      if (s.name != last) header(out, s.name, s.help, s.type.c_str());
      last = s.name;
      out << s.name;
      if (!s.labels.empty()) out << '{' << s.labels << '}';
      out << ' ' << number(s.value) << '\n';
    }
  return out.str();
}

std::string escape_label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

}  // namespace blobfs
