// Transport benchmark (part of make bench-mount): the same blob mounted with
// transport=dev (/dev/fuse) and transport=uring (FUSE over io_uring), and
// the same tensors as plain files, measured in interleaved rounds (fresh
// mounts each round), medians of the rounds:
//   first read of every tensor file (kernel cache cold, blocks cached)
//   warm read of every tensor file
//   np.fromfile of random tensor files (Python's open() forwards an ioctl)
//   one forwarded request: ioctl(TCGETS) on an open tensor file, in us
//   daemon VmRSS after reading every file
// The kernel's switch (/sys/module/fuse/parameters/enable_uring) is turned
// on for the run and put back as it was.
// Usage: transport_bench [--count N] [--dim D] [--rounds R] [--dir DIR] [--blobfs PATH]
#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
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
namespace fs = std::filesystem;

namespace {

const char* kKnob = "/sys/module/fuse/parameters/enable_uring";

// Turns the kernel's switch on for this object's life, then puts it back.
class UringOn {
 public:
  UringOn() {
    std::ifstream in(kKnob);
    if (!(in >> old_)) throw Error(Errc::kIo, std::string(kKnob) + ": this kernel has no FUSE over io_uring");
    std::ofstream(kKnob) << "Y";
  }
  ~UringOn() { std::ofstream(kKnob) << old_; }

 private:
  std::string old_;
};

// Microseconds per TCGETS ioctl on an open file (each one reaches the daemon
// on a FUSE mount; a plain file answers ENOTTY in the kernel).
double ioctl_us(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(Errc::kIo, path + ": open failed");
  termios t;
  const int n = 20000;
  for (int k = 0; k < 500; ++k) (void)::ioctl(fd, TCGETS, &t);
  const double t0 = now_s();
  for (int k = 0; k < n; ++k) (void)::ioctl(fd, TCGETS, &t);
  const double us = (now_s() - t0) / n * 1e6;
  ::close(fd);
  return us;
}

// Mean microseconds of np.fromfile over 3000 random tensor files of dir.
double fromfile_us(const std::string& dir, int64_t count) {
  const std::string py =
      "/usr/bin/python3 -c \"import numpy as np, random, sys, time\n"
      "d, count = sys.argv[1], int(sys.argv[2])\n"
      "random.seed(5); idx = [random.randrange(count) for _ in range(3000)]\n"
      "for i in idx[:200]: np.fromfile(f'{d}/{i:06d}.bin', dtype=np.float32)\n"
      "t0 = time.perf_counter()\n"
      "for i in idx: np.fromfile(f'{d}/{i:06d}.bin', dtype=np.float32)\n"
      "print((time.perf_counter() - t0) / len(idx) * 1e6)\n\" " +
      dir + " " + std::to_string(count);
  FILE* p = ::popen(py.c_str(), "r");
  double us = 0;
  if (!p || std::fscanf(p, "%lf", &us) != 1) throw Error(Errc::kIo, "np.fromfile measurement failed");
  ::pclose(p);
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t count = std::stoll(bench::flag(argc, argv, "--count", "20000"));
  const int64_t dim = std::stoll(bench::flag(argc, argv, "--dim", "768"));
  const int rounds = std::stoi(bench::flag(argc, argv, "--rounds", "5"));
  const std::string dir = bench::flag(argc, argv, "--dir", bench::default_dir());
  const std::string blobfs = fs::absolute(bench::flag(argc, argv, "--blobfs", "build/blobfs")).string();
  const std::string root = dir + "/tblob-transport-bench-" + std::to_string(getpid());
  const std::string native = root + "/native", blob = root + "/blob", mnt = root + "/mnt";
  const int64_t item = dim * 4;
  std::printf("machine: %s\n", bench::machine_line(dir).c_str());
  std::printf("tensors: %lld x float32 (%lld,) = %lld bytes each; %d interleaved rounds, medians\n\n",
              static_cast<long long>(count), static_cast<long long>(dim), static_cast<long long>(item), rounds);
  int rc = 0;
  try {
    UringOn on;
    fs::create_directories(native);
    std::vector<char> data(static_cast<size_t>(count * item));
    std::mt19937_64 rng(7);
    for (auto& c : data) c = static_cast<char>(rng());
    for (int64_t i = 0; i < count; ++i) std::ofstream(name(native, i), std::ios::binary).write(&data[i * item], item);
    {
      OpenOptions o;
      o.dtype = "float32";
      o.shape = Shape{dim};
      Blob b = Blob::open(blob, "w", o);
      b.write_raw(data.data(), count);
    }
    ::sync();
    std::vector<char> buf(1 << 20);
    auto read_all = [&](const std::string& d) { return bench::read_every_file(d, count, item, buf); };
    // side -> measure -> one value per round
    std::map<std::string, std::map<std::string, std::vector<double>>> v;
    std::map<std::string, std::string> rss;
    const std::vector<std::string> sides = {"native", "dev", "uring"};
    for (int r = 0; r < rounds; ++r) {
      for (size_t k = 0; k < sides.size(); ++k) {
        const std::string& side = sides[(k + static_cast<size_t>(r)) % sides.size()];  // rotate the order
        auto measure = [&](const std::string& d) {
          v[side]["first"].push_back(read_all(d));
          v[side]["warm"].push_back(read_all(d));
          v[side]["fromfile"].push_back(fromfile_us(d, count));
          v[side]["ioctl"].push_back(ioctl_us(name(d, count / 2)));
        };
        if (side == "native") {
          measure(native);
          continue;
        }
        Mount m(blobfs, blob, mnt, "transport=" + side);
        measure(mnt);
        rss[side] = m.rss();
      }
    }
    auto row = [&](const char* what, const char* key, const char* unit, bool higher_is_better) {
      const double n = median(v["native"][key]), d = median(v["dev"][key]), u = median(v["uring"][key]);
      auto ratio = [&](double x) { return higher_is_better ? x / n : n / x; };
      std::printf("%-40s native %10.2f  dev %10.2f (%.2fx)  uring %10.2f (%.2fx)  %s; uring/dev %.2fx\n", what, n, d,
                  ratio(d), u, ratio(u), unit, higher_is_better ? u / d : d / u);
    };
    std::printf("(x: the speed as a ratio to plain files, higher is better)\n");
    row("first read of every file", "first", "files/s", true);
    row("warm read of every file", "warm", "files/s", true);
    row("np.fromfile of random files, mean", "fromfile", "us", false);
    row("one forwarded ioctl (TCGETS)", "ioctl", "us", false);
    std::printf("%-40s dev: %s; uring: %s\n", "daemon memory after the last round", rss["dev"].c_str(),
                rss["uring"].c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "transport_bench: %s\n", e.what());
    rc = 1;
  }
  std::error_code ec;
  fs::remove_all(root, ec);
  return rc;
}
