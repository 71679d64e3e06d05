// Writes across blocks shared with the helper thread (shared_work.h): the same
// bytes as the calling thread alone for every way a write can fall on blocks,
// a failure on either thread reported with the block's name and the length
// left as it was, and new blocks with their disk space reserved.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tensorblob/blob.h"
#include "tensorblob/error.h"
#include "test_util.h"

using namespace tensorblob;
using testutil::TempDir;

namespace {

constexpr int64_t kDim = 1024;  // 4 KiB tensors

OpenOptions options(int64_t block, bool helper) {
  OpenOptions o = testutil::f32_options({kDim}, block);
  o.helper_thread = helper;
  return o;
}

std::vector<float> floats(const Tensor& t) {
  auto v = t.values<float>();
  return {v.begin(), v.end()};
}

std::vector<float> contents(const std::string& path) {
  Blob r = Blob::open(path, "r");
  return floats(r.read());
}

// Restores RLIMIT_FSIZE and SIGXFSZ on scope exit, so a failed check cannot
// leave the rest of the test run unable to write files.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);  // the write fails with EFBIG instead
    rlimit l = saved_;
    l.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &l) == 0);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    ::signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit saved_{};
  sighandler_t old_handler_;
};

}  // namespace

TEST_CASE("writes across blocks store the same bytes with and without the helper") {
  // 512 KiB blocks (one piece each) and 4 MiB blocks (two 2 MiB pieces each).
  for (int64_t block : {int64_t{128}, int64_t{1024}}) {
    TempDir t;
    for (bool helper : {true, false}) {
      const std::string p = t / (helper ? "shared" : "alone");
      {
        Blob w = Blob::open(p, "w", options(block, helper));
        w.write(testutil::iota_f32(10, {kDim}));             // a small write first: later ones start mid-block
        w.write(testutil::iota_f32(3000, {kDim}, 1e6f));     // across blocks, unaligned, adding blocks
        w.write(testutil::iota_f32(block, {kDim}, 2e6f));    // exactly one block's worth, unaligned
      }
      {
        Blob w = Blob::open(p, "r+");
        w.seek(block - 3);
        w.write(testutil::iota_f32(2 * block + 5, {kDim}, 3e6f));  // in place, across three blocks
        w.seek(0, Whence::kEnd);
        w.seek(-7, Whence::kCur);
        w.write(testutil::iota_f32(block + 20, {kDim}, 4e6f));  // overwrites the end, then grows
      }
      {
        Blob a = Blob::open(p, "a");
        a.write(testutil::iota_f32(2 * block, {kDim}, 5e6f));  // append mode, block-aligned or not
      }
    }
    const std::vector<float> shared = contents(t / "shared"), alone = contents(t / "alone");
    REQUIRE(shared.size() == alone.size());
    // The index of the first difference, not two vectors of millions of floats.
    auto diff = std::mismatch(shared.begin(), shared.end(), alone.begin());
    CHECK(diff.first - shared.begin() == static_cast<std::ptrdiff_t>(shared.size()));
    // And both are what the writes said, checked at the seams.
    Blob r = Blob::open(t / "shared", "r");
    CHECK(r.size() == 10 + 3000 + block + block + 20 - 7 + 2 * block);
    CHECK(testutil::first(r.get(9)) == 9 * 1000.0f);
    CHECK(testutil::first(r.get(10)) == 1e6f);
    CHECK(testutil::first(r.get(block - 4)) == (block - 4 < 10 ? (block - 4) * 1000.0f : 1e6f + (block - 14) * 1000.0f));
    CHECK(testutil::first(r.get(block - 3)) == 3e6f);
    CHECK(testutil::first(r.get(3 * block + 1)) == 3e6f + (2 * block + 4) * 1000.0f);
    CHECK(testutil::first(r.get(-1)) == 5e6f + (2 * block - 1) * 1000.0f);
  }
}

TEST_CASE("a shared write that fails names the block and leaves the length as it was") {
  TempDir t;
  const std::string p = t / "b";
  const int64_t block = 1024;  // 4 MiB blocks, written in 2 MiB pieces
  {
    Blob w = Blob::open(p, "w", options(block, true));
    w.write(testutil::iota_f32(2500, {kDim}));  // blocks 0, 1, 2
  }
  Blob w = Blob::open(p, "r+");
  w.seek(1500);
  {
    // Writes past 3 MiB into any file now fail: in block 1 (the caller's
    // first piece) and in block 2 (the helper's, which walks from the back).
    FileSizeLimit limit(3 << 20);
    CHECK_THROWS_WITH(w.write(testutil::iota_f32(1500, {kDim}, 1e6f)),
                      Catch::Contains(p + "/") && Catch::Contains("File too large"));
  }
  CHECK(w.size() == 2500);
  CHECK(w.tell() == 1500);
  // The blob is still usable: the same write now goes through.
  CHECK(w.write(testutil::iota_f32(1500, {kDim}, 1e6f)) == 1500);
  CHECK(w.size() == 3000);
  w.close();
  Blob r = Blob::open(p, "r");
  CHECK(testutil::first(r.get(1499)) == 1499 * 1000.0f);
  CHECK(testutil::first(r.get(1500)) == 1e6f);
  CHECK(testutil::first(r.get(2999)) == 1e6f + 1499 * 1000.0f);
}

TEST_CASE("a new block has its disk space reserved when it is added") {
  TempDir t;
  if (!testutil::can_fallocate(t.path())) {
    WARN("fallocate is not supported under " << t.path() << ": nothing to check");
    return;
  }
  const std::string p = t / "b";
  Blob w = Blob::open(p, "w", options(1024, true));
  w.write(testutil::iota_f32(1, {kDim}));
  w.flush();
  struct stat st;
  REQUIRE(::stat(testutil::block_path(p, 0).c_str(), &st) == 0);
  CHECK(st.st_size == 1024 * kDim * 4);
  CHECK(st.st_blocks * 512 >= st.st_size);
}
