// Ragged dataset benchmark (make bench): build and verify throughput, each
// against a baseline measured in the same run on the same bytes:
//   verify (warm page cache)  vs XXH3-128 over the same bytes in memory
//   build                     vs write() of the same bytes to a plain file, then fsync
// Usage: ragged_bench [--items N] [--dir DIR]
#include <fcntl.h>
#include <unistd.h>
#include <xxh_x86dispatch.h>
#include <xxhash.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "tensorblob/error.h"
#include "tensorblob/ragged.h"
#include "tensorblob/verify.h"

using namespace tensorblob;
using bench::median;
using bench::now_s;

// One dataset of `items` float32 items of (1..32, trail) rows: build, then verify.
int run(int64_t items, int64_t trail, const std::string& dir) {
  const std::string root = dir + "/tblob-ragged-bench-" + std::to_string(getpid());
  std::filesystem::create_directories(root);
  const int64_t kTrail = trail, kRow = kTrail * 4;
  std::mt19937_64 rng(3);
  std::vector<int64_t> rows(static_cast<size_t>(items));
  uint64_t total = 0;
  for (auto& r : rows) total += static_cast<uint64_t>(r = 1 + static_cast<int64_t>(rng() % 32)) * kRow;
  std::vector<char> data(total);
  for (size_t i = 0; i < total; i += 8) {
    uint64_t x = rng();
    std::memcpy(&data[i], &x, std::min<size_t>(8, total - i));
  }
  std::printf("dataset: %lld float32 items of (1..32, %lld) rows = %.2f GB\n", static_cast<long long>(items),
              static_cast<long long>(kTrail), static_cast<double>(total) / 1e9);
  const double gb = static_cast<double>(total) / 1e9;
  int rc = 0;
  try {
    std::vector<double> t_build, t_write;
    for (int rep = 0; rep < 3; ++rep) {
      ::sync();
      double t0 = now_s();
      {
        std::string path = root + "/plain.bin";
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        uint64_t off = 0;
        for (int64_t r : rows) {
          size_t n = static_cast<size_t>(r * kRow);
          if (::write(fd, &data[off], n) != static_cast<ssize_t>(n)) throw Error(Errc::kIo, path + ": short write");
          off += n;
        }
        ::fsync(fd);
        ::close(fd);
        std::filesystem::remove(path);
      }
      t_write.push_back(now_s() - t0);
      ::sync();
      t0 = now_s();
      {
        RaggedBuilder b(root + "/ds");
        uint64_t off = 0;
        for (int64_t r : rows) {
          size_t n = static_cast<size_t>(r * kRow);
          b.add("<f4", {r, kTrail}, &data[off], n, "item");
          off += n;
        }
        b.commit();  // includes fsync of every file, as the baseline's fsync
      }
      t_build.push_back(now_s() - t0);
    }
    std::printf("%-36s %8.2f GB/s   write()+fsync %8.2f GB/s   ratio %.2fx\n", "build (hash + write + publish)",
                gb / median(t_build), gb / median(t_write), median(t_write) / median(t_build));

    verify_ragged(root + "/ds");  // warm the page cache
    std::vector<double> t_verify, t_raw;
    volatile uint64_t sink = 0;
    for (int rep = 0; rep < 5; ++rep) {
      double t0 = now_s();
      XXH128_hash_t h = XXH3_128bits_dispatch(data.data(), data.size());
      t_raw.push_back(now_s() - t0);
      sink = sink + h.low64;
      t0 = now_s();
      VerifyReport r = verify_ragged(root + "/ds");
      t_verify.push_back(now_s() - t0);
      if (!r.ok) throw Error(Errc::kCorrupt, "fresh dataset does not verify");
    }
    std::printf("%-36s %8.2f GB/s   raw XXH3-128  %8.2f GB/s   ratio %.2fx\n", "verify (warm, mapped, framed)",
                gb / median(t_verify), gb / median(t_raw), median(t_raw) / median(t_verify));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ragged_bench: %s\n", e.what());
    rc = 3;
  }
  std::filesystem::remove_all(root);
  return rc;
}

int main(int argc, char** argv) {
  const int64_t items = std::stoll(bench::flag(argc, argv, "--items", "100000"));
  const std::string dir = bench::flag(argc, argv, "--dir", bench::default_dir());
  std::printf("machine: %s\n", bench::machine_line(dir).c_str());
  int rc = run(items, 64, dir);  // about 4 KB an item: the framing cost shows
  std::printf("\n");
  return rc | run(items / 10, 1024, dir);  // about 66 KB an item
}
