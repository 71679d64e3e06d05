// Mount benchmark (make bench-mount): blobfs against the same tensors as plain
// files on the native filesystem, measured side by side in one run, warm page
// cache. Reports each measure and its ratio to native:
//   files/s reading every tensor file once        (20,000 × 3 KB by default)
//   open-read-close of random tensor files, p50/p99
//   dd-style 1 MiB reads of all.bin vs one plain file of the same bytes
//   mount time and daemon RSS (also for a 10-million-tensor blob)
//   a live mount: warm reads against a frozen one, commit-to-visible latency
//   with inotify and with the poll, and one refresh against cached files
// Usage: mount_bench [--count N] [--dim D] [--dir DIR] [--blobfs PATH]
//                    [--opts blobfs -o options] [--peer yes|no] [--big yes|no]
#include <fcntl.h>
#include <sys/types.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "mount_util.h"
#include "tensorblob/blob.h"
#include "tensorblob/error.h"

using namespace tensorblob;
using bench::median;
using bench::now_s;
using bench::percentile;
using bench::Mount;
using bench::name;
using bench::read_file;
using bench::time_command;
namespace fs = std::filesystem;

namespace {

// The FUSE tree being measured, as its rows name it.
const char* g_peer = "blobfs";

void row(const char* what, double ours, double native, const char* unit, bool higher_is_better) {
  std::printf("%-40s %-8s %11.2f %-8s native %11.2f %-8s ratio %.2fx\n", what, g_peer, ours, unit, native, unit,
              higher_is_better ? ours / native : native / ours);
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t count = std::stoll(bench::flag(argc, argv, "--count", "20000"));
  const int64_t dim = std::stoll(bench::flag(argc, argv, "--dim", "768"));
  const std::string dir = bench::flag(argc, argv, "--dir", bench::default_dir());
  const std::string blobfs = fs::absolute(bench::flag(argc, argv, "--blobfs", "build/blobfs")).string();
  const std::string opts = bench::flag(argc, argv, "--opts", "");
  const std::string root = dir + "/tblob-mount-bench-" + std::to_string(getpid());
  const std::string native = root + "/native", blob = root + "/blob", mnt = root + "/mnt";
  const int64_t item = dim * 4;
  std::printf("machine: %s\n", bench::machine_line(dir).c_str());
  std::printf("tensors: %lld x float32 (%lld,) = %lld bytes each\n", static_cast<long long>(count),
              static_cast<long long>(dim), static_cast<long long>(item));
  std::printf("blobfs -o %s\n\n", opts.empty() ? "(defaults)" : opts.c_str());
  int rc = 0;
  try {
    // The same bytes both ways: one plain file per tensor plus all.bin, and a blob.
    fs::create_directories(native);
    std::vector<char> data(static_cast<size_t>(count * item));
    std::mt19937_64 rng(7);
    for (auto& c : data) c = static_cast<char>(rng());
    for (int64_t i = 0; i < count; ++i) std::ofstream(name(native, i), std::ios::binary).write(&data[i * item], item);
    std::ofstream(native + "/all.bin", std::ios::binary).write(data.data(), static_cast<std::streamsize>(data.size()));
    {
      OpenOptions o;
      o.dtype = "float32";
      o.shape = Shape{dim};
      Blob b = Blob::open(blob, "w", o);
      b.write_raw(data.data(), count);
    }
    ::sync();
    std::vector<char> buf(1 << 20);

    // Every measure, for one FUSE tree against the native one, alternating.
    auto compare = [&](const char* peer, const char* label, const std::string& tree) {
      g_peer = label;
      std::printf("-- %s against plain files on the native filesystem\n", peer);
      auto read_all = [&](const std::string& d) { return bench::read_every_file(d, count, item, buf); };
      double first = read_all(tree);  // the first pass: the daemon serves, backing data already cached
      read_all(native);
      std::vector<double> fps_b, fps_n;
      for (int r = 0; r < 3; ++r) {
        fps_n.push_back(read_all(native));
        fps_b.push_back(read_all(tree));
      }
      row("read every tensor file once (files/s)", median(fps_b), median(fps_n), "files/s", true);
      row("  first pass through the mount", first, median(fps_n), "files/s", true);

      const int samples = 20000;
      std::vector<double> lat_b, lat_n;
      for (int k = 0; k < samples; ++k) {
        int64_t i = static_cast<int64_t>(rng() % static_cast<uint64_t>(count));
        for (int side = 0; side < 2; ++side) {
          const bool on_tree = (side == 0) == static_cast<bool>(k % 2);
          double t0 = now_s();
          read_file(name(on_tree ? tree : native, i), buf);
          (on_tree ? lat_b : lat_n).push_back(now_s() - t0);
        }
      }
      row("random open-read-close p50 (us)", median(lat_b) * 1e6, median(lat_n) * 1e6, "us", false);
      row("random open-read-close p99 (us)", percentile(lat_b, 0.99) * 1e6, percentile(lat_n, 0.99) * 1e6, "us", false);

      auto dd = [&](const std::string& path) {  // 1 MiB reads, like dd bs=1M
        double t0 = now_s();
        size_t n = read_file(path, buf);
        if (n != data.size()) throw Error(Errc::kIo, path + ": read " + std::to_string(n) + " bytes");
        return static_cast<double>(n) / 1e9 / (now_s() - t0);
      };
      dd(tree + "/all.bin");
      dd(native + "/all.bin");
      std::vector<double> gb_b, gb_n;
      for (int r = 0; r < 5; ++r) {
        gb_n.push_back(dd(native + "/all.bin"));
        gb_b.push_back(dd(tree + "/all.bin"));
      }
      row("all.bin, 1 MiB reads (GB/s)", median(gb_b), median(gb_n), "GB/s", true);

      std::vector<double> find_b, find_n;  // readdir only: find uses d_type
      for (int r = 0; r < 5; ++r) {
        find_n.push_back(time_command("find " + native + " -type f > /dev/null"));
        find_b.push_back(time_command("find " + tree + " -type f > /dev/null"));
      }
      row("find -type f (s)", median(find_b), median(find_n), "s", false);

      // np.fromfile of random tensor files, as a Python pipeline reads them.
      const std::string py =
          "/usr/bin/python3 -c \"import numpy as np, random, sys, time\n"
          "m, n, count = sys.argv[1], sys.argv[2], int(sys.argv[3])\n"
          "random.seed(5); idx = [random.randrange(count) for _ in range(4000)]\n"
          "res = {}\n"
          "for rep in range(3):\n"
          "  for name, d in (('n', n), ('b', m)):\n"
          "    t0 = time.perf_counter()\n"
          "    for i in idx: np.fromfile(f'{d}/{i:06d}.bin', dtype=np.float32)\n"
          "    res.setdefault(name, []).append((time.perf_counter() - t0) / len(idx))\n"
          "print(sorted(res['b'])[1] * 1e6, sorted(res['n'])[1] * 1e6)\n\" " +
          tree + " " + native + " " + std::to_string(count);
      FILE* p = ::popen(py.c_str(), "r");
      double fb = 0, fn = 0;
      if (!p || std::fscanf(p, "%lf %lf", &fb, &fn) != 2) throw Error(Errc::kIo, "np.fromfile measurement failed");
      ::pclose(p);
      row("np.fromfile of random files, mean (us)", fb, fn, "us", false);
    };

    {
      Mount m(blobfs, blob, mnt, opts);
      compare("blobfs", "blobfs", mnt);
      std::printf("%-40s %.1f ms (until the mount is visible)\n", "mount time", m.mount_seconds * 1e3);
      std::printf("%-40s %s\n", "daemon memory after all of the above", m.rss().c_str());
    }
    if (bench::flag(argc, argv, "--access", "yes") == "yes") {
      // What reaches the daemon, read from mapped block files or with pread:
      // each pass on a fresh mount (nothing in the mount's page cache, the
      // block files in the host's), alternating; then the daemon's memory.
      g_peer = "pread";
      std::printf("-- map_blocks=false (pread) against map_blocks=true (mapped), fresh mounts, alternating\n");
      const std::string with = opts + (opts.empty() ? "" : ",");
      std::vector<double> files_p, files_m, dd_p, dd_m;
      std::string rss_p, rss_m;
      for (int r = 0; r < 3; ++r)
        for (bool pread : {r % 2 == 0, r % 2 != 0}) {
          Mount m(blobfs, blob, mnt, with + (pread ? "map_blocks=false" : "map_blocks=true"));
          double t0 = now_s();
          for (int64_t i = 0; i < count; ++i) read_file(name(mnt, i), buf);
          (pread ? files_p : files_m).push_back(static_cast<double>(count) / (now_s() - t0));
          t0 = now_s();
          const size_t n = read_file(mnt + "/all.bin", buf);
          (pread ? dd_p : dd_m).push_back(static_cast<double>(n) / 1e9 / (now_s() - t0));
          (pread ? rss_p : rss_m) = m.rss();
        }
      row("first read of every file (files/s)", median(files_p), median(files_m), "files/s", true);
      row("all.bin first read, 1 MiB (GB/s)", median(dd_p), median(dd_m), "GB/s", true);
      std::printf("%-40s pread: %s; mapped: %s\n", "daemon memory after both", rss_p.c_str(), rss_m.c_str());
      std::printf("   (the native column here is map_blocks=true)\n");
    }
    {
      // ls -l stats every file: on a fresh mount that is either one LOOKUP
      // per file or attributes riding along with the listing (READDIRPLUS).
      std::vector<double> ls_b, ls_n;
      for (int r = 0; r < 3; ++r) {
        ls_n.push_back(time_command("ls -l " + native + " > /dev/null"));
        Mount fresh(blobfs, blob, mnt, opts);
        ls_b.push_back(time_command("ls -l " + mnt + " > /dev/null"));
      }
      g_peer = "blobfs";
      row("ls -l on a fresh mount (s)", median(ls_b), median(ls_n), "s", false);
    }
    if (bench::flag(argc, argv, "--live", "yes") == "yes") {
      // Following commits costs warm readers nothing: the same pass over
      // every file through a live mount and through a frozen one.
      g_peer = "blobfs";
      std::printf("-- a live mount\n");
      const std::string frozen_mnt = root + "/frozen";
      {
        Mount live(blobfs, blob, mnt, opts), frozen(blobfs, blob, frozen_mnt, "live=false");
        auto read_all = [&](const std::string& d) { return bench::read_every_file(d, count, item, buf); };
        read_all(mnt);
        read_all(frozen_mnt);
        read_all(native);
        std::vector<double> l, f, n;
        for (int r = 0; r < 3; ++r) {
          n.push_back(read_all(native));
          l.push_back(read_all(mnt));
          f.push_back(read_all(frozen_mnt));
        }
        row("warm read of every file, live (files/s)", median(l), median(n), "files/s", true);
        row("  the same, live: false", median(f), median(n), "files/s", true);
        row("  live against live: false", median(l), median(f), "x", true);
      }
      // Commit to visible: from the writer's commit returning until the new
      // tensor's file exists through the mount.
      auto latency = [&](const std::string& how, const char* what) {
        Mount live(blobfs, blob, mnt, how);
        OpenOptions o;
        Blob w = Blob::open(blob, "a", o);
        std::vector<double> lat, commit;
        for (int k = 0; k < 20; ++k) {
          w.write_raw(data.data(), 1);
          const double t0 = now_s();  // the commit starts: blocks synced, .stat renamed, directory synced
          w.flush();
          commit.push_back(now_s() - t0);
          const std::string next = name(mnt, w.size() - 1);
          struct stat st;
          while (::stat(next.c_str(), &st) != 0) {
            if (now_s() - t0 > 10) throw Error(Errc::kIo, next + ": not visible after 10 s");
            std::this_thread::sleep_for(std::chrono::microseconds(200));
          }
          lat.push_back(now_s() - t0);
          std::this_thread::sleep_for(std::chrono::milliseconds(20 + k * 37 % 100));  // commits at uneven times
        }
        w.close();
        std::printf("%-40s median %8.2f ms   p99 %8.2f ms   (20 commits; the commit itself %.2f ms)\n", what,
                    median(lat) * 1e3, percentile(lat, 0.99) * 1e3, median(commit) * 1e3);
      };
      latency(opts, "commit to visible, inotify");
      latency(opts + (opts.empty() ? "" : ",") + "inotify=false,refresh_interval=1", "commit to visible, poll every 1 s");
      // One refresh against the files the kernel holds: an overwrite of one
      // tensor of the last block, with N other files cached (their
      // invalidation is not needed, but each must be looked at) and with the
      // N files inside the rewritten block (each invalidated).
      const std::string log = root + "/refresh.log";
      const int64_t per_block = kDefaultBlockSize;
      for (int64_t cached : {int64_t{0}, int64_t{1000}, std::min<int64_t>(count - per_block, 10000)}) {
        for (bool inside : {false, true}) {
          if (inside && cached > per_block) continue;
          Mount live(blobfs, blob, mnt, opts + (opts.empty() ? "" : ",") + "log_level=debug", log);
          const int64_t n_now = Blob::open(blob, "r").size();
          const int64_t target_block = inside ? 0 : (n_now - 1) / per_block;
          for (int64_t i = 0; i < cached; ++i) read_file(name(mnt, inside ? i : (target_block ? i : per_block + i) % n_now), buf);
          // The refresher logs how long each refresh took (log_level=debug).
          auto refreshes = [&] {
            std::vector<double> found;
            std::ifstream in(log);
            for (std::string line; std::getline(in, line);)
              if (auto at = line.find("refresh took "); at != std::string::npos) found.push_back(std::stod(line.substr(at + 13)));
            return found;
          };
          std::vector<double> took;
          for (int k = 0; k < 5; ++k) {
            const size_t before = refreshes().size();
            Blob w = Blob::open(blob, "r+");
            w.seek(target_block * per_block);
            w.write_raw(data.data() + k * item, 1);
            w.close();
            const double t0 = now_s();
            for (std::vector<double> r; now_s() - t0 < 10; std::this_thread::sleep_for(std::chrono::milliseconds(2)))
              if ((r = refreshes()).size() > before) {
                took.push_back(r.back());
                break;
              }
          }
          if (took.empty()) throw Error(Errc::kIo, "no refresh was logged in " + log);
          char what[80];
          std::snprintf(what, sizeof what, "one refresh, %lld files cached %s", static_cast<long long>(cached),
                        inside ? "in the block" : "elsewhere");
          std::printf("%-40s median %8.2f ms   (5 overwrites of one tensor)\n", what, median(took));
        }
      }
    }
    // The best FUSE peer, where it is installed: squashfuse_ll over an
    // uncompressed squashfs image of the same files.
    if (bench::flag(argc, argv, "--peer", "yes") != "yes") {
      std::printf("-- no peer column (--peer no)\n");
    } else if (::access("/usr/bin/squashfuse_ll", X_OK) == 0 && ::access("/usr/bin/mksquashfs", X_OK) == 0) {
      const std::string img = root + "/native.sqfs", sqmnt = root + "/sqmnt";
      time_command("/usr/bin/mksquashfs " + native + " " + img + " -noI -noD -noF -noX -quiet -no-progress > /dev/null");
      Mount sq({"/usr/bin/squashfuse_ll", "-f", img, sqmnt}, sqmnt);
      compare("squashfuse_ll (uncompressed image)", "squashfs", sqmnt);
      std::printf("%-40s %.1f ms (until the mount is visible)\n", "mount time", sq.mount_seconds * 1e3);
    } else {
      std::printf("-- squashfuse_ll not installed (Debian packages squashfuse, squashfs-tools): no peer column\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mount_bench: %s\n", e.what());
    rc = 3;
  }
  // The 10-million-tensor blob of 4-byte tensors: mount time and RSS after listing.
  if (bench::flag(argc, argv, "--big", "yes") == "yes") try {
    const std::string big = root + "/big", bigmnt = root + "/bigmnt";
    {
      OpenOptions o;
      o.dtype = "int32";
      o.shape = Shape{};
      Blob b = Blob::open(big, "w", o);
      std::vector<int32_t> v(1 << 20);
      for (int64_t i = 0; i < 10'000'000; i += static_cast<int64_t>(v.size())) {
        int64_t k = std::min<int64_t>(static_cast<int64_t>(v.size()), 10'000'000 - i);
        for (int64_t j = 0; j < k; ++j) v[j] = static_cast<int32_t>(i + j);
        b.write_raw(v.data(), k);
      }
    }
    std::vector<double> times;
    std::string rss;
    for (int r = 0; r < 5; ++r) {
      Mount m(blobfs, big, bigmnt, opts);
      times.push_back(m.mount_seconds);
      if (r == 0) {
        int64_t n = 0;
        for (const auto& e : fs::directory_iterator(bigmnt)) n += !e.path().empty();
        std::vector<char> small(64);
        for (int64_t i = 0; i < 10'000'000; i += 997) read_file(name(bigmnt, i), small);
        rss = m.rss();
        std::printf("%-40s %lld entries listed, one file in 997 read\n", "10M-tensor blob", static_cast<long long>(n));
      }
    }
    std::printf("%-40s %.1f ms median of 5 (until the mount is visible)\n", "  mount time", median(times) * 1e3);
    std::printf("%-40s %s\n", "  daemon memory after listing and reading", rss.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mount_bench: %s\n", e.what());
    rc = 3;
  }
  fs::remove_all(root);
  return rc;
}
