// Stores kept on S3-compatible object storage: a blob or ragged dataset at
// s3://BUCKET/PREFIX whose objects have the names its files have locally.
// Reading goes through the same Storage seam as local files (storage.h), so
// every reader (Dataset, blobfs, tblob) works unchanged; such a store is
// read-only through it and changes only by publishing (push_store).
//
// Ownership: storages opened in one process share one part cache (memory
// and, with cache_dir, disk), made by the first open and kept while any is
// open. Thread safety: everything here is safe from many threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "tensorblob/storage.h"

namespace tensorblob {

struct S3Options {
  // Empty: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, endpoint_url in ~/.aws/config,
  // else AWS itself (virtual-host addressing; a custom endpoint is path style).
  std::string endpoint;
  // Empty: AWS_REGION, AWS_DEFAULT_REGION, ~/.aws/config, else us-east-1.
  std::string region;
  // Empty: AWS_PROFILE, else "default" (for ~/.aws/credentials and config).
  std::string profile;
  // Where fetched parts are kept on disk (LRU, each part checked when read
  // back); empty: memory only.
  std::string cache_dir;
  uint64_t cache_max_bytes = uint64_t{10} << 30;
  // Most bytes of parts held in memory, fetched or being fetched.
  uint64_t memory_max_bytes = uint64_t{512} << 20;
  // Objects are read in aligned parts of this size.
  uint64_t part_bytes = uint64_t{8} << 20;
  // A sequential reader's read-ahead starts at 1 MiB and doubles per read up
  // to this.
  uint64_t prefetch_max_bytes = uint64_t{128} << 20;
  // Most requests in flight for read-ahead (a reader's own misses add theirs).
  int max_requests = 16;
  // Attempts per request beyond the first, with backoff, on 5xx answers,
  // timeouts and dropped connections.
  int retries = 6;
  // A request that moves no byte for this long is dropped (and retried).
  int timeout_seconds = 30;
  // Told of what a user should know but that fails nothing (a damaged cache
  // part, fetched again); null: nobody is told.
  std::function<void(const std::string&)> warn;
};

// Whether `path` is an s3:// URL.
bool is_s3_url(std::string_view path);

// The directory s3://BUCKET/PREFIX as a Storage: stat and open answer from
// the objects PREFIX/NAME. Checks nothing remote (check_s3_access does).
// Throws Error(kInvalidArgument) for a malformed URL or configuration.
std::shared_ptr<Storage> open_s3_storage(const std::string& url, const S3Options& options = {});

// Asks the bucket of `url` whether these credentials may list it. Throws
// Error with one line that says what is wrong and which setting to look at
// (the endpoint cannot be reached, the bucket does not exist, the
// credentials are refused).
void check_s3_access(const std::string& url, const S3Options& options = {});

// What this process's part caches did so far, summed over every S3 setting
// in use (for metrics): parts answered from memory or the disk cache, parts
// fetched and their bytes, damaged disk-cache files refetched, and the bytes
// held in memory and on disk now.
struct S3Counters {
  uint64_t memory_hits = 0, disk_hits = 0, fetches = 0, fetched_bytes = 0, disk_damaged = 0;
  uint64_t held_bytes = 0, disk_bytes = 0;
};
S3Counters s3_counters();

// One transfer's progress: bytes done of total, files done of total.
using TransferProgress = std::function<void(uint64_t done, uint64_t total, size_t files_done, size_t files)>;

struct TransferOptions {
  int parallel = 8;             // files (or parts of one large file) moved at once
  bool delete_unlisted = false;  // push: remove remote blocks the new .stat no longer names
  TransferProgress progress;    // called from one thread at a time
};

struct TransferResult {
  size_t files_sent = 0, files_skipped = 0, files_deleted = 0;
  uint64_t bytes_sent = 0;
};

// Publishes the local store `dir` (a blob, or a ragged dataset named by its
// base) to `url`: every data file first, in parallel, then .conf, then
// .stat last, so a reader never sees a .stat naming an object not there yet.
// A file already present remotely with the same content (its ETag) is
// skipped, so an interrupted push resumes. Large files go up in parts.
TransferResult push_store(const std::string& dir, const std::string& url, const S3Options& s3,
                          const TransferOptions& options = {});

// The reverse: copies the store at `url` into the local directory `dir`
// (created if missing), data files first and .stat last, skipping files
// already there with the same content.
TransferResult pull_store(const std::string& url, const std::string& dir, const S3Options& s3,
                          const TransferOptions& options = {});

}  // namespace tensorblob
