# Helpers for the shell test suites (mount, cli). Source this file, define test_* functions,
# then call run_tests. Each test runs in its own subshell with its own fresh
# temporary directory; whatever it mounted is unmounted and every daemon it
# started is killed and reaped on exit, pass or fail.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(realpath "${BUILD:-$ROOT/build}")
# Tests that run make name the build as the Makefile did (relative to ROOT)
# and with its flags, so make finds everything up to date and relinks nothing.
MAKE_BUILD_ARGS=(BUILD="${BUILD#"$ROOT"/}")
if [[ -n ${TBLOB_SANITIZED:-} ]]; then
  MAKE_BUILD_ARGS+=(OPT="-O1 -g -fno-omit-frame-pointer" SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined")
fi
BLOBFS=$BUILD/blobfs
TBLOB=$BUILD/tblob
BLOB_WRITE=$BUILD/tests/blob_write  # a writer of ours (tests/conformance/blob_write.cc)
PY=/usr/bin/python3   # Debian's python3 with numpy

_mounts=()
_pids=()
_tmpfs=()  # small filesystems a test mounted (disk-full tests)
_restore=()  # commands that put back a kernel setting a test changed

# on_exit CMD: runs CMD when the test ends, pass or fail (after unmounting).
on_exit() { _restore+=("$1"); }

# set_uring Y|N: sets the kernel's FUSE over io_uring switch for this test
# and puts the old value back when it ends. Fails where the kernel has none.
URING_KNOB=/sys/module/fuse/parameters/enable_uring
set_uring() {
  [[ -w $URING_KNOB ]] || fail "this kernel has no $URING_KNOB"
  on_exit "echo $(cat "$URING_KNOB") > $URING_KNOB"
  echo "$1" >"$URING_KNOB" || fail "cannot set $URING_KNOB"
}

# Unmount everything this test mounted, then kill and reap its daemons.
_cleanup() {
  local m p k
  for m in "${_mounts[@]+"${_mounts[@]}"}"; do
    if grep -q " $m fuse" /proc/mounts; then fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; fi
  done
  for p in "${_pids[@]+"${_pids[@]}"}"; do
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  for m in "${_tmpfs[@]+"${_tmpfs[@]}"}"; do umount -l "$m" 2>/dev/null; done
  for ((k = ${#_restore[@]} - 1; k >= 0; k--)); do eval "${_restore[k]}"; done
  [[ -n ${T:-} && -d $T ]] && rm -rf "$T"
}

fail() { echo "    $*" >&2; exit 1; }

is_mounted() { grep -q " $1 fuse.blobfs " /proc/mounts; }

# wait_until CMD...: retries CMD for up to 10 s.
wait_until() {
  for _ in $(seq 100); do "$@" && return 0; sleep 0.1; done
  return 1
}

# mount_fg SOURCE MNT [ARGS...]: starts blobfs -f in the background, logging
# to $T/blobfs.log, and waits for the mount. Sets PID.
mount_fg() {
  local src=$1 mnt=$2; shift 2
  mkdir -p "$mnt" 2>/dev/null  # fails harmlessly on a stale mount, which blobfs replaces
  _mounts+=("$mnt")
  "$BLOBFS" "$src" "$mnt" -f "$@" 2>>"$T/blobfs.log" &
  PID=$!
  _pids+=("$PID")
  wait_until is_mounted "$mnt" || { cat "$T/blobfs.log" >&2; fail "blobfs did not mount $src on $mnt"; }
  # The suite's run on the ring (run_tests.sh) checks that the ring carries it.
  if [[ ${BLOBFS_EXPECT_TRANSPORT:-} == uring && " $* " != *transport=dev* ]]; then
    grep -q "transport: io_uring" "$T/blobfs.log" || fail "not on io_uring: $(grep transport: "$T/blobfs.log")"
  fi
}

# make_blob DIR COUNT [DTYPE] [SHAPE] [BLOCK]: a blob whose element j of tensor i
# is (i * 1000 + j) in DTYPE, imported from $T/src_<name>.npy (kept for comparisons).
make_blob() {
  local dir=$1 n=$2 dt=${3:-float32} shape=${4:-4,3} block=${5:-7}
  local npy="$T/src_$(basename "$dir").npy"
  "$PY" - "$npy" "$n" "$dt" "$shape" <<'PY' || fail "could not write $npy"
import sys, numpy as np
path, n, dt, shape = sys.argv[1], int(sys.argv[2]), sys.argv[3], tuple(int(x) for x in sys.argv[4].split(",") if x)
per = int(np.prod(shape)) if shape else 1
a = (np.arange(n, dtype=np.int64)[:, None] * 1000 + np.arange(per)[None, :]).astype(dt).reshape((n,) + shape)
np.save(path, a)
PY
  "$TBLOB" create "$dir" --dtype "$dt" --shape "$shape" --block-size "$block" || fail "tblob create failed"
  "$TBLOB" import "$dir" "$npy" || fail "tblob import failed"
}

# py_write DIR FIRST N SALT: what Python tensorblob's writer does to a blob
# of make_blob's values: tensors FIRST..FIRST+N-1 := i * 1000 + j + SALT,
# written into their blocks where they stand (new blocks created as torch
# does), then .stat rewritten in place (open, truncate, write: same inode).
py_write() {
  "$PY" - "$@" <<'PY' || fail "py_write $*"
import json, math, os, sys, uuid, numpy as np
d, first, n, salt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
conf = json.load(open(f"{d}/.conf")); st = json.load(open(f"{d}/.stat"))
B, shape = conf["block_size"], tuple(conf["shape"])
per = math.prod(shape); dt = np.dtype({"int32": "<i4", "int64": "<i8", "float32": "<f4", "float64": "<f8"}[conf["dtype"]])
item = per * dt.itemsize
for i in range(first, first + n):
    b = i // B
    if b == len(st["bds"]):
        name = str(uuid.uuid4()); fd = os.open(f"{d}/{name}", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.ftruncate(fd, B * item); os.pwrite(fd, b"\0", 0); os.close(fd); st["bds"].append(name)
    row = (np.arange(per, dtype=np.int64) + i * 1000 + salt).astype(dt).tobytes()
    with open(f"{d}/{st['bds'][b]}", "r+b") as f:
        f.seek((i % B) * item); f.write(row)
st["len"] = max(st["len"], first + n)
with open(f"{d}/.stat", "w") as f:
    f.write(json.dumps({"len": st["len"], "bds": st["bds"]}, separators=(",", ":")))
PY
}

# small_fs DIR SIZE: a tmpfs of SIZE at DIR, unmounted on exit (disk-full tests).
small_fs() {
  mkdir -p "$1"
  mount -t tmpfs -o size="$2" tmpfs "$1" || fail "cannot mount a tmpfs at $1"
  _tmpfs+=("$1")
}

# free_port: a TCP port nothing listens on now.
free_port() {
  "$PY" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}

# metric PORT NAME: the value of one sample (NAME with its labels, as
# written) scraped from blobfs's metrics endpoint on PORT; empty if absent.
metric() {
  "$PY" - "$1" "$2" <<'PY' 2>/dev/null
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
for line in text.splitlines():
    name, _, value = line.rpartition(" ")
    if name == sys.argv[2]:
        print(value)
PY
}

# metrics PORT: the whole exposition (for failure messages).
metrics() { "$PY" -c "import sys, urllib.request; print(urllib.request.urlopen(f'http://127.0.0.1:{sys.argv[1]}/metrics', timeout=5).read().decode())" "$1" 2>&1; }

run_tests() {
  local passed=0 failed=0 t
  # TESTS_MATCH picks tests by name (e.g. the load test alone, for longer).
  for t in $(declare -F | awk '{print $3}' | grep "^test_.*${TESTS_MATCH:-}"); do
    if ( T=$(mktemp -d /tmp/blobfs-test.XXXXXX); trap _cleanup EXIT; "$t" ); then
      passed=$((passed + 1)); echo "ok   ${t#test_}"
    else
      failed=$((failed + 1)); echo "FAIL ${t#test_}"
    fi
  done
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 ]]
}
