// Crash safety: a writer killed at a random moment, over and over, must
// leave a blob that opens with exactly its last committed contents.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <random>
#include <thread>

#include "tensorblob/blob.h"
#include "tensorblob/error.h"
#include "test_util.h"

using namespace tensorblob;
using testutil::TempDir;

namespace {

constexpr int64_t kBatch = 3;  // tensors per committed batch

// kBatch int64 tensors of shape (5,) for positions first..: element j of
// tensor i holds i * 10 + j, so any tensor can be checked on its own.
Tensor batch_from(int64_t first) {
  Tensor t(DType::kInt64, {kBatch, 5});
  auto v = t.values<int64_t>();
  for (int64_t k = 0; k < kBatch; ++k)
    for (int64_t j = 0; j < 5; ++j) v[k * 5 + j] = (first + k) * 10 + j;
  return t;
}

// Child: append batches forever, committing after each, truncating now and then.
[[noreturn]] void writer_loop(const std::string& p) {
  try {
    Blob b = Blob::open(p, "a");
    for (int64_t round = 0;; ++round) {
      int64_t n = b.size();
      b.write(batch_from(n));
      if (round % 7 == 6) b.truncate(n);  // undo the batch: commits a shrink
      b.flush();
    }
  } catch (...) {
    _exit(3);
  }
}

}  // namespace

TEST_CASE("a writer killed mid-commit leaves the last committed state readable") {
  TempDir t;
  std::string p = t / "b";
  OpenOptions o;
  o.dtype = "int64";
  o.shape = Shape{5};
  o.block_size = 4;
  { Blob::open(p, "w", o); }
  std::mt19937 rng(1234);
  int64_t previous = 0;
  // 40 kills at random moments; on a loaded machine (a sanitizer build
  // beside other work) the writer may not reach its first commit in those,
  // so more rounds follow, each giving it 20 ms more, until one has landed.
  for (int round = 0; round < 40 || (previous == 0 && round < 100); ++round) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) writer_loop(p);
    const int extra = round < 40 ? 0 : (round - 39) * 20000;
    std::this_thread::sleep_for(std::chrono::microseconds(200 + rng() % 3000 + extra));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    REQUIRE(WIFSIGNALED(status));

    Blob r = Blob::open(p, "r");
    int64_t n = r.size();
    INFO("round " << round << ": " << n << " tensors");
    REQUIRE(n % kBatch == 0);
    REQUIRE(n >= previous);
    Tensor all = r.read();
    auto v = all.values<int64_t>();
    int64_t wrong = 0;
    for (int64_t i = 0; i < n * 5; ++i) wrong += v[i] != i / 5 * 10 + i % 5;
    CHECK(wrong == 0);
    previous = n;
  }
  CHECK(previous > 0);
}

namespace {

constexpr int64_t kTensors = 40, kDims = 5;

// Commit k of the overwrite test: tensor 0 holds k, and six tensors chosen
// from k are overwritten with values made of k. Any commit's bytes follow
// from k alone, so a reader can tell exactly what it must see.
void apply_commit(std::vector<int64_t>& state, int64_t k) {
  for (int64_t j = 0; j < kDims; ++j) state[j] = k;
  for (int64_t s = 0; s < 6; ++s) {
    const int64_t i = 1 + (k * 7 + s * 13) % (kTensors - 1);
    for (int64_t j = 0; j < kDims; ++j) state[i * kDims + j] = (k * 1000 + i) * 10 + j;
  }
}

std::vector<int64_t> initial_state() {
  std::vector<int64_t> v(kTensors * kDims);
  for (int64_t i = 0; i < kTensors * kDims; ++i) v[i] = i / kDims * 10 + i % kDims;
  for (int64_t j = 0; j < kDims; ++j) v[j] = 0;
  return v;
}

[[noreturn]] void overwrite_loop(const std::string& p) {
  try {
    Blob b = Blob::open(p, "r+");
    std::vector<int64_t> state(kTensors * kDims);
    b.read_items(0, kTensors, state.data());
    for (int64_t k = state[0] + 1;; ++k) {
      std::vector<int64_t> next = state;
      apply_commit(next, k);
      // Tensor by tensor, in an order that crosses blocks back and forth.
      for (int64_t i = kTensors - 1; i >= 0; --i) {
        if (std::equal(next.begin() + i * kDims, next.begin() + (i + 1) * kDims, state.begin() + i * kDims)) continue;
        b.seek(i);
        b.write_raw(next.data() + i * kDims, 1);
      }
      b.flush();
      state = std::move(next);
    }
  } catch (...) {
    _exit(3);
  }
}

}  // namespace

TEST_CASE("a writer killed during overwrites leaves the previous commit byte-exact") {
  TempDir t;
  std::string p = t / "b";
  OpenOptions o;
  o.dtype = "int64";
  o.shape = Shape{kDims};
  o.block_size = 4;
  {
    Blob b = Blob::open(p, "w", o);
    std::vector<int64_t> v = initial_state();
    b.write_raw(v.data(), kTensors);
  }
  std::mt19937 rng(99);
  int64_t previous = 0;
  for (int round = 0; round < 40; ++round) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) overwrite_loop(p);
    // A commit here syncs up to 20 files: milliseconds on a busy disk.
    std::this_thread::sleep_for(std::chrono::microseconds(1000 + rng() % 30000));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    REQUIRE(WIFSIGNALED(status));

    Blob r = Blob::open(p, "r");
    REQUIRE(r.size() == kTensors);
    std::vector<int64_t> got(kTensors * kDims);
    r.read_items(0, kTensors, got.data());
    const int64_t k = got[0];
    INFO("round " << round << ": commit " << k);
    REQUIRE(k >= previous);
    std::vector<int64_t> want = initial_state();
    for (int64_t c = 1; c <= k; ++c) apply_commit(want, c);
    CHECK(got == want);
    previous = k;
  }
  CHECK(previous > 0);
  // Nothing but the blocks the last commit lists is left once a writer has
  // opened the blob again (the killed writers' copies are swept).
  { Blob::open(p, "r+").close(); }
  CHECK(testutil::block_files(p).size() == static_cast<size_t>(kTensors / 4));
}
