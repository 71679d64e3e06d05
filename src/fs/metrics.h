// What a mount counts for operators, in Prometheus' text exposition format:
// requests by kind with a latency histogram, bytes read, errors by errno,
// refreshes of a live mount, stores open and their items, and the S3 part
// caches' hits and misses. Counting is a few relaxed atomic increments per
// request and nothing at all until enable() (metrics are off by default).
//
// One Metrics per process (global()): a daemon serves one mount. Safe for
// concurrent use; render() may run while requests are counted and sees each
// counter at some moment during the call.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace blobfs {

enum class Op : uint8_t {
  kLookup, kGetattr, kOpen, kRead, kOpendir, kReaddir, kReaddirplus, kStatfs, kIoctl,
  kSetattr, kCreate, kWrite, kFlush, kFsync, kRelease, kForget, kRefused, kCount
};
const char* op_name(Op op);

// A counter of another part of the daemon, read when metrics are rendered.
struct Sample {
  std::string name;    // full metric name, e.g. blobfs_s3_part_fetches_total
  std::string help;
  std::string type;    // "counter" or "gauge"
  std::string labels;  // e.g. tier="memory", or empty
  double value = 0;
};

class Metrics {
 public:
  static Metrics& global();
  void enable() { enabled_.store(true, std::memory_order_relaxed); }
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }

  void request(Op op, double seconds);
  void error(int err);  // a reply with errno err (> 0)
  void bytes_read(uint64_t n);
  enum class RefreshResult { kUnchanged, kCommit, kFailed };
  void refresh(RefreshResult r);

  // Samples gathered from elsewhere at render time (stores open, caches).
  void add_source(std::function<std::vector<Sample>()> source);
  // The whole exposition: every metric with # HELP and # TYPE lines.
  std::string render() const;

  // Upper bounds of the latency buckets, in seconds (+Inf is implied).
  static constexpr std::array<double, 12> kBuckets = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                                      0.001,   0.0025,   0.01,    0.05,   0.25,    1.0};

 private:
  static constexpr size_t kOps = static_cast<size_t>(Op::kCount);
  static constexpr int kMaxErrno = 134;
  struct OpStats {
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> nanos{0};
    std::array<std::atomic<uint64_t>, kBuckets.size()> buckets{};
  };
  std::atomic<bool> enabled_{false};
  std::array<OpStats, kOps> ops_{};
  std::array<std::atomic<uint64_t>, kMaxErrno + 1> errors_{};
  std::atomic<uint64_t> bytes_read_{0};
  std::array<std::atomic<uint64_t>, 3> refreshes_{};
  std::vector<std::function<std::vector<Sample>()>> sources_;  // set before serving starts
};

// Prometheus' text format escapes \, " and newline in label values.
std::string escape_label_value(const std::string& v);

}  // namespace blobfs
