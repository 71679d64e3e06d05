// Large gathers shared with the helper thread (shared_work.h): the same bytes
// as the calling thread alone, under concurrent callers, after a fork, and
// with a damaged block reported rather than lost on the helper.
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include "shared_work.h"
#include "tensorblob/blob.h"
#include "tensorblob/error.h"
#include "tensorblob/fault_guard.h"
#include "test_util.h"

using namespace tensorblob;
using testutil::TempDir;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kDim = 1024;  // 4 KiB tensors: 512 of them make a shared 2 MiB gather

std::vector<int64_t> random_indices(size_t n, int64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> idx(n);
  for (auto& i : idx) i = static_cast<int64_t>(rng() % static_cast<uint64_t>(2 * count)) - count;  // negatives too
  return idx;
}

// A blob at t/b of `count` iota_f32 tensors of kDim floats, `block` tensors a block.
void write_blob(const TempDir& t, int64_t count, int64_t block) {
  Blob w = Blob::open(t / "b", "w", testutil::f32_options({kDim}, block));
  w.write(testutil::iota_f32(count, {kDim}));

}

std::vector<float> floats(const Tensor& t) {
  auto v = t.values<float>();
  return {v.begin(), v.end()};
}

// What gather must return, from the values iota_f32 writes.
std::vector<float> expected(const std::vector<int64_t>& idx, int64_t count) {
  std::vector<float> out;
  const std::vector<float> all = floats(testutil::iota_f32(count, {kDim}));
  for (int64_t i : idx) {
    int64_t j = i < 0 ? i + count : i;
    out.insert(out.end(), all.begin() + j * kDim, all.begin() + (j + 1) * kDim);
  }
  return out;
}

}  // namespace

TEST_CASE("run_shared runs every step exactly once, shared or not") {
  for (bool share : {false, true})
    for (size_t n : {0u, 1u, 2u, 7u, 1000u, 100000u}) {
      std::vector<std::atomic<int>> hits(n);
      run_shared(n, share, [&](size_t k, int) { hits[k].fetch_add(1, std::memory_order_relaxed); });
      for (size_t k = 0; k < n; ++k) REQUIRE(hits[k].load() == 1);
    }
}

TEST_CASE("run_shared hands the first failure back to the caller") {
  CHECK_THROWS_WITH(run_shared(100000, true,
                               [](size_t k, int) {
                                 if (k == 99000 || k == 10) throw Error(Errc::kIo, "step " + std::to_string(k));
                               }),
                    Catch::StartsWith("step "));
  // The helper is free again afterwards.
  std::atomic<size_t> sum{0};
  run_shared(1000, true, [&](size_t k, int) { sum += k; });
  CHECK(sum == 999 * 1000 / 2);
}

TEST_CASE("a large gather returns the same tensors with and without the helper") {
  TempDir t;
  const int64_t count = 3000;
  write_blob(t, count, 256);
  OpenOptions solo;
  solo.helper_thread = false;
  Blob shared = Blob::open(t / "b", "r"), alone = Blob::open(t / "b", "r", solo);
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    auto idx = random_indices(700, count, seed);
    idx.push_back(idx.front());  // a duplicate
    const auto want = expected(idx, count);
    CHECK(floats(shared.gather(idx)) == want);
    CHECK(floats(alone.gather(idx)) == want);
  }
}

TEST_CASE("a thread pinned to one CPU gathers alone and gets the same bytes") {
  TempDir t;
  const int64_t count = 1000;
  write_blob(t, count, 128);
  Blob r = Blob::open(t / "b", "r");
  auto idx = random_indices(600, count, 3);
  std::vector<float> got;
  bool was_pinned = false;
  std::thread pinned([&] {  // Catch2 assertions stay on the test's own thread
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    was_pinned = sched_setaffinity(0, sizeof one, &one) == 0;
    got = floats(r.gather(idx));
  });
  pinned.join();
  REQUIRE(was_pinned);
  CHECK(got == expected(idx, count));
}

TEST_CASE("concurrent large gathers share one helper and all get their own bytes") {
  TempDir t;
  const int64_t count = 2000;
  write_blob(t, count, 128);
  Blob r = Blob::open(t / "b", "r");
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th)
    threads.emplace_back([&, th] {
      for (int rep = 0; rep < 20; ++rep) {
        auto idx = random_indices(300, count, static_cast<uint64_t>(th * 100 + rep));
        if (floats(r.gather(idx)) != expected(idx, count)) ++wrong;
      }
    });
  for (auto& x : threads) x.join();
  CHECK(wrong == 0);
}

TEST_CASE("a forked child gathers with a helper of its own") {
  TempDir t;
  const int64_t count = 1000;
  write_blob(t, count, 128);
  Blob r = Blob::open(t / "b", "r");
  auto idx = random_indices(600, count, 9);
  REQUIRE(floats(r.gather(idx)) == expected(idx, count));  // the parent's helper is running
  pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls are promised after fork, but this process
    // has one thread here, as a DataLoader worker would.
    bool ok = true;
    for (int rep = 0; rep < 5; ++rep) ok = ok && floats(r.gather(idx)) == expected(idx, count);
    _exit(ok ? 0 : 1);
  }
  REQUIRE(pid > 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("a block truncated under a shared gather is an error on the caller") {
  install_fault_guard();
  TempDir t;
  const int64_t count = 1024;
  write_blob(t, count, 128);  // 512 KiB blocks
  Blob r = Blob::open(t / "b", "r");
  std::vector<int64_t> all(count);
  for (int64_t i = 0; i < count; ++i) all[i] = i;
  REQUIRE(floats(r.gather(all)) == expected(all, count));  // maps every block
  const std::string last = testutil::block_path(t / "b", 7);
  fs::resize_file(last, 4096);  // the last block: taken by the helper, which walks from the back
  CHECK_THROWS_WITH(r.gather(all), Catch::Contains(last + ": block file shrank while it was read"));
}

TEST_CASE("loops after any pause find the helper, awake or asleep, and run every step once") {
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
  // Pauses shorter and longer than the helper's 100 us wait for more work.
  std::atomic<int> helper_steps{0};
  for (int round = 0; round < 3; ++round)
    for (int pause_us : {0, 20, 150, 3000}) {
      ::usleep(static_cast<useconds_t>(pause_us));
      const size_t n = 2000;
      std::vector<std::atomic<int>> hits(n);
      run_shared(n, true, [&](size_t k, int dir) {
        hits[k].fetch_add(1, std::memory_order_relaxed);
        if (dir < 0) helper_steps.fetch_add(1, std::memory_order_relaxed);
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(1);
        while (std::chrono::steady_clock::now() < until) {
        }
      });
      for (size_t k = 0; k < n; ++k) REQUIRE(hits[k].load() == 1);
    }
  // Twelve loops of about a millisecond each: the helper must have joined one.
  if (CPU_COUNT(&set) > 1) CHECK(helper_steps.load() > 0);
}
