// Small helpers shared by the benchmarks: timing, medians, the machine line.
#pragma once

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace bench {

// The value after `name` on the command line, or `dflt`.
inline std::string flag(int argc, char** argv, const char* name, const std::string& dflt) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == name) return argv[i + 1];
  return dflt;
}

// $TMPDIR, or /tmp: where benchmarks put their files unless told otherwise.
inline std::string default_dir() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp ? tmp : "/tmp";
}

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

inline double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// "AMD EPYC, 2 cores, 23.4 GiB, Linux 6.1.0, ext4 at /tmp": what a result was measured on.
inline std::string machine_line(const std::string& dir) {
  std::string cpu = "unknown cpu";
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);)
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  utsname u{};
  ::uname(&u);
  double gib = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 30);
  std::string fstype = "?";
  std::ifstream mounts("/proc/mounts");
  size_t best = 0;
  for (std::string dev, mnt, type, rest; mounts >> dev >> mnt >> type && std::getline(mounts, rest);)
    if (dir.rfind(mnt, 0) == 0 && mnt.size() >= best) {
      best = mnt.size();
      fstype = type;
    }
  char mem[32];
  std::snprintf(mem, sizeof mem, "%.1f GiB", gib);
  // How idle CPUs wait decides what a wake-up costs, and every FUSE round
  // trip has two: on a VM whose idle vCPUs halt, each is tens of microseconds.
  std::string idle;
  if (std::ifstream drv("/sys/devices/system/cpu/cpuidle/current_driver"); drv >> idle) {
    std::string poll_ns;
    if (std::ifstream p("/sys/module/haltpoll/parameters/guest_halt_poll_ns"); p >> poll_ns)
      idle += " guest_halt_poll_ns=" + poll_ns;
    idle = ", cpuidle " + idle;
  }
  return cpu + ", " + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " cores, " + mem + ", Linux " + u.release +
         ", " + fstype + " at " + dir + idle;
}

}  // namespace bench
