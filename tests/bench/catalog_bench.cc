// Catalog benchmark (part of make bench-mount): a data directory mounted
// whole (blobfs ROOT) against one store mounted alone, measured side by
// side in one run, warm page cache.
//   mount time and daemon memory for roots of 1, 100 and 10,000 stores,
//   against a single-store mount of the first store; then after listing
//   the root (ls -l) and after reading one file in each of 100 stores
//   read rate of the tensor files of one store inside a catalog mount
//   against the same store mounted alone: first pass and warm, files/s,
//   and random open-read-close p50
// Usage: catalog_bench [--count N] [--dim D] [--dir DIR] [--blobfs PATH] [--stores LIST]
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "mount_util.h"
#include "tensorblob/blob.h"
#include "tensorblob/error.h"

using namespace tensorblob;
using bench::median;
using bench::Mount;
using bench::name;
using bench::now_s;
using bench::read_file;
using bench::time_command;
namespace fs = std::filesystem;

namespace {

void row(const char* what, double ours, double base, const char* unit, bool higher_is_better) {
  std::printf("%-44s catalog %10.2f %-8s single %10.2f %-8s ratio %.2fx\n", what, ours, unit, base, unit,
              higher_is_better ? ours / base : base / ours);
}

void make_blob(const std::string& path, int64_t count, int64_t dim, uint64_t seed) {
  OpenOptions o;
  o.dtype = "float32";
  o.shape = Shape{dim};
  std::vector<float> data(static_cast<size_t>(count * dim));
  std::mt19937_64 rng(seed);
  for (auto& v : data) v = static_cast<float>(rng() % 1000);
  Blob b = Blob::open(path, "w", o);
  b.write_raw(data.data(), count);
}

long rss_kib(const std::string& status) {  // "VmRSS N KiB (...)"
  return std::atol(status.c_str() + 6);
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t count = std::stoll(bench::flag(argc, argv, "--count", "5000"));
  const int64_t dim = std::stoll(bench::flag(argc, argv, "--dim", "768"));
  const std::string dir = bench::flag(argc, argv, "--dir", bench::default_dir());
  const std::string blobfs = fs::absolute(bench::flag(argc, argv, "--blobfs", "build/blobfs")).string();
  std::vector<int> sizes;
  {
    std::stringstream list(bench::flag(argc, argv, "--stores", "1,100,10000"));
    for (std::string s; std::getline(list, s, ',');) sizes.push_back(std::stoi(s));
  }
  const std::string root = dir + "/tblob-catalog-bench-" + std::to_string(getpid());
  const std::string mnt = root + "/mnt";
  std::printf("machine: %s\n", bench::machine_line(dir).c_str());
  std::printf("the store read: %lld x float32 (%lld,); every other store: 3 tensors\n\n",
              static_cast<long long>(count), static_cast<long long>(dim));
  int rc = 0;
  try {
    // Roots of n stores: the store that is read, then small ones.
    const std::string small = root + "/small";
    make_blob(small, 3, 4, 1);
    for (int n : sizes) {
      const std::string r = root + "/root" + std::to_string(n);
      fs::create_directories(r);
      make_blob(r + "/big", count, dim, 7);
      for (int k = 1; k < n; ++k) {
        char b[32];
        std::snprintf(b, sizeof b, "/s%05d", k);
        fs::copy(small, r + b, fs::copy_options::recursive);
      }
    }
    ::sync();
    std::vector<char> buf(1 << 20);
    const std::string big1 = root + "/root" + std::to_string(sizes.front()) + "/big";

    std::printf("-- mount time and daemon memory (median of 3 mounts, alternating with a single-store mount)\n");
    for (int n : sizes) {
      const std::string r = root + "/root" + std::to_string(n);
      std::vector<double> t_cat, t_one;
      std::vector<double> rss_mount, rss_ls, rss_read;
      for (int rep = 0; rep < 3; ++rep) {
        {
          Mount one(blobfs, big1, mnt, "");
          t_one.push_back(one.mount_seconds);
        }
        Mount cat(blobfs, r, mnt, "max_open_stores=64");
        t_cat.push_back(cat.mount_seconds);
        rss_mount.push_back(static_cast<double>(rss_kib(cat.rss())));
        time_command("ls -l " + mnt + " > /dev/null");
        rss_ls.push_back(static_cast<double>(rss_kib(cat.rss())));
        for (int k = 1; k < std::min(n, 101); ++k) {
          char b[48];
          std::snprintf(b, sizeof b, "/s%05d/000001.bin", k);
          read_file(mnt + b, buf);
        }
        rss_read.push_back(static_cast<double>(rss_kib(cat.rss())));
      }
      char what[64];
      std::snprintf(what, sizeof what, "mount time, %d stores (ms)", n);
      row(what, median(t_cat) * 1e3, median(t_one) * 1e3, "ms", false);
      std::printf("  daemon VmRSS: %.0f KiB mounted, %.0f KiB after ls -l of the root, %.0f KiB after one file in "
                  "each of %d stores\n",
                  median(rss_mount), median(rss_ls), median(rss_read), std::min(n, 101) - 1);
    }

    std::printf("\n-- reading one store's tensor files: inside a catalog of %d stores against the store alone\n",
                sizes.back());
    const std::string rbig = root + "/root" + std::to_string(sizes.back());
    auto read_all = [&](const std::string& d) { return bench::read_every_file(d, count, dim * 4, buf); };
    std::vector<double> first_c, first_s, warm_c, warm_s, p50_c, p50_s;
    std::mt19937_64 rng(3);
    for (int rep = 0; rep < 3; ++rep) {
      for (bool in_catalog : {rep % 2 == 0, rep % 2 != 0}) {
        const std::string store = in_catalog ? rbig : rbig + "/big";
        Mount m(blobfs, store, mnt, "");
        const std::string files = in_catalog ? mnt + "/big" : mnt;
        (in_catalog ? first_c : first_s).push_back(read_all(files));
        (in_catalog ? warm_c : warm_s).push_back(read_all(files));
        std::vector<double> lat;
        for (int k = 0; k < 5000; ++k) {
          const int64_t i = static_cast<int64_t>(rng() % static_cast<uint64_t>(count));
          double t0 = now_s();
          read_file(name(files, i), buf);
          lat.push_back(now_s() - t0);
        }
        (in_catalog ? p50_c : p50_s).push_back(median(lat));
      }
    }
    row("first read of every file (files/s)", median(first_c), median(first_s), "files/s", true);
    row("warm read of every file (files/s)", median(warm_c), median(warm_s), "files/s", true);
    row("random open-read-close p50 (us)", median(p50_c) * 1e6, median(p50_s) * 1e6, "us", false);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "catalog_bench: %s\n", e.what());
    rc = 1;
  }
  std::error_code ec;
  fs::remove_all(root, ec);
  return rc;
}
