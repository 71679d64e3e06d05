// Write benchmark (make bench-mount): appending through a writable mount,
// against `tblob import` of the same bytes and against writing plain files,
// measured side by side in one run; and what a writable mount costs readers.
//   dd bs=1M of a 1 GB file onto all.bin (its commit included)
//     vs tblob import of the same bytes, vs dd to a plain file (conv=fsync)
//   10,000 tensor files written to the next indices, as cp writes them
//     (open, write, close: each a commit), vs the same into a plain directory
//   reading every tensor file once and all.bin in 1 MiB reads, a writable
//     mount against a read-only one
// Usage: write_bench [--mb N] [--files N] [--dir DIR] [--blobfs PATH]
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
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
using bench::time_command;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kDim = 768, kItem = kDim * 4;

void row(const char* what, double ours, double base, const char* base_name, const char* unit, bool higher) {
  std::printf("%-44s %10.2f %-8s %-22s %10.2f %-8s ratio %.2fx\n", what, ours, unit, base_name, base, unit,
              higher ? ours / base : base / ours);
}

void make_blob(const std::string& path) {
  fs::remove_all(path);
  OpenOptions o;
  o.dtype = "float32";
  o.shape = Shape{kDim};
  Blob::open(path, "w", o).close();
}

// What cp does per file: open (create) the target, write it, close it.
void write_files(const std::string& dir, int64_t first, int64_t n, const std::vector<char>& bytes) {
  for (int64_t i = 0; i < n; ++i) {
    const std::string path = name(dir, first + i);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw Error(Errc::kIo, path + ": open: " + std::strerror(errno));
    if (::write(fd, bytes.data() + (i % 64) * kItem, kItem) != kItem) throw Error(Errc::kIo, path + ": write");
    if (::close(fd) != 0) throw Error(Errc::kIo, path + ": close: " + std::strerror(errno));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t mb = std::stoll(bench::flag(argc, argv, "--mb", "1024"));
  const int64_t files = std::stoll(bench::flag(argc, argv, "--files", "10000"));
  const std::string dir = bench::flag(argc, argv, "--dir", bench::default_dir());
  const std::string blobfs = fs::absolute(bench::flag(argc, argv, "--blobfs", "build/blobfs")).string();
  const std::string tblob = (fs::path(blobfs).parent_path() / "tblob").string();
  const std::string root = dir + "/tblob-write-bench-" + std::to_string(getpid());
  const std::string src = root + "/src.bin", blob = root + "/blob", mnt = root + "/mnt", plain = root + "/plain";
  const int64_t tensors = mb * (1 << 20) / kItem;
  std::printf("machine: %s\n", bench::machine_line(dir).c_str());
  std::printf("appends: %lld tensors of %lld bytes (%.2f GB); %lld tensor files\n\n", static_cast<long long>(tensors),
              static_cast<long long>(kItem), static_cast<double>(tensors * kItem) / 1e9, static_cast<long long>(files));
  int rc = 0;
  try {
    fs::create_directories(root);
    {
      std::vector<char> chunk(1 << 20);
      std::mt19937_64 rng(3);
      std::FILE* f = std::fopen(src.c_str(), "wb");
      for (int64_t done = 0; done < tensors * kItem;) {
        for (auto& c : chunk) c = static_cast<char>(rng());
        const size_t n = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(chunk.size()), tensors * kItem - done));
        std::fwrite(chunk.data(), 1, n, f);
        done += static_cast<int64_t>(n);
      }
      std::fclose(f);
    }
    const double gb = static_cast<double>(tensors * kItem) / 1e9;
    // Each side starts from nothing, the previous output removed and synced
    // first (store_bench explains why on this VM).
    std::vector<double> t_mount, t_import, t_plain;
    for (int r = 0; r < 3; ++r) {
      fs::remove(plain + ".bin");
      ::sync();
      t_plain.push_back(time_command("dd if=" + src + " of=" + plain + ".bin bs=1M conv=fsync status=none"));
      make_blob(blob);
      ::sync();
      t_import.push_back(time_command(tblob + " import " + blob + " " + src + " --dtype float32 --shape 768"));
      make_blob(blob);
      ::sync();
      Mount m(blobfs, blob, mnt, "writable=true");
      t_mount.push_back(time_command("dd if=" + src + " of=" + mnt + "/all.bin bs=1M oflag=append conv=notrunc status=none"));
      if (Blob::open(blob, "r").size() != tensors) throw Error(Errc::kIo, "the append through the mount lost tensors");
    }
    row("dd bs=1M onto all.bin (GB/s)", gb / median(t_mount), gb / median(t_import), "tblob import", "GB/s", true);
    row("", gb / median(t_mount), gb / median(t_plain), "dd to a plain file", "GB/s", true);

    // Tensor files to the next indices, each a commit; against plain files.
    std::vector<char> bytes(static_cast<size_t>(64 * kItem));
    std::mt19937_64 rng(9);
    for (auto& c : bytes) c = static_cast<char>(rng());
    std::vector<double> fps_mount, fps_plain;
    for (int r = 0; r < 2; ++r) {
      fs::remove_all(plain);
      fs::create_directories(plain);
      ::sync();
      double t0 = now_s();
      write_files(plain, 0, files, bytes);
      fps_plain.push_back(static_cast<double>(files) / (now_s() - t0));
      make_blob(blob);
      Mount m(blobfs, blob, mnt, "writable=true");
      t0 = now_s();
      write_files(mnt, 0, files, bytes);
      fps_mount.push_back(static_cast<double>(files) / (now_s() - t0));
    }
    row("tensor files to the next index (files/s)", median(fps_mount), median(fps_plain), "plain files", "files/s", true);

    // What being writable costs readers: opens reach the daemon (no
    // zero-message opens), the rest is the same.
    {
      std::vector<char> buf(1 << 20);
      Mount w(blobfs, blob, mnt, "writable=true"), ro(blobfs, blob, root + "/ro", "");
      auto read_all = [&](const std::string& d) {
        const double t0 = now_s();
        for (int64_t i = 0; i < files; ++i) read_file(name(d, i), buf);
        return static_cast<double>(files) / (now_s() - t0);
      };
      read_all(mnt);
      read_all(root + "/ro");
      std::vector<double> a, b, ga, gbs;
      for (int r = 0; r < 3; ++r) {
        b.push_back(read_all(root + "/ro"));
        a.push_back(read_all(mnt));
        double t0 = now_s();
        read_file(root + "/ro/all.bin", buf);
        gbs.push_back(static_cast<double>(files * kItem) / 1e9 / (now_s() - t0));
        t0 = now_s();
        read_file(mnt + "/all.bin", buf);
        ga.push_back(static_cast<double>(files * kItem) / 1e9 / (now_s() - t0));
      }
      row("read every tensor file, writable (files/s)", median(a), median(b), "read-only mount", "files/s", true);
      row("all.bin in 1 MiB reads, writable (GB/s)", median(ga), median(gbs), "read-only mount", "GB/s", true);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "write_bench: %s\n", e.what());
    rc = 3;
  }
  fs::remove_all(root);
  return rc;
}
