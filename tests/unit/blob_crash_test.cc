// Crash safety: a writer killed at a random moment, over and over, must
// leave a blob that opens with exactly its last committed contents.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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
  for (int round = 0; round < 40; ++round) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) writer_loop(p);
    std::this_thread::sleep_for(std::chrono::microseconds(200 + rng() % 3000));
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
