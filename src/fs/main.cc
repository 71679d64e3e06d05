// blobfs: mounts a tensorblob directory so every tensor is a plain file.
// Everything that can fail (options, config, the store itself) is checked
// before mounting, so a bad start never leaves a mount behind.
#include <malloc.h>
#include <pthread.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <algorithm>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "catalog_fs.h"
#include "command_line.h"
#include "filesystem.h"
#include "fuse_ops.h"
#include "log.h"
#include "metrics.h"
#include "metrics_server.h"
#include "refresher.h"
#include "ring_transport.h"
#include "signals.h"
#include "tensorblob/error.h"
#include "tensorblob/fault_guard.h"
#include "tensorblob/storage.h"
#include "tensorblob/s3.h"
#include "tensorblob/store.h"

namespace {

constexpr int kExitUsage = 2;     // as tblob: bad options or config
constexpr int kExitData = 3;      // the source cannot be opened
constexpr int kExitMount = 4;     // FUSE refused to mount
constexpr int kExitInternal = 5;  // a bug: an exception nobody expected

constexpr size_t kConfigLimit = 1 << 20;

// fuse_opt splits -o on commas; a backslash keeps one in a value.
std::string escape_commas(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == ',' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// The config file: a regular file of at most 1 MiB (not /dev/zero, not a
// FIFO, not a directory).
std::string read_config(const std::string& path) {
  if (path.empty()) return "";
  try {
    return tensorblob::read_regular_file(path, kConfigLimit);
  } catch (const tensorblob::Error& e) {
    std::string why = e.what();
    if (why.starts_with(path + ": ")) why = why.substr(path.size() + 2);
    throw blobfs::OptionError(path + ": cannot read the config file (" + why + ")");
  }
}

// The soft descriptor limit raised to the hard one: the block cache holds a
// descriptor per block file, and clone_fd one per worker thread.
void raise_descriptor_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
}

// Under an address-space limit (ulimit -v), what each worker thread reserves
// counts: an 8 MiB stack and a 64 MiB malloc arena each would leave the
// block mappings and libfuse's request buffers no room, and libfuse ends
// the session when it cannot allocate a buffer. Smaller stacks (the
// handlers need little) and fewer arenas then; nothing changes without one.
void fit_address_space_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return;
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) == 0) {
    pthread_attr_setstacksize(&attr, 1 << 20);
    pthread_setattr_default_np(&attr);
    pthread_attr_destroy(&attr);
  }
  mallopt(M_ARENA_MAX, 2);
}

// What the metrics show besides the requests: the store and its caches.
void add_metric_sources(const blobfs::MountState& state, bool remote) {
  auto& m = blobfs::Metrics::global();
  if (blobfs::CatalogFs* cat = state.catalog) {
    m.add_source([cat] {
      return std::vector<blobfs::Sample>{
          {"blobfs_stores_open", "Stores this daemon has open.", "gauge", "", static_cast<double>(cat->stores_open())},
      };
    });
  } else m.add_source([&fs = *state.fs] {
    const std::string source = "source=\"" + blobfs::escape_label_value(fs.options().source) + "\"";
    return std::vector<blobfs::Sample>{
        {"blobfs_stores_open", "Stores this daemon has open.", "gauge", "", 1},
        {"blobfs_items", "Tensors (or ragged items) the mount shows now.", "gauge", source,
         static_cast<double>(fs.view()->dataset().count())},
    };
  });
  if (blobfs::RingTransport* ring = state.ring) {
    m.add_source([ring] {
      return std::vector<blobfs::Sample>{
          {"blobfs_ring_requests_total", "Requests that arrived through FUSE over io_uring.", "counter", "",
           static_cast<double>(ring->requests())},
      };
    });
  }
  if (!remote) return;
  m.add_source([] {
    const tensorblob::S3Counters c = tensorblob::s3_counters();
    const char* hits = "S3 parts a read found in memory or in the disk cache.";
    return std::vector<blobfs::Sample>{
        {"blobfs_s3_cache_hits_total", hits, "counter", "tier=\"memory\"", static_cast<double>(c.memory_hits)},
        {"blobfs_s3_cache_hits_total", hits, "counter", "tier=\"disk\"", static_cast<double>(c.disk_hits)},
        {"blobfs_s3_cache_misses_total", "S3 parts fetched from the object store (reads and read-ahead).",
         "counter", "", static_cast<double>(c.fetches)},
        {"blobfs_s3_fetched_bytes_total", "Bytes fetched from the object store.", "counter", "",
         static_cast<double>(c.fetched_bytes)},
        {"blobfs_s3_cache_damaged_total", "Disk-cache files found damaged, removed and fetched again.", "counter",
         "", static_cast<double>(c.disk_damaged)},
        {"blobfs_s3_cache_bytes", "Bytes of parts held now.", "gauge", "tier=\"memory\"",
         static_cast<double>(c.held_bytes)},
        {"blobfs_s3_cache_bytes", "Bytes of parts held now.", "gauge", "tier=\"disk\"",
         static_cast<double>(c.disk_bytes)},
    };
  });
}

// The kernel's switch for FUSE over io_uring, or nullopt when it has none.
// (sysfs files claim 4096 bytes whatever they hold: read what is there.)
std::optional<std::string> uring_parameter() {
  std::ifstream in("/sys/module/fuse/parameters/enable_uring");
  if (!in) return std::nullopt;
  std::string text;
  std::getline(in, text);
  return text;
}

// Mounts, serves until unmounted or signalled, unmounts. Returns the exit code.
int serve(blobfs::MountState& state, const blobfs::CommandLine& cl, const blobfs::Options& o,
          const blobfs::TransportChoice& transport, blobfs::MetricsServer* metrics) {
  // Read-only unless writable was asked for: the plain flag rw alone never
  // makes a mount writable (fstab's defaults imply it).
  std::string mount_opts = std::string(o.writable ? "rw" : "ro") + ",subtype=blobfs,fsname=" + escape_commas(o.source);
  if (o.allow_other) mount_opts += ",allow_other";
  if (o.default_permissions) mount_opts += ",default_permissions";
  std::vector<const char*> argv = {"blobfs", "-o", mount_opts.c_str()};
  if (cl.debug) argv.push_back("-d");
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));

  const auto& ops = blobfs::fuse_operations();
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, &state);
  if (!se) return kExitMount;
  int rc = kExitMount;
  blobfs::install_signal_handlers(se, o.mountpoint);
  // A block file truncated while mounted must cost EIO on its reads, not
  // the daemon; other SIGBUSes go to the handler just installed.
  tensorblob::install_fault_guard();
  std::unique_ptr<blobfs::RingTransport> ring;
  if (fuse_session_mount(se, o.mountpoint.c_str()) == 0) {
    blobfs::log(blobfs::LogLevel::kInfo, transport.why);
    if (transport.ring) {
      // Requests move to the ring once INIT agreed to it; until then, and
      // for FORGET, INTERRUPT and notifications, /dev/fuse serves.
      // Payload: the largest request or reply libfuse handles (1 MiB of
      // data and a page of headers).
      ring = std::make_unique<blobfs::RingTransport>(se, static_cast<size_t>(get_nprocs_conf()), 8,
                                                     (size_t{1} << 20) + 4096);
      state.ring = ring.get();
      ring->install();
    }
    blobfs::log(blobfs::LogLevel::kInfo,
                "mounted " + o.source + " on " + o.mountpoint + " (" +
                    (state.fs ? std::to_string(state.fs->view()->dataset().count()) + " tensors"
                              : std::string("a data directory: stores open as they are looked up")) +
                    ")");
    // The parent of fuse_daemonize exits only once this child is set up,
    // and the mount is already in place: a returning `blobfs` means ready.
    // The child's stderr is /dev/null, so it logs to syslog instead. Every
    // path was made absolute already: the child works from /.
    if (!cl.foreground) blobfs::log_to_syslog();
    fuse_daemonize(cl.foreground ? 1 : 0);
    if (metrics) {
      // In the process that stays: the server's thread would not survive the fork.
      add_metric_sources(state, tensorblob::is_s3_url(o.source));
      blobfs::Metrics::global().enable();
      try {
        metrics->start();
        blobfs::log(blobfs::LogLevel::kInfo, "metrics at http://" + o.metrics_listen + "/metrics");
      } catch (const std::exception& e) {
        blobfs::log(blobfs::LogLevel::kError, e.what());
      }
    }
    if (ring) ring->start();
    sd_notify(0, "READY=1");
    // A live mount follows the store from a thread of its own; a frozen one
    // keeps every file of its commit open instead, in the background so
    // mounting a large store stays fast.
    std::unique_ptr<blobfs::Refresher> refresher;
    std::thread holder;
    if (blobfs::CatalogFs* cat = state.catalog) {
      // Each open store of a live catalog is followed by a refresher of its
      // own; stores over max_open_stores are offered back to the kernel.
      cat->set_hooks({[se](blobfs::Filesystem& f, const blobfs::StoreInodes& inodes) -> std::shared_ptr<void> {
                        return std::make_shared<blobfs::Refresher>(f, se, inodes);
                      },
                      [se](uint64_t parent, const std::string& name) {
                        fuse_lowlevel_notify_inval_entry(se, parent, name.c_str(), name.size());
                      }});
      cat->start();
    } else if (o.live) {
      refresher = std::make_unique<blobfs::Refresher>(*state.fs, se, *state.same);
    } else holder = std::thread([&fs = *state.fs] {
      sigset_t all;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, nullptr);
      const size_t n = fs.hold_files();
      blobfs::log(blobfs::LogLevel::kDebug, "frozen: holding " + std::to_string(n) + " files of the commit open");
    });
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(cfg, static_cast<unsigned>(o.threads));
    fuse_loop_cfg_set_clone_fd(cfg, o.clone_fd ? 1 : 0);
    // A signal that ends the loop is a clean stop, not a failure.
    rc = fuse_session_loop_mt(se, cfg) < 0 && !blobfs::ending_signal() ? 1 : 0;
    fuse_loop_cfg_destroy(cfg);
    sd_notify(0, "STOPPING=1");
    if (ring) ring->stop();
    refresher.reset();
    if (state.catalog) state.catalog->stop();
    if (holder.joinable()) holder.join();
    fuse_session_unmount(se);
    blobfs::log(blobfs::LogLevel::kInfo, "unmounted " + o.mountpoint);
  }
  blobfs::remove_signal_handlers();
  fuse_session_destroy(se);
  fuse_opt_free_args(&args);
  return rc;
}

tensorblob::S3Options s3_options(const blobfs::Options& o) {
  tensorblob::S3Options s;
  s.endpoint = o.s3_endpoint;
  s.region = o.s3_region;
  s.profile = o.s3_profile;
  s.cache_dir = o.cache_dir.empty() ? "" : tensorblob::absolute_path(o.cache_dir);
  s.cache_max_bytes = o.cache_max_bytes;
  s.memory_max_bytes = o.s3_memory_bytes;
  s.part_bytes = o.s3_part_size;
  s.prefetch_max_bytes = o.s3_prefetch_bytes;
  s.max_requests = o.s3_requests;
  s.retries = o.s3_retries;
  s.timeout_seconds = static_cast<int>(o.s3_timeout);
  s.warn = [](const std::string& m) { blobfs::log_once(blobfs::LogLevel::kWarning, m, m); };
  return s;
}

int run(int argc, char** argv) {
  blobfs::CommandLine cl;
  blobfs::Options opts;
  try {
    cl = blobfs::parse_command_line({argv + 1, argv + argc});
    if (cl.help) return std::fputs(blobfs::kUsage, stdout), 0;
    if (cl.version) return std::printf("blobfs %s (libfuse %s)\n", TENSORBLOB_VERSION, fuse_pkgversion()), 0;
    opts = blobfs::resolve_options(cl, read_config(cl.config));
  } catch (const blobfs::OptionError& e) {
    std::fprintf(stderr, "blobfs: %s\n", blobfs::escape_for_log(e.what()).c_str());
    std::fprintf(stderr, "usage: blobfs SOURCE MOUNTPOINT [-o OPTIONS] [-f] [-d] [--config FILE] (see --help)\n");
    return kExitUsage;
  }
  blobfs::set_log_level(opts.log_level);
  // Relative paths stop meaning the same thing once the daemon works from /;
  // unmounting on SIGTERM needs the mountpoint's path then too.
  const bool remote = tensorblob::is_s3_url(opts.source);
  if (!remote) opts.source = tensorblob::absolute_path(opts.source);
  opts.mountpoint = tensorblob::absolute_path(opts.mountpoint);
  raise_descriptor_limit();
  fit_address_space_limit();

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
    std::fprintf(stderr, "blobfs: %s: mountpoint is not a directory\n", blobfs::escape_for_log(opts.mountpoint).c_str());
    return kExitUsage;
  }
  std::unique_ptr<blobfs::Filesystem> fs;
  std::unique_ptr<blobfs::CatalogFs> catalog;
  try {
    tensorblob::StoreOptions so;
    so.max_cached_blocks = opts.max_cached_blocks;
    so.access = opts.map_blocks ? tensorblob::Access::kMapped : tensorblob::Access::kPread;
    if (remote) {
      if (opts.writable)
        throw tensorblob::Error(tensorblob::Errc::kInvalidArgument,
                                opts.source + ": a store on S3 mounts read-only (writable: false); change a local copy "
                                              "and publish it with tblob push");
      so.s3 = s3_options(opts);
      // One clear line before mounting: unreachable endpoint, missing
      // bucket, refused credentials.
      tensorblob::check_s3_access(opts.source, so.s3);
    }
    const tensorblob::StoreKind kind = remote ? tensorblob::StoreKind::kNone : tensorblob::store_kind(opts.source);
    if (kind == tensorblob::StoreKind::kDirectory || kind == tensorblob::StoreKind::kTensorDB) {
      // A data directory (or a TensorDB): a tree of stores, each opened
      // when first looked up.
      if (opts.writable)
        throw tensorblob::Error(tensorblob::Errc::kInvalidArgument,
                                opts.source + ": " +
                                    (kind == tensorblob::StoreKind::kTensorDB ? "a TensorDB" : "a data directory") +
                                    " mounts read-only (writable: false); mount one blob in it writable");
      // The block-file bound is per store: shared out so that every open
      // store together keeps to about one store's default.
      if (!so.max_cached_blocks) so.max_cached_blocks = std::max<uint64_t>(16, 4096 / opts.max_open_stores);
      catalog = std::make_unique<blobfs::CatalogFs>(opts.source, opts, so);
    } else {
      fs = std::make_unique<blobfs::Filesystem>(tensorblob::open_store(opts.source, so), opts);
    }
  } catch (const tensorblob::Error& e) {
    std::fprintf(stderr, "blobfs: %s\n", blobfs::escape_for_log(e.what()).c_str());
    return kExitData;
  }
  // Bound before mounting: a port in use is an error with no mount made.
  std::unique_ptr<blobfs::MetricsServer> metrics;
  if (!opts.metrics_listen.empty()) {
    try {
      metrics = blobfs::MetricsServer::listen(blobfs::parse_listen_address(opts.metrics_listen));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "blobfs: %s\n", blobfs::escape_for_log(e.what()).c_str());
      return kExitUsage;
    }
  }
  blobfs::MountState state;
  state.options = &opts;
  std::unique_ptr<blobfs::SameInodes> same;
  if (fs) {
    same = std::make_unique<blobfs::SameInodes>(*fs);
    state.fs = fs.get();
    state.same = same.get();
  } else {
    state.catalog = catalog.get();
  }
  blobfs::TransportChoice transport;
  try {
    const blobfs::Transport wanted = opts.transport == "uring" ? blobfs::Transport::kUring
                                     : opts.transport == "dev" ? blobfs::Transport::kDev
                                                               : blobfs::Transport::kAuto;
    transport = blobfs::choose_transport(wanted, uring_parameter());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "blobfs: %s\n", e.what());
    return kExitUsage;
  }
  const int rc = serve(state, cl, opts, transport, metrics.get());
  metrics.reset();  // before the store goes: the server reads it
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  // Nothing may escape as an abort: a bad start must say what was wrong.
  try {
    return run(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "blobfs: out of memory\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "blobfs: internal error: %s\n", blobfs::escape_for_log(e.what()).c_str());
  }
  return kExitInternal;
}
