// Errors keep the errno that caused them, so a mount can answer ENOSPC for
// a full disk rather than EIO: ENOSPC, EDQUOT, EFBIG, EACCES, EROFS, ENOENT.
// Needs root (it mounts small tmpfs filesystems); skipped with a warning
// otherwise. Every mount is undone on scope exit, pass or fail.
#include <signal.h>
#include <sys/mount.h>
#include <sys/quota.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <functional>

#include "tensorblob/blob.h"
#include "tensorblob/error.h"
#include "test_util.h"

using namespace tensorblob;
using testutil::TempDir;

namespace {

class Tmpfs {
 public:
  Tmpfs(const std::string& dir, const std::string& options) : dir_(dir) {
    ::mkdir(dir.c_str(), 0755);
    ok_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  ~Tmpfs() {
    if (ok_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }
  void remount_read_only() {
    REQUIRE(::mount(nullptr, dir_.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0);
  }

 private:
  std::string dir_;
  bool ok_ = false;
};

// The errno of the Error fn throws (0 if it throws none).
int errno_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.sys_errno();
  }
  return 0;
}

// Runs fn in a child as uid/gid 65534 (nobody, without root's overrides)
// and returns the errno it reported through its exit code.
int errno_as_nobody(const std::function<int()>& fn) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) _exit(250);
    _exit(fn());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 251;
}

bool root() {
  if (::geteuid() == 0) return true;
  WARN("not root: the errno tests that mount need root");
  return false;
}

}  // namespace

TEST_CASE("a full disk is ENOSPC at the write that needs the space, naming the block") {
  if (!root()) return;
  TempDir t;
  Tmpfs small(t / "fs", "size=256k");
  REQUIRE(small.ok());
  const std::string p = t / "fs/b";
  Blob w = Blob::open(p, "w", testutil::f32_options({256}, 64));  // 64 KiB blocks
  w.write(testutil::iota_f32(64, {256}));
  w.flush();
  try {
    w.write(testutil::iota_f32(64 * 8, {256}));
    FAIL("the write fit");
  } catch (const Error& e) {
    CHECK(e.sys_errno() == ENOSPC);
    CHECK_THAT(e.what(), Catch::Contains(p + "/") && Catch::Contains("No space left on device"));
  }
  CHECK(w.size() == 64);
  w.close();
  CHECK(Blob::open(p, "r").size() == 64);
}

// An ext4 image with quotas on a loop device, for EDQUOT (this kernel's
// tmpfs may have no quotas): user 65534 may use `kib` KiB on it.
class QuotaFs {
 public:
  QuotaFs(const std::string& image, const std::string& dir, int kib) : dir_(dir) {
    const std::string cmd = "truncate -s 32M '" + image + "' && mkfs.ext4 -q -F -O quota -E quotatype=usrquota '" +
                            image + "' && mkdir -p '" + dir + "' && mount -o loop,usrquota '" + image + "' '" + dir +
                            "' 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) return;
    mounted_ = true;
    // The loop device it landed on, for quotactl.
    std::ifstream mounts("/proc/mounts");
    for (std::string dev, mnt, rest; mounts >> dev >> mnt && std::getline(mounts, rest);)
      if (mnt == dir) device_ = dev;
    if_dqblk q{};
    q.dqb_bhardlimit = static_cast<uint64_t>(kib);  // in 1 KiB quota blocks
    q.dqb_bsoftlimit = static_cast<uint64_t>(kib);
    q.dqb_valid = QIF_BLIMITS;
    ok_ = !device_.empty() && ::quotactl(QCMD(Q_SETQUOTA, USRQUOTA), device_.c_str(), 65534,
                                         reinterpret_cast<caddr_t>(&q)) == 0;
  }
  ~QuotaFs() {
    if (mounted_) ::umount2(dir_.c_str(), 0) == 0 || ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }

 private:
  std::string dir_, device_;
  bool mounted_ = false, ok_ = false;
};

TEST_CASE("a quota is EDQUOT") {
  if (!root()) return;
  TempDir t;
  QuotaFs q(t / "img", t / "fs", 256);
  if (!q.ok()) {
    // This machine: CONFIG_QUOTA is off and tmpfs has no quotas, so no
    // filesystem can say EDQUOT; errno_for is unit-tested for it instead.
    WARN("no filesystem with quotas here (loop device, ext4 quotas): EDQUOT not checked");
    return;
  }
  const std::string p = t / "fs/b";
  REQUIRE(::mkdir(p.c_str(), 0755) == 0);
  REQUIRE(::chown(p.c_str(), 65534, 65534) == 0);
  // Root is exempt from quotas: the writer is nobody.
  int err = errno_as_nobody([&] {
    return errno_of([&] {
      Blob w = Blob::open(p, "w", testutil::f32_options({256}, 64));
      w.write(testutil::iota_f32(64 * 8, {256}));
      w.close();
    });
  });
  CHECK(err == EDQUOT);
}

TEST_CASE("a file size limit is EFBIG") {
  TempDir t;
  const std::string p = t / "b";
  Blob w = Blob::open(p, "w", testutil::f32_options({256}, 64));
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
  rlimit tiny = old;
  tiny.rlim_cur = 4096;
  ::signal(SIGXFSZ, SIG_IGN);
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &tiny) == 0);
  const int err = errno_of([&] { w.write(testutil::iota_f32(64, {256})); });
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, SIG_DFL);
  CHECK(err == EFBIG);
  CHECK(w.size() == 0);
}

TEST_CASE("a blob the user may not read is EACCES") {
  if (!root()) return;
  TempDir t;
  const std::string p = t / "b";
  { Blob::open(p, "w", testutil::f32_options({4}, 4)).write(testutil::iota_f32(3, {4})); }
  REQUIRE(::chmod(t.path().c_str(), 0755) == 0);
  REQUIRE(::chmod(p.c_str(), 0700) == 0);
  CHECK(errno_as_nobody([&] { return errno_of([&] { Blob::open(p, "r"); }); }) == EACCES);
}

TEST_CASE("a read-only filesystem is EROFS") {
  if (!root()) return;
  TempDir t;
  Tmpfs ro(t / "fs", "size=1m");
  REQUIRE(ro.ok());
  const std::string p = t / "fs/b";
  { Blob::open(p, "w", testutil::f32_options({4}, 4)).write(testutil::iota_f32(3, {4})); }
  ro.remount_read_only();
  CHECK(Blob::open(p, "r").size() == 3);
  CHECK(errno_of([&] {
          Blob w = Blob::open(p, "a");
          w.write(testutil::iota_f32(8, {4}));
          w.close();
        }) == EROFS);
}

TEST_CASE("a missing blob is ENOENT") {
  TempDir t;
  CHECK(errno_of([&] { Blob::open(t / "nothing", "r"); }) == ENOENT);
  try {
    Blob::open(t / "nothing", "r");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::kNotFound);
  }
}
