// blobfs: mounts a tensorblob directory so every tensor is a plain file.
// Everything that can fail (options, config, the blob itself) is checked
// before mounting, so a bad start never leaves a mount behind.
#include <sys/mount.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "command_line.h"
#include "filesystem.h"
#include "fuse_ops.h"
#include "log.h"
#include "tensorblob/error.h"
#include "tensorblob/fault_guard.h"

namespace {

constexpr int kExitUsage = 2;  // as tblob: bad options or config
constexpr int kExitData = 3;   // the source cannot be opened
constexpr int kExitMount = 4;  // FUSE refused to mount

// fuse_opt splits -o on commas; a backslash keeps one in a value.
std::string escape_commas(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == ',' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::string read_config(const std::string& path) {
  if (path.empty()) return "";
  std::ifstream in(path);
  if (!in) throw blobfs::OptionError(path + ": cannot read the config file");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Mounts, serves until unmounted or signalled, unmounts. Returns the exit code.
int serve(blobfs::Filesystem& fs, const blobfs::CommandLine& cl, const blobfs::Options& o) {
  std::string mount_opts = "ro,subtype=blobfs,fsname=" + escape_commas(o.source);
  if (o.allow_other) mount_opts += ",allow_other";
  if (o.default_permissions) mount_opts += ",default_permissions";
  std::vector<const char*> argv = {"blobfs", "-o", mount_opts.c_str()};
  if (cl.debug) argv.push_back("-d");
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));

  const auto& ops = blobfs::fuse_operations();
  blobfs::MountState state;
  state.fs = &fs;
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, &state);
  if (!se) return kExitMount;
  int rc = kExitMount;
  // libfuse only takes over signals whose handler is the default, and shells
  // start background jobs with SIGINT ignored; SIGTERM and SIGINT must always
  // unmount cleanly, so make them default first. SIGHUP stays as inherited
  // (nohup keeps working).
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (fuse_set_signal_handlers(se) == 0) {
    if (fuse_session_mount(se, o.mountpoint.c_str()) == 0) {
      blobfs::log(blobfs::LogLevel::kInfo, "mounted " + o.source + " on " + o.mountpoint + " (" +
                                               std::to_string(fs.dataset().count()) + " tensors)");
      // The parent of fuse_daemonize exits only once this child is set up,
      // and the mount is already in place: a returning `blobfs` means ready.
      // The child's stderr is /dev/null, so it logs to syslog instead.
      if (!cl.foreground) blobfs::log_to_syslog();
      fuse_daemonize(cl.foreground ? 1 : 0);
      sd_notify(0, "READY=1");
      fuse_loop_config* cfg = fuse_loop_cfg_create();
      fuse_loop_cfg_set_max_threads(cfg, static_cast<unsigned>(o.threads));
      fuse_loop_cfg_set_clone_fd(cfg, o.clone_fd ? 1 : 0);
      // The loop returns a positive signal number when SIGTERM/SIGINT/SIGHUP
      // ended it: that is a clean stop, not a failure.
      rc = fuse_session_loop_mt(se, cfg) < 0 ? 1 : 0;
      fuse_loop_cfg_destroy(cfg);
      sd_notify(0, "STOPPING=1");
      fuse_session_unmount(se);
      blobfs::log(blobfs::LogLevel::kInfo, "unmounted " + o.mountpoint);
    }
    fuse_remove_signal_handlers(se);
  }
  fuse_session_destroy(se);
  fuse_opt_free_args(&args);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  blobfs::CommandLine cl;
  blobfs::Options opts;
  try {
    cl = blobfs::parse_command_line({argv + 1, argv + argc});
    if (cl.help) return std::fputs(blobfs::kUsage, stdout), 0;
    if (cl.version) return std::printf("blobfs %s (libfuse %s)\n", TENSORBLOB_VERSION, fuse_pkgversion()), 0;
    opts = blobfs::resolve_options(cl, read_config(cl.config));
  } catch (const blobfs::OptionError& e) {
    std::fprintf(stderr, "blobfs: %s\n", e.what());
    std::fprintf(stderr, "usage: blobfs SOURCE MOUNTPOINT [-o OPTIONS] [-f] [-d] [--config FILE] (see --help)\n");
    return kExitUsage;
  }
  blobfs::set_log_level(opts.log_level);

  struct stat st;
  if (::stat(opts.mountpoint.c_str(), &st) != 0 && errno == ENOTCONN) {
    // A daemon that died (SIGKILL, a crash) leaves its mount behind, and a
    // restart (systemd's Restart=on-failure) could never mount over it.
    blobfs::log(blobfs::LogLevel::kWarning, opts.mountpoint + ": removing the stale mount of a daemon that died");
    if (::umount2(opts.mountpoint.c_str(), MNT_DETACH) != 0)
      std::fprintf(stderr, "blobfs: %s: stale mount (transport endpoint is not connected); run fusermount3 -uz %s\n",
                   opts.mountpoint.c_str(), opts.mountpoint.c_str());
  }
  if (::stat(opts.mountpoint.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "blobfs: %s: mountpoint is not a directory\n", opts.mountpoint.c_str());
    return kExitUsage;
  }
  // A block file truncated while mounted must cost EIO on its reads, not the daemon.
  tensorblob::install_fault_guard();
  std::unique_ptr<blobfs::Filesystem> fs;
  try {
    fs = std::make_unique<blobfs::Filesystem>(tensorblob::open_dataset(opts.source, opts.max_cached_blocks), opts);
  } catch (const tensorblob::Error& e) {
    std::fprintf(stderr, "blobfs: %s\n", e.what());
    return kExitData;
  }
  return serve(*fs, cl, opts);
}
