// Helpers the mount benchmarks share: a FUSE daemon for the life of an
// object, reading files whole, timing shell commands.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "tensorblob/error.h"

namespace bench {

using tensorblob::Errc;
using tensorblob::Error;
namespace fs = std::filesystem;

inline bool is_mounted(const std::string& mnt) {
  std::ifstream m("/proc/mounts");
  for (std::string dev, dir, rest; m >> dev >> dir && std::getline(m, rest);)
    if (dir == mnt) return true;
  return false;
}

// A FUSE daemon (argv, mounting at mnt, in the foreground) for the life of
// this object; unmounts and reaps it on destruction, whatever happened.
class Mount {
 public:
  Mount(const std::string& blobfs, const std::string& src, const std::string& mnt, const std::string& opts,
        const std::string& log = "")
      : Mount({blobfs, src, mnt, "-f", "-o", "log_level=warning" + (opts.empty() ? "" : "," + opts)}, mnt, log) {}
  // `log`: where the daemon's stderr goes (default: ours).
  Mount(const std::vector<std::string>& argv, const std::string& mnt, const std::string& log = "") : mnt_(mnt) {
    fs::create_directories(mnt);
    double t0 = now_s();
    pid_ = fork();
    if (pid_ == 0) {
      if (!log.empty() && !std::freopen(log.c_str(), "w", stderr)) _exit(126);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    while (!is_mounted(mnt)) {
      if (now_s() - t0 > 20) {
        kill(pid_, SIGKILL);  // the destructor will not run for a failed constructor
        waitpid(pid_, nullptr, 0);
        throw Error(Errc::kIo, argv[0] + " did not mount " + mnt);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    mount_seconds = now_s() - t0;
  }
  ~Mount() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  // "VmRSS N KiB (RssAnon N KiB)": VmRSS counts the block pages the daemon
  // has mapped, which are the shared page cache; RssAnon is its own memory.
  std::string rss() const {
    std::ifstream st("/proc/" + std::to_string(pid_) + "/status");
    std::string vm = "?", anon = "?";
    for (std::string line; std::getline(st, line);) {
      if (line.rfind("VmRSS:", 0) == 0) vm = std::to_string(std::atol(line.c_str() + 6));
      if (line.rfind("RssAnon:", 0) == 0) anon = std::to_string(std::atol(line.c_str() + 8));
    }
    return "VmRSS " + vm + " KiB (RssAnon " + anon + " KiB)";
  }
  double mount_seconds = 0;

 private:
  std::string mnt_;
  pid_t pid_ = -1;
};

inline size_t read_file(const std::string& path, std::vector<char>& buf) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(Errc::kIo, path + ": open failed");
  size_t total = 0;
  for (ssize_t n; (n = ::read(fd, buf.data(), buf.size())) > 0;) total += static_cast<size_t>(n);
  ::close(fd);
  return total;
}

inline std::string name(const std::string& dir, int64_t i) {
  char b[32];
  std::snprintf(b, sizeof b, "/%06lld.bin", static_cast<long long>(i));
  return dir + b;
}

// Files per second reading NNNNNN.bin for i < count in dir, whole, each of
// `item` bytes (a short one is an error).
inline double read_every_file(const std::string& dir, int64_t count, int64_t item, std::vector<char>& buf) {
  const double t0 = now_s();
  for (int64_t i = 0; i < count; ++i)
    if (read_file(name(dir, i), buf) != static_cast<size_t>(item)) throw Error(Errc::kIo, name(dir, i) + ": short");
  return static_cast<double>(count) / (now_s() - t0);
}

// Seconds taken by a shell command, which must succeed.
inline double time_command(const std::string& cmd) {
  double t0 = now_s();
  if (std::system(cmd.c_str()) != 0) throw Error(Errc::kIo, "command failed: " + cmd);
  return now_s() - t0;
}

}  // namespace bench
