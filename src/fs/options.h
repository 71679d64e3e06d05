// blobfs options: one struct with the defaults written once. The YAML config
// file and `-o key=value` fill it through the same setter, so both accept the
// same keys and values and report errors the same way. conf/blobfs.yaml lists
// every key with its default; a unit test keeps the two in step.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace blobfs {

enum class LogLevel { kError, kWarning, kInfo, kDebug };

struct Options {
  std::string source;      // blob directory; the command line's SOURCE wins
  std::string mountpoint;  // the command line's MOUNTPOINT wins
  int naming_width = 6;    // digits of NNNNNN names
  bool npy_views = true;   // NNNNNN.npy, A-B.npy, all.npy
  bool range_views = true; // A-B.bin, A-B.npy found by name
  bool live = true;         // follow commits to the source; false: serve the mount-time commit
  double refresh_interval = 1;      // seconds between polls of the source for a commit
  bool inotify = true;      // also wake on inotify events where the source's filesystem has them
  bool writable = false;    // the daemon becomes the blob's writer: tensors written through the mount
  double entry_timeout = 86400;     // seconds the kernel may trust a name
  double attr_timeout = 86400;      // seconds the kernel may trust sizes and modes
  double negative_timeout = 86400;  // seconds the kernel may remember a missing name (live: false only)
  bool keep_cache = true;           // keep file pages cached across opens
  bool verify_on_read = false;      // check items against per-item hashes; EIO if they differ
  uint64_t max_cached_blocks = 0;   // block mappings held; 0 = vm.max_map_count / 16
  uint64_t max_open_stores = 64;    // a data directory's mount: stores kept open at once
  int threads = 8;                  // most FUSE worker threads
  // How requests reach the daemon: "auto" (io_uring where the kernel has it
  // on, else /dev/fuse), "uring" (io_uring or refuse to start), "dev".
  std::string transport = "auto";
  bool clone_fd = false;            // one /dev/fuse descriptor per thread
  int64_t uid = -1;                 // owner shown; -1 = the daemon's
  int64_t gid = -1;
  mode_t file_mode = 0444;
  mode_t dir_mode = 0555;
  bool allow_other = false;         // let other users in (needs user_allow_other for non-root)
  bool default_permissions = true;  // kernel checks modes (matters with allow_other)
  LogLevel log_level = LogLevel::kInfo;
  // Sources at s3:// URLs (tensorblob/s3.h says what each does).
  std::string s3_endpoint;          // empty: AWS_ENDPOINT_URL, else AWS
  std::string s3_region;            // empty: AWS_REGION, else us-east-1
  std::string s3_profile;           // empty: AWS_PROFILE, else default
  std::string cache_dir;            // empty: parts kept in memory only
  uint64_t cache_max_bytes = uint64_t{10} << 30;
  uint64_t s3_memory_bytes = uint64_t{512} << 20;
  uint64_t s3_part_size = uint64_t{8} << 20;
  uint64_t s3_prefetch_bytes = uint64_t{128} << 20;
  int s3_requests = 16;
  int s3_retries = 6;
  double s3_timeout = 30;
  // Block files read with pread (nothing mapped: the daemon's VmRSS stays
  // small at any store size; as fast, measured) or mapped.
  bool map_blocks = false;
  // Prometheus metrics at http://HOST:PORT/metrics; empty: off.
  std::string metrics_listen;
};

// Where the metrics endpoint listens.
struct ListenAddress {
  std::string host;  // an IPv4 or IPv6 literal, or a name getaddrinfo resolves
  uint16_t port = 0;
};
// "HOST:PORT" or "[IPV6]:PORT", port 1-65535. Throws std::invalid_argument
// saying what is wrong with the text.
ListenAddress parse_listen_address(std::string_view text);

// "10G", "512MiB", "4096", "1.5G": bytes, with K, M, G, T (powers of 1024,
// an optional "iB" or "B" after them); nullopt when malformed or too large.
std::optional<uint64_t> parse_byte_size(std::string_view text);

// Thrown for any bad option; the message names the key (and file:line).
class OptionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Sets one option from its text form. `where` prefixes messages ("-o" or
// "conf.yaml:12"). Throws OptionError for an unknown key, a wrong type or an
// out-of-range value.
void set_option(Options& opts, std::string_view key, std::string_view value, std::string_view where);

// Applies a YAML config document (a flat map of key: value) on top of opts.
void apply_config_yaml(Options& opts, const std::string& text, const std::string& path);

// Applies a comma-separated -o list. Plain mount options that mean nothing
// to a read-only mount (ro, rw, dev, nosuid, noatime, nofail, _netdev,
// nonempty, ...) are accepted and ignored so fstab lines work; a boolean key
// alone ("allow_other") means key=true.
void apply_mount_options(Options& opts, std::string_view list);

// The one spelling rule for every boolean, in the config file and in -o:
// true/yes/on/1 and false/no/off/0, in any case. nullopt for anything else.
std::optional<bool> parse_bool(std::string_view text);

// Whether `key` takes a boolean (alone in -o it then means key=true).
bool is_boolean_option(std::string_view key);

// Every key, in conf/blobfs.yaml's order.
const std::vector<std::string>& option_keys();

std::string_view log_level_name(LogLevel level);

}  // namespace blobfs
