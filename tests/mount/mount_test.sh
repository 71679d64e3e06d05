#!/usr/bin/env bash
# Tests that really mount blobs and read them with real clients: ls, stat,
# cat, cmp, dd, python3 with numpy. See lib.sh for the cleanup guarantees.
source "$(dirname "$0")/../lib.sh"

test_ls_lists_every_tensor_and_the_fixed_files() {
  make_blob "$T/b" 25
  mount_fg "$T/b" "$T/m"
  local n
  n=$(ls -f "$T/m" | wc -l)
  [[ $n -eq 30 ]] || fail "ls -f shows $n entries, want 25 tensors + meta.yaml, all.bin, all.npy, ., .."
  [[ $(ls "$T/m" | head -4 | tr '\n' ' ') == "000000.bin 000001.bin 000002.bin 000003.bin " ]] || fail "ls order: $(ls "$T/m" | head -4)"
  ls "$T/m" | grep -qx 000024.bin || fail "last tensor missing"
  ls "$T/m" | grep -qx 000025.bin && fail "one past the end listed"
  for f in meta.yaml all.bin all.npy; do [[ -f $T/m/$f ]] || fail "$f missing"; done
  true
}

test_stat_shows_sizes_modes_and_owner() {
  make_blob "$T/b" 10  # float32 (4,3): 48 bytes a tensor
  mount_fg "$T/b" "$T/m"
  [[ $(stat -c '%s %a %F' "$T/m/000003.bin") == "48 444 regular file" ]] || fail "tensor: $(stat -c '%s %a %F' "$T/m/000003.bin")"
  [[ $(stat -c %s "$T/m/all.bin") == 480 ]] || fail "all.bin size $(stat -c %s "$T/m/all.bin")"
  [[ $(stat -c %s "$T/m/000002-000005.bin") == 144 ]] || fail "range size"
  [[ $(stat -c '%a %F' "$T/m") == "555 directory" ]] || fail "root: $(stat -c '%a %F' "$T/m")"
  [[ $(stat -c %u "$T/m/000000.bin") == "$(id -u)" ]] || fail "owner"
  local ino1 ino2
  ino1=$(stat -c %i "$T/m/000007.bin"); ino2=$(stat -c %i "$T/m/000007.bin")
  [[ $ino1 == "$ino2" && $ino1 != $(stat -c %i "$T/m/000008.bin") ]] || fail "inode numbers not stable and distinct"
  local mt
  mt=$(stat -c %Y "$T/b/.stat")
  [[ $(stat -c %Y "$T/m/000000.bin") == "$mt" ]] || fail "mtime is not the blob's commit time"
}

test_cat_of_every_tensor_matches_the_library() {
  make_blob "$T/b" 40 int16 5 6
  mount_fg "$T/b" "$T/m"
  local i name
  for i in $(seq 0 39); do
    name=$(printf '%06d.bin' "$i")
    cmp -s <("$TBLOB" cat "$T/b" "$i") "$T/m/$name" || fail "$name differs from tblob cat"
  done
  cmp -s <(for i in $(seq 0 39); do "$TBLOB" cat "$T/b" "$i"; done) "$T/m/all.bin" || fail "all.bin differs"
  cat "$T/m/meta.yaml" | grep -qx 'count: 40' || fail "meta.yaml: $(cat "$T/m/meta.yaml")"
  grep -qx 'dtype: int16' "$T/m/meta.yaml" || fail "meta.yaml dtype"
  diff <("$TBLOB" info "$T/b") "$T/m/meta.yaml" || fail "meta.yaml differs from tblob info"
}

test_dd_with_bs_skip_count_on_all_bin() {
  make_blob "$T/b" 100 float32 16 9   # 64-byte tensors, blocks of 9
  mount_fg "$T/b" "$T/m"
  "$TBLOB" export "$T/b" "$T/all.npy"
  tail -c 6400 "$T/all.npy" > "$T/expect.bin"
  local bs skip count
  for spec in "64 0 100" "64 13 7" "100 3 10" "4096 1 1" "1 6399 5" "1M 0 1" "7 900 3"; do
    read -r bs skip count <<<"$spec"
    dd if="$T/m/all.bin" of="$T/got" bs="$bs" skip="$skip" count="$count" status=none || fail "dd $spec failed"
    dd if="$T/expect.bin" of="$T/want" bs="$bs" skip="$skip" count="$count" status=none
    cmp -s "$T/got" "$T/want" || fail "dd bs=$bs skip=$skip count=$count differs"
  done
}

test_range_files_and_their_bounds() {
  make_blob "$T/b" 20
  mount_fg "$T/b" "$T/m"
  cmp -s "$T/m/000000-000020.bin" "$T/m/all.bin" || fail "0-20 is not all.bin"
  cmp -s "$T/m/000005-000008.bin" <(cat "$T/m/000005.bin" "$T/m/000006.bin" "$T/m/000007.bin") || fail "5-8 differs"
  [[ $(stat -c %s "$T/m/000007-000007.bin") == 0 ]] || fail "empty range not empty"
  [[ -e $T/m/000019-000020.bin ]] || fail "range ending at count missing"
  for bad in 000000-000021.bin 000008-000005.bin 5-8.bin 000005-8.bin 000005-000008.BIN; do
    [[ -e $T/m/$bad ]] && fail "$bad exists"
  done
  ls "$T/m" | grep -q -- - && fail "ranges must not be listed"
  true
}

test_numpy_reads_tensor_files_npy_views_and_mmap() {
  make_blob "$T/b" 50 float64 2,3 8
  mount_fg "$T/b" "$T/m"
  "$PY" - "$T/m" "$T/src_b.npy" <<'PY' || fail "numpy checks failed"
import sys, numpy as np
m, src = sys.argv[1], np.load(sys.argv[2])
for i in range(50):
    t = np.fromfile(f"{m}/{i:06d}.bin", dtype=np.float64).reshape(2, 3)
    assert (t == src[i]).all(), i
    assert (np.load(f"{m}/{i:06d}.npy") == src[i]).all(), i
a = np.load(f"{m}/all.npy", mmap_mode="r")
assert a.shape == (50, 2, 3) and a.dtype == np.float64, (a.shape, a.dtype)
assert (a == src).all()
r = np.load(f"{m}/000010-000030.npy", mmap_mode="r")
assert r.shape == (20, 2, 3) and (r == src[10:30]).all()
one = np.load(f"{m}/000049.npy", mmap_mode="r")
assert one.shape == (2, 3) and (one == src[49]).all()
with open(f"{m}/000003.npy", "rb") as f:
    assert f.read(6) == b"\x93NUMPY"
PY
}

test_bool_and_scalar_blobs_load_in_numpy() {
  "$PY" -c "import numpy as np; np.save('$T/s.npy', (np.arange(9)*-7).astype(np.int16)); np.save('$T/b.npy', np.arange(12).reshape(4,3)%3==0)"
  "$TBLOB" import "$T/scalar" "$T/s.npy" --create --dtype int16 --shape '' || fail "scalar import"
  "$TBLOB" import "$T/bools" "$T/b.npy" --create || fail "bool import"
  mount_fg "$T/scalar" "$T/ms"
  mount_fg "$T/bools" "$T/mb"
  "$PY" - "$T" <<'PY' || fail "numpy checks failed"
import sys, numpy as np
t = sys.argv[1]
s = np.load(f"{t}/ms/000004.npy")
assert s.shape == () and s == -28, s
assert (np.load(f"{t}/ms/all.npy") == np.load(f"{t}/s.npy")).all()
b = np.load(f"{t}/mb/all.npy", mmap_mode="r")
assert b.dtype == np.bool_ and (b == np.load(f"{t}/b.npy")).all()
PY
}

test_bfloat16_has_no_npy_views() {
  "$TBLOB" create "$T/b" --dtype bfloat16 --shape 2 || fail "create"
  "$PY" -c "import numpy as np; np.arange(6, dtype=np.uint16).tofile('$T/raw')"
  "$TBLOB" import "$T/b" "$T/raw" --dtype bfloat16 --shape 2 || fail "raw import"
  mount_fg "$T/b" "$T/m"
  [[ -e $T/m/all.npy || -e $T/m/000000.npy ]] && fail ".npy views exist for bfloat16"
  [[ $(stat -c %s "$T/m/000002.bin") == 4 ]] || fail "bin size"
  grep -q "no: numpy has no dtype bfloat16" "$T/m/meta.yaml" || fail "meta.yaml does not say why"
  true
}

test_error_table_erofs_enoent_enametoolong() {
  make_blob "$T/b" 5
  mount_fg "$T/b" "$T/m"
  "$PY" - "$T/m" <<'PY' || fail "errno checks failed"
import errno, os, sys
m = sys.argv[1]
def expect(err, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        assert e.errno == err, (fn.__name__, args, errno.errorcode[e.errno])
        return
    raise AssertionError(f"{fn.__name__}{args} succeeded")
f = f"{m}/000001.bin"
expect(errno.EROFS, os.open, f, os.O_WRONLY)
expect(errno.EROFS, os.open, f, os.O_RDWR)
expect(errno.EROFS, os.open, f"{m}/new.bin", os.O_WRONLY | os.O_CREAT)
expect(errno.EROFS, os.unlink, f)
expect(errno.EROFS, os.rename, f, f"{m}/x.bin")
expect(errno.EROFS, os.mkdir, f"{m}/d")
expect(errno.EROFS, os.rmdir, m + "/d")
expect(errno.EROFS, os.chmod, f, 0o644)
expect(errno.EROFS, os.truncate, f, 0)
expect(errno.EROFS, os.symlink, f, f"{m}/l")
expect(errno.EROFS, os.link, f, f"{m}/h")
expect(errno.EROFS, os.utime, f, (0, 0))
expect(errno.EROFS, os.setxattr, f, "user.x", b"1")
for bad in ["123.bin", "0000001.bin", "+00001.bin", "-1.bin", "000001.BIN", "000005.bin", "nope", "000001.bin/x"]:
    expect(errno.ENOENT if "/" not in bad else errno.ENOTDIR, os.stat, f"{m}/{bad}")
expect(errno.ENAMETOOLONG, os.stat, f"{m}/" + "1" * 256)
expect(errno.ENAMETOOLONG, os.stat, f"{m}/" + "0" * 252 + ".bin")
with open(f, "rb") as fh:
    fh.seek(48)
    assert fh.read() == b""
    assert os.pread(fh.fileno(), 10, 1000) == b""
PY
}

test_truncated_block_gives_eio_only_there() {
  # 1 KiB tensors, blocks of 7: the damaged block is bytes [7 KiB, 14 KiB) of
  # all.bin, so reads of all.bin that share no page with it still work.
  make_blob "$T/b" 30 float32 256 7
  local block
  block=$("$PY" -c "import json; print(json.load(open('$T/b/.stat'))['bds'][1])")  # tensors 7..13
  truncate -s 100 "$T/b/$block"
  mount_fg "$T/b" "$T/m"
  cat "$T/m/000009.bin" >/dev/null 2>"$T/err" && fail "reading a tensor of the truncated block succeeded"
  grep -q "Input/output error" "$T/err" || fail "expected EIO, got: $(cat "$T/err")"
  cat "$T/m/000013.bin" >/dev/null 2>&1 && fail "tensor 13 read"
  for i in 0 6 14 29; do
    cmp -s <("$TBLOB" cat "$T/b" "$i") "$T/m/$(printf '%06d' "$i").bin" || fail "tensor $i no longer reads"
  done
  dd if="$T/m/all.bin" bs=1024 skip=8 count=1 of=/dev/null status=none 2>/dev/null && fail "all.bin range over the block read"
  dd if="$T/m/all.bin" bs=1024 skip=20 count=5 of="$T/got" status=none || fail "all.bin elsewhere failed"
  cmp -s "$T/got" <(for i in 20 21 22 23 24; do "$TBLOB" cat "$T/b" $i; done) || fail "all.bin elsewhere differs"
  cat "$T/m/000010.bin" >/dev/null 2>&1
  [[ $(grep -c "$block" "$T/blobfs.log") -eq 1 ]] || fail "want one log line naming $block, got: $(cat "$T/blobfs.log")"
  is_mounted "$T/m" || fail "daemon died"
}

test_block_truncated_while_mounted_gives_eio_and_the_daemon_lives() {
  make_blob "$T/b" 40 float32 1024 8   # 4 KiB tensors, 32 KiB blocks
  mount_fg "$T/b" "$T/m"
  cat "$T/m/000001.bin" >/dev/null || fail "first read"   # block 0 is now mapped
  local block
  block=$("$PY" -c "import json; print(json.load(open('$T/b/.stat'))['bds'][0])")
  truncate -s 8192 "$T/b/$block"                            # tensors 2..7 vanish under the mapping
  cat "$T/m/000005.bin" >/dev/null 2>"$T/err" && fail "a vanished tensor read"
  grep -q "Input/output error" "$T/err" || fail "expected EIO: $(cat "$T/err")"
  # Cut inside a mapped page (block 1, tensor 9 at 4-8 KiB): the kernel
  # zero-fills the rest of that page instead of faulting, so only checking
  # the file's size after the copy keeps those zeros from being served.
  local block1
  block1=$("$PY" -c "import json; print(json.load(open('$T/b/.stat'))['bds'][1])")
  cat "$T/m/000009.bin" >/dev/null || fail "tensor 9"       # maps block 1
  truncate -s 6000 "$T/b/$block1"
  echo 3 > /proc/sys/vm/drop_caches                         # make the kernel ask the daemon again
  cat "$T/m/000009.bin" >/dev/null 2>&1 && fail "tensor 9 read with zeros where its cut bytes were"
  kill -0 "$PID" 2>/dev/null || fail "the daemon died (SIGBUS?)"
  cmp -s "$T/m/000020.bin" <("$TBLOB" cat "$T/b" 20) || fail "another block no longer reads"
  grep -q "$block" "$T/blobfs.log" || fail "no log line naming $block"
  # Deleted, and replaced by a directory, while mounted, before the daemon
  # mapped them. (A block already mapped keeps serving its bytes when its
  # file is deleted: the mapping holds the old inode, and the data is right.)
  local b2 b3
  b2=$("$PY" -c "import json; print(json.load(open('$T/b/.stat'))['bds'][3])")
  b3=$("$PY" -c "import json; print(json.load(open('$T/b/.stat'))['bds'][4])")
  rm "$T/b/$b2"
  rm "$T/b/$b3" && mkdir "$T/b/$b3"
  cat "$T/m/000025.bin" >/dev/null 2>&1 && fail "a tensor of a deleted block read"
  cat "$T/m/000033.bin" >/dev/null 2>&1 && fail "a tensor of a block replaced by a directory read"
  kill -0 "$PID" 2>/dev/null || fail "the daemon died"
  cmp -s "$T/m/000022.bin" <("$TBLOB" cat "$T/b" 22) || fail "an intact block no longer reads"
  grep -q "$b2: block file listed in .stat is missing" "$T/blobfs.log" || fail "no log line for the deleted block"
  grep -q "$b3: block file is not a regular file" "$T/blobfs.log" || fail "no log line for the directory"
}

test_security_posture_read_only_no_allow_other_modes_from_config() {
  make_blob "$T/b" 3
  mount_fg "$T/b" "$T/plain"
  local opts
  opts=$(awk -v m="$T/plain" '$2 == m {print $4}' /proc/mounts)
  [[ ,$opts, == *,ro,* ]] || fail "not read-only: $opts"
  [[ ,$opts, == *,allow_other,* ]] && fail "allow_other without being asked: $opts"
  [[ ,$opts, == *,default_permissions,* ]] || fail "no default_permissions: $opts"
  mount_fg "$T/b" "$T/shared" -o allow_other,file_mode=0440,dir_mode=0550,uid=1234,gid=99
  opts=$(awk -v m="$T/shared" '$2 == m {print $4}' /proc/mounts)
  [[ ,$opts, == *,allow_other,* && ,$opts, == *,default_permissions,* ]] || fail "allow_other without default_permissions: $opts"
  [[ $(stat -c '%a %u %g' "$T/shared/000001.bin") == "440 1234 99" ]] || fail "file: $(stat -c '%a %u %g' "$T/shared/000001.bin")"
  [[ $(stat -c '%a' "$T/shared") == 550 ]] || fail "dir mode"
  # As an unprivileged user, default_permissions applies those modes.
  if id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
    setpriv --reuid=nobody --regid=nogroup --clear-groups cat "$T/shared/000001.bin" >/dev/null 2>&1 &&
      fail "nobody read a 0440 file owned by 1234:99"
    true
  fi
}

test_ragged_files_truncated_while_mounted_give_eio() {
  "$PY" -c "import numpy as np; [np.save('$T/i%02d.npy' % i, np.full((512 + i, 8), i, np.float32)) for i in range(40)]"
  "$TBLOB" build "$T/d" "$T"/i*.npy || fail "build"
  "$TBLOB" cat "$T/d" 20 > "$T/want20"
  mount_fg "$T/d" "$T/m"
  cat "$T/m/000001.bin" >/dev/null || fail "first read"
  # The row offsets were copied at mount: cutting the starts file changes nothing served.
  truncate -s 128 "$T/d.starts.npy"
  cmp -s "$T/m/000020.bin" "$T/want20" || fail "item 20 changed after its starts file was cut"
  truncate -s 4096 "$T/d.dat"                  # data past the first page vanishes
  cat "$T/m/000030.bin" >/dev/null 2>&1 && fail "an item past the truncation read"
  truncate -s 2000 "$T/d.dat"                  # cut inside the first page: the rest of it reads as zeros
  echo 3 > /proc/sys/vm/drop_caches 2>/dev/null
  cat "$T/m/000000.bin" >/dev/null 2>&1 && fail "item 0 read with zeros where its cut bytes were"
  kill -0 "$PID" 2>/dev/null || fail "the daemon died (SIGBUS?)"
  grep -q "d.dat: data file shrank while it was read" "$T/blobfs.log" || fail "no log line for the data file: $(cat "$T/blobfs.log")"
}

test_bad_config_is_refused_before_mounting() {
  make_blob "$T/b" 3
  mkdir -p "$T/m"
  printf 'threads: 4\nnaming_wdith: 8\n' > "$T/bad.yaml"
  local out rc
  out=$("$BLOBFS" "$T/b" "$T/m" --config "$T/bad.yaml" 2>&1); rc=$?
  [[ $rc -eq 2 ]] || fail "exit $rc for a bad config"
  [[ $out == *"bad.yaml:2: unknown option 'naming_wdith'"* ]] || fail "message: $out"
  out=$("$BLOBFS" "$T/b" "$T/m" -o threads=0 2>&1); rc=$?
  [[ $rc -eq 2 && $out == *"threads: 0 is out of range"* ]] || fail "-o threads=0: $rc $out"
  out=$("$BLOBFS" "$T/b" "$T/m" --config "$T/missing.yaml" 2>&1); rc=$?
  [[ $rc -eq 2 && $out == *"missing.yaml: cannot read"* ]] || fail "missing config: $rc $out"
  out=$("$BLOBFS" "$T/nonexistent" "$T/m" 2>&1); rc=$?
  [[ $rc -eq 3 && $out == *"nonexistent: no such blob"* ]] || fail "missing source: $rc $out"
  out=$("$BLOBFS" "$T/b" "$T/nodir" 2>&1); rc=$?
  [[ $rc -eq 2 && $out == *"mountpoint is not a directory"* ]] || fail "missing mountpoint: $rc $out"
  is_mounted "$T/m" && fail "a mount was left behind"
  pgrep -f "[b]lobfs $T" && fail "a daemon was left behind"
  true
}

test_sigterm_and_sigint_unmount_cleanly() {
  make_blob "$T/b" 3
  local sig
  for sig in TERM INT; do
    mount_fg "$T/b" "$T/m_$sig"
    kill -"$sig" "$PID"
    wait_until bash -c "! kill -0 $PID 2>/dev/null" || fail "daemon ignored SIG$sig"
    wait "$PID"; local rc=$?
    [[ $rc -eq 0 ]] || fail "daemon exited $rc after SIG$sig"
    is_mounted "$T/m_$sig" && fail "mount left after SIG$sig"
    ls "$T/m_$sig" >/dev/null 2>&1 || fail "mountpoint broken after SIG$sig (transport endpoint not connected?)"
  done
  true
}

test_restart_after_a_killed_daemon_replaces_its_stale_mount() {
  make_blob "$T/b" 3
  mount_fg "$T/b" "$T/m"
  kill -KILL "$PID"
  wait "$PID" 2>/dev/null
  ls "$T/m" >/dev/null 2>&1 && fail "expected a stale mount after SIGKILL"
  "$BLOBFS" "$T/b" "$T/m" -f 2>>"$T/blobfs.log" &
  _pids+=("$!")
  # /proc/mounts lists the stale mount too, and between its removal and the
  # new mount the bare directory answers: wait until a tensor file does.
  wait_until test -f "$T/m/000001.bin" || fail "no new mount over the stale one"
  cmp -s "$T/m/000001.bin" <("$TBLOB" cat "$T/b" 1) || fail "remounted blob does not read"
  grep -q "removing the stale mount" "$T/blobfs.log" || fail "no log line about the stale mount"
}

test_dash_d_traces_fuse_requests() {
  make_blob "$T/b" 3
  mount_fg "$T/b" "$T/m" -d
  cat "$T/m/000001.bin" >/dev/null || fail "read"
  grep -q "opcode: INIT" "$T/blobfs.log" || fail "no request trace with -d: $(head -5 "$T/blobfs.log")"
  grep -q "opcode: READ" "$T/blobfs.log" || fail "reads not traced"
}

test_ls_l_gets_attributes_with_the_listing_not_a_lookup_per_file() {
  make_blob "$T/b" 300  # float32 (4,3): 48 bytes a tensor
  mount_fg "$T/b" "$T/m" -d
  local sizes
  sizes=$(ls -l "$T/m" | awk '$NF ~ /^[0-9]+\.bin$/ {print $5}' | sort | uniq -c | awk '{print $1 "x" $2}')
  [[ $sizes == "300x48" ]] || fail "ls -l sizes of the tensor files: $sizes"
  grep -q "opcode: READDIRPLUS" "$T/blobfs.log" || fail "no READDIRPLUS in the trace"
  local lookups
  lookups=$(grep -c "opcode: LOOKUP" "$T/blobfs.log" || true)
  # ls -l itself may look up a name or two (the directory's own ACL probes);
  # one per file would be 300.
  ((lookups < 10)) || fail "$lookups LOOKUPs for ls -l of 300 files"
  stat "$T/m/000299.bin" >/dev/null && cat "$T/m/000123.bin" | cmp - <("$TBLOB" cat "$T/b" 123) || fail "read after listing"
}

test_fusermount_u_ends_the_daemon() {
  make_blob "$T/b" 3
  mount_fg "$T/b" "$T/m"
  fusermount3 -u "$T/m" || fail "fusermount3 -u failed"
  wait_until bash -c "! kill -0 $PID 2>/dev/null" || fail "daemon still running after fusermount3 -u"
  wait "$PID" || fail "daemon exit code $?"
}

test_daemon_mode_returns_once_the_mount_is_ready() {
  make_blob "$T/b" 4
  mkdir -p "$T/m"
  _mounts+=("$T/m")
  "$BLOBFS" "$T/b" "$T/m" 2>"$T/blobfs.log" || fail "blobfs exited $?"
  is_mounted "$T/m" || fail "not mounted when blobfs returned"
  cmp -s "$T/m/000002.bin" <("$TBLOB" cat "$T/b" 2) || fail "read after daemon mount"
  local pid
  pid=$(pgrep -f "^$BLOBFS $T/b $T/m$") || fail "no daemon process"
  _pids+=("$pid")
  fusermount3 -u "$T/m"
  wait_until bash -c "! kill -0 $pid 2>/dev/null" || fail "daemon survived unmount"
}

test_fstab_style_mount_through_mount_fuse3() {
  make_blob "$T/b" 6
  mkdir -p "$T/m" "$T/bin"
  _mounts+=("$T/m")
  ln -s "$BLOBFS" "$T/bin/blobfs"
  # What mount(8) runs for an fstab line "SOURCE MNT fuse.blobfs OPTIONS 0 0".
  # (mount(8) itself would look blobfs up in its own fixed PATH, where
  # `make install` puts it; this test uses the build instead.)
  PATH="$T/bin:$PATH" mount.fuse3 "$T/b" "$T/m" -t blobfs -o ro,nosuid,nodev,naming_width=4,allow_other 2>"$T/err" ||
    fail "mount.fuse3 failed: $(cat "$T/err")"
  is_mounted "$T/m" || fail "not mounted"
  [[ -f $T/m/0003.bin ]] || fail "naming_width=4 not applied: $(ls "$T/m" | head -3)"
  grep " $T/m " /proc/mounts | grep -q allow_other || fail "allow_other not in the mount options"
  umount "$T/m" || fail "umount failed"
  wait_until bash -c "! pgrep -f '[b]lobfs $T/b' >/dev/null" || fail "daemon survived umount"
}

test_systemd_readiness_is_sent_once_mounted() {
  make_blob "$T/b" 4
  mkdir -p "$T/m"
  _mounts+=("$T/m")
  # A stand-in for systemd's notify socket: records each datagram and whether
  # the mount was up when READY=1 arrived.
  "$PY" - "$T/notify.sock" "$T/m" > "$T/notify.out" <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
msg = s.recv(4096).decode()
mounted = any(l.split()[1] == sys.argv[2] for l in open("/proc/mounts"))
print(msg.strip(), "mounted" if mounted else "not-mounted", flush=True)
PY
  local listener=$!
  _pids+=("$listener")
  wait_until test -S "$T/notify.sock" || fail "listener did not start"
  NOTIFY_SOCKET="$T/notify.sock" "$BLOBFS" "$T/b" "$T/m" -f 2>>"$T/blobfs.log" &
  _pids+=("$!")
  wait "$listener"
  grep -qx "READY=1 mounted" "$T/notify.out" || fail "notify got: $(cat "$T/notify.out")"
}

test_ten_million_tensors_list_with_flat_daemon_memory() {
  "$PY" -c "import numpy as np; np.save('$T/s.npy', np.arange(10_000_000, dtype=np.int32))"
  "$TBLOB" import "$T/b" "$T/s.npy" --create --dtype int32 --shape '' || fail "import"
  rm -f "$T/s.npy"
  mount_fg "$T/b" "$T/m"
  local n rss
  n=$(ls -f "$T/m" | wc -l)
  [[ $n -eq 10000005 ]] || fail "ls -f listed $n entries"
  [[ $(od -An -tu4 "$T/m/9999999.bin" | tr -d ' ') == 9999999 ]] || fail "last tensor wrong"
  [[ -e $T/m/10000000.bin ]] && fail "one past the end exists"
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
  if [[ -n ${TBLOB_SANITIZED:-} ]]; then
    echo "    (sanitizer build: RSS ${rss} KiB not checked, ASan's shadow and quarantine dominate it)" >&2
    return 0
  fi
  [[ $rss -lt 65536 ]] || fail "daemon RSS ${rss} KiB after listing, want < 64 MiB"
  echo "    10M tensors: daemon RSS ${rss} KiB after ls -f" >&2
}

test_systemd_unit_command_mounts_from_its_yaml() {
  # The unit's own ExecStart, with %i and the binary path filled in as
  # `make install` and systemd would, run under a stand-in notify socket.
  make_blob "$T/b" 5
  mkdir -p "$T/m" "$T/etc"
  _mounts+=("$T/m")
  printf 'source: %s\nmountpoint: %s\nnaming_width: 3\n' "$T/b" "$T/m" > "$T/etc/demo.yaml"
  local exec
  exec=$(sed -n 's/^ExecStart=//p' "$ROOT/systemd/blobfs@.service")
  [[ -n $exec ]] || fail "no ExecStart in the unit"
  exec=${exec//\/usr\/local\/bin\/blobfs/$BLOBFS}
  exec=${exec//\/etc\/blobfs\/%i.yaml/$T/etc/demo.yaml}
  grep -qx 'Type=notify' "$ROOT/systemd/blobfs@.service" || fail "unit is not Type=notify"
  "$PY" - "$T/notify.sock" > "$T/notify.out" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); s.settimeout(20)
print(s.recv(4096).decode().strip(), flush=True)
PY
  local listener=$!
  _pids+=("$listener")
  wait_until test -S "$T/notify.sock" || fail "listener did not start"
  NOTIFY_SOCKET="$T/notify.sock" $exec 2>>"$T/blobfs.log" &
  local daemon=$!
  _pids+=("$daemon")
  wait "$listener"
  grep -qx "READY=1" "$T/notify.out" || fail "no READY=1: $(cat "$T/notify.out")"
  [[ -f $T/m/004.bin ]] || fail "config not applied: $(ls "$T/m" | head -3)"
  kill -TERM "$daemon"
  wait "$daemon" || fail "daemon exited $? on SIGTERM (systemctl stop)"
  is_mounted "$T/m" && fail "still mounted after stop"
  true
}

PICO=$ROOT/tests/conformance/picomap

# Seconds the 16-reader load test runs (the stress benchmark runs longer).
STRESS_SECONDS=${STRESS_SECONDS:-3}

test_sixteen_readers_get_exact_bytes_and_the_daemon_stays_flat() {
  make_blob "$T/b" 3000 float32 256 64   # 1 KiB tensors, 47 blocks
  mount_fg "$T/b" "$T/m"
  local before after
  before=$(awk '/RssAnon/ {print $2}' "/proc/$PID/status")
  "$PY" - "$T/m" "$T/src_b.npy" "$STRESS_SECONDS" <<'PY' || fail "readers saw errors or wrong bytes"
import multiprocessing as mp, os, random, sys, time
import numpy as np
m, src, seconds = sys.argv[1], np.load(sys.argv[2]), float(sys.argv[3])
raw = src.tobytes()
n, item = src.shape[0], src[0].nbytes

def reader(seed):
    rng = random.Random(seed)
    ops = bad = 0
    end = time.time() + seconds
    allfd = os.open(f"{m}/all.bin", os.O_RDONLY)
    while time.time() < end:
        kind = rng.randrange(4)
        i = rng.randrange(n)
        if kind == 0:                       # pread inside one tensor file
            off = rng.randrange(item); ln = rng.randrange(1, item - off + 1)
            fd = os.open(f"{m}/{i:06d}.bin", os.O_RDONLY)
            got = os.pread(fd, ln, off); os.close(fd)
            want = raw[i * item + off: i * item + off + ln]
        elif kind == 1:                     # a range of all.bin
            off = rng.randrange(len(raw)); ln = rng.randrange(1, 200_000)
            got = os.pread(allfd, ln, off); want = raw[off: off + ln]
        elif kind == 2:                     # a per-tensor .npy
            got = np.load(f"{m}/{i:06d}.npy").tobytes(); want = raw[i * item:(i + 1) * item]
        else:                               # a range .npy, memory-mapped
            j = min(n, i + rng.randrange(1, 50))
            got = np.load(f"{m}/{i:06d}-{j:06d}.npy", mmap_mode="r").tobytes(); want = raw[i * item: j * item]
        ops += 1
        bad += got != want
    os.close(allfd)
    return ops, bad

with mp.Pool(16) as pool:
    results = pool.map(reader, range(16))
ops = sum(r[0] for r in results); bad = sum(r[1] for r in results)
print(f"    16 readers, {seconds:g} s: {ops} reads, {bad} mismatches", file=sys.stderr)
sys.exit(1 if bad or ops < 16 else 0)
PY
  kill -0 "$PID" || fail "daemon died under load"
  after=$(awk '/RssAnon/ {print $2}' "/proc/$PID/status")
  echo "    daemon RssAnon ${before} KiB before, ${after} KiB after" >&2
  if [[ -z ${TBLOB_SANITIZED:-} ]]; then
    (( after - before < 16384 )) || fail "daemon memory grew from ${before} to ${after} KiB"
  fi
  ! grep -q "error" "$T/blobfs.log" || fail "errors logged: $(cat "$T/blobfs.log")"
}

test_two_hundred_mounts_in_a_row_leave_nothing_behind() {
  make_blob "$T/b" 50
  mkdir -p "$T/m"
  _mounts+=("$T/m")
  local i
  for i in $(seq 200); do
    "$BLOBFS" "$T/b" "$T/m" 2>>"$T/blobfs.log" || fail "mount $i failed"
    [[ -f $T/m/000049.bin ]] || fail "mount $i does not serve"
    fusermount3 -u "$T/m" || fail "unmount $i failed"
  done
  wait_until bash -c "! pgrep -f '[b]lobfs $T/b' >/dev/null" || fail "daemons left: $(pgrep -af "[b]lobfs $T/b" | head -3)"
  grep -q " $T/m " /proc/mounts && fail "a mount was left"
  # Detached daemons log to syslog; each start says "mounted" on stderr first.
  [[ $(grep -c "^blobfs: info: mounted" "$T/blobfs.log") -eq 200 ]] || fail "not 200 mounts logged"
  [[ $(grep -c "^blobfs: info: transport: " "$T/blobfs.log") -eq 200 ]] || fail "not 200 transport lines logged"
  ! grep -v "^blobfs: info: transport: " "$T/blobfs.log" | grep -vq "^blobfs: info: mounted" ||
    fail "unexpected log lines: $(grep -v '^blobfs: info: \(mounted\|transport: \)' "$T/blobfs.log" | head -3)"
}

test_disk_full_during_import_and_build_keeps_the_last_committed_state() {
  small_fs "$T/small" 2m
  "$PY" -c "
import numpy as np
np.save('$T/ok.npy', np.ones((100, 256), np.float32))       # 100 KiB
np.save('$T/big.npy', np.ones((4000, 256), np.float32))     # 4 MiB: does not fit
"
  "$TBLOB" import "$T/small/b" "$T/ok.npy" --create --block-size 64 || fail "first import"
  expect_fail_with() { local out; out=$("$@" 2>&1) && fail "$* succeeded on a full disk"; [[ $out == *"No space left on device"* ]] || fail "$*: $out"; }
  expect_fail_with "$TBLOB" import "$T/small/b" "$T/big.npy"
  # The block that did not fit is named: its space is reserved when it is added.
  local out; out=$("$TBLOB" import "$T/small/b" "$T/big.npy" 2>&1)
  [[ $out == *"$T/small/b/"*": fallocate: No space left on device"* ]] || fail "full disk not reported at the new block: $out"
  "$TBLOB" info "$T/small/b" | grep -qx "count: 100" || fail "blob lost its committed contents: $("$TBLOB" info "$T/small/b" 2>&1)"
  "$TBLOB" verify "$T/small/b" >/dev/null || fail "blob does not verify after the failed import"
  cmp -s <("$TBLOB" cat "$T/small/b" 99) <("$PY" -c "import numpy as np, sys; sys.stdout.buffer.write(np.load('$T/ok.npy')[99].tobytes())") ||
    fail "tensor 99 changed"
  "$TBLOB" build "$T/small/d" "$T/ok.npy" || fail "first build"
  expect_fail_with "$TBLOB" build "$T/small/d" "$T/ok.npy" "$T/big.npy"
  "$TBLOB" verify "$T/small/d" >/dev/null || fail "dataset damaged by the failed build"
  "$TBLOB" info "$T/small/d" | grep -qx "count: 1" || fail "dataset changed"
  ls "$T/small" | grep -q '\.tmp$' && fail "temporaries left on the full disk: $(ls "$T/small")"
  true
}

test_ragged_dataset_mounts_with_per_item_sizes_and_shapes() {
  local name
  for name in f32_ragged u8_img f4_bigendian f16_1d; do
    mount_fg "$PICO/$name" "$T/m_$name"
  done
  mount_fg "$PICO/empty.json" "$T/m_empty"
  "$PY" - "$T" "$PICO" <<'PY' || fail "numpy checks failed"
import os, sys, numpy as np
t, p = sys.argv[1], sys.argv[2]
for name, n in [("f32_ragged", 5), ("u8_img", 3), ("f4_bigendian", 2), ("f16_1d", 4)]:
    m = f"{t}/m_{name}"
    items = [np.load(f"{p}/inputs/{name}/item_{i:04d}.npy") for i in range(n)]
    # The first look at a fresh mount: a listing that stats (READDIRPLUS) must show per-item sizes.
    sizes = {e.name: e.stat().st_size for e in os.scandir(m)}
    assert [sizes[f"{i:06d}.bin"] for i in range(n)] == [it.nbytes for it in items], (name, sizes)
    assert sorted(os.listdir(m))[:n] == [f"{i:06d}.bin" for i in range(n)], os.listdir(m)
    for i, it in enumerate(items):
        assert os.path.getsize(f"{m}/{i:06d}.bin") == it.nbytes, (name, i)
        got = np.load(f"{m}/{i:06d}.npy")
        assert got.shape == it.shape and got.dtype == it.dtype and (got == it).all(), (name, i, got.shape)
        assert (np.fromfile(f"{m}/{i:06d}.bin", dtype=it.dtype).reshape(it.shape) == it).all()
    allv = np.load(f"{m}/all.npy", mmap_mode="r")
    assert allv.shape == (sum(len(x) for x in items),) + items[0].shape[1:], allv.shape
    assert (allv == np.concatenate(items)).all()
    r = np.load(f"{m}/000001-{n:06d}.npy")
    assert (r == np.concatenate(items[1:])).all()
assert os.listdir(f"{t}/m_empty") and sorted(os.listdir(f"{t}/m_empty")) == ["all.bin", "meta.yaml"], os.listdir(f"{t}/m_empty")
PY
  grep -qx "count: 5" "$T/m_f32_ragged/meta.yaml" || fail "meta.yaml count"
  grep -qx "total_rows: 29" "$T/m_f32_ragged/meta.yaml" || fail "meta.yaml total_rows"
  grep -qx "hash: f71fe1abd0b151ee709c03b10123922a" "$T/m_f32_ragged/meta.yaml" || fail "meta.yaml hash"
  grep -qx "trail_shape: \[4\]" "$T/m_f32_ragged/meta.yaml" || fail "meta.yaml trail"
  diff <("$TBLOB" info "$PICO/f32_ragged") "$T/m_f32_ragged/meta.yaml" || fail "meta.yaml differs from tblob info"
}

test_verify_on_read_turns_a_damaged_item_into_eio() {
  "$TBLOB" build "$T/d" "$PICO"/inputs/f32_ragged/item_*.npy || fail "build"
  "$PY" -c "
b = bytearray(open('$T/d.dat', 'rb').read()); b[12 * 16 + 5] ^= 0x40; open('$T/d.dat', 'wb').write(b)"
  mount_fg "$T/d" "$T/plain"
  cat "$T/plain/000003.bin" >/dev/null || fail "without verify_on_read the item reads (as stored)"
  mount_fg "$T/d" "$T/checked" -o verify_on_read=true
  cat "$T/checked/000003.bin" >/dev/null 2>"$T/err" && fail "damaged item read under verify_on_read"
  grep -q "Input/output error" "$T/err" || fail "expected EIO: $(cat "$T/err")"
  cat "$T/checked/000003.npy" >/dev/null 2>&1 && fail "damaged item's .npy read"
  local i
  for i in 0 1 2 4; do
    cmp -s "$T/checked/$(printf %06d $i).bin" <("$TBLOB" cat "$T/d" $i) || fail "item $i should still read"
  done
  grep -q "item 3 does not match its recorded hash" "$T/blobfs.log" || fail "no log line naming item 3"
}

test_verify_on_read_checks_every_read_that_reaches_the_daemon() {
  # A flipped byte after a first good read must still be EIO once the
  # kernel's cache is dropped: nothing is remembered as "verified once".
  "$TBLOB" build "$T/d" "$PICO"/inputs/f32_ragged/item_*.npy || fail "build"
  make_blob "$T/b" 30 float32 16 8
  "$TBLOB" verify --update "$T/b" >/dev/null || fail "verify --update"
  mount_fg "$T/d" "$T/md" -o verify_on_read=true
  mount_fg "$T/b" "$T/mb" -o verify_on_read=true
  cmp -s "$T/md/000003.bin" <("$TBLOB" cat "$T/d" 3) || fail "ragged item 3 before the flip"
  cmp -s "$T/mb/000012.bin" <("$TBLOB" cat "$T/b" 12) || fail "tensor 12 before the flip"
  local block
  block=$("$PY" -c "import json; print(json.load(open('$T/b/.stat'))['bds'][1])")  # tensors 8..15
  "$PY" - "$T/d.dat" "$T/b/$block" <<'PY'
import sys
for path, at in ((sys.argv[1], 12 * 16 + 5), (sys.argv[2], 4 * 64 + 9)):  # ragged item 3; tensor 12
    with open(path, "r+b") as f:   # in place: same inode, the daemon's mapping sees it
        f.seek(at); b = f.read(1); f.seek(at); f.write(bytes([b[0] ^ 0x40]))
PY
  echo 3 > /proc/sys/vm/drop_caches
  cat "$T/md/000003.bin" >/dev/null 2>&1 && fail "ragged item 3 served after its byte flipped"
  cat "$T/mb/000012.bin" >/dev/null 2>&1 && fail "tensor 12 served after its byte flipped"
  dd if="$T/mb/all.bin" bs=64 skip=12 count=1 of=/dev/null status=none 2>/dev/null && fail "all.bin served tensor 12"
  cmp -s "$T/mb/000013.bin" <("$TBLOB" cat "$T/b" 13) || fail "tensor 13 no longer reads"
  grep -q "item 12 does not match its recorded hash" "$T/blobfs.log" || fail "no log line naming tensor 12"
  # The race the bug lost: a byte toggled while readers read, each read
  # dropping the file's cached pages first. Every read is right or EIO.
  "$PY" - "$T/mb" "$T/b/$block" "$T/src_b.npy" <<'PY' || fail "a wrong byte was served"
import os, sys, threading, time, numpy as np
m, block, src = sys.argv[1], sys.argv[2], np.load(sys.argv[3])
want = src[12].tobytes()
stop = time.time() + 2
def toggle():
    with open(block, "r+b") as f:
        while time.time() < stop:
            f.seek(4 * 64 + 9); b = f.read(1); f.seek(4 * 64 + 9); f.write(bytes([b[0] ^ 0x40])); f.flush()
t = threading.Thread(target=toggle); t.start()
good = wrong = eio = 0
while time.time() < stop:
    fd = os.open(f"{m}/000012.bin", os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    try:
        got = os.pread(fd, 64, 0)
        if got == want: good += 1
        else: wrong += 1
    except OSError:
        eio += 1
    os.close(fd)
t.join()
print(f"    toggled byte: {good} right, {eio} EIO, {wrong} wrong", file=sys.stderr)
sys.exit(1 if wrong else 0)
PY
  kill -0 "$PID" || fail "daemon died"
}

test_sidecar_cut_while_mounted_costs_eio_not_the_daemon() {
  make_blob "$T/b" 40 float32 256 8
  "$TBLOB" verify --update "$T/b" >/dev/null || fail "verify --update"
  mount_fg "$T/b" "$T/m" -o verify_on_read=true
  cat "$T/m/000001.bin" >/dev/null || fail "first read"
  cp "$T/b/.hashes.npy" "$T/backup.npy"
  truncate -s 100 "$T/b/.hashes.npy"          # what cp backup/.hashes.npy blob/ does first
  cat "$T/m/000030.bin" >/dev/null 2>&1 && fail "a read checked against a cut sidecar succeeded"
  kill -0 "$PID" 2>/dev/null || fail "the daemon died (SIGBUS from the sidecar?)"
  cp "$T/backup.npy" "$T/b/.hashes.npy"       # ...and then writes it whole again
  cmp -s "$T/m/000031.bin" <("$TBLOB" cat "$T/b" 31) || fail "no read once the sidecar is whole again"
  is_mounted "$T/m" || fail "mount gone"
}

test_relative_paths_in_daemon_and_foreground_mode() {
  # The daemon works from /: a relative source or mountpoint must still
  # serve, and SIGTERM must still unmount.
  "$PY" -c "import numpy as np; [np.save('$T/i%d.npy' % i, np.full((3 + i, 2), i, np.float32)) for i in range(5)]"
  (cd "$T" && "$TBLOB" build d i0.npy i1.npy i2.npy i3.npy i4.npy) || fail "build"
  mkdir -p "$T/m1" "$T/m2"
  _mounts+=("$T/m1" "$T/m2")
  (cd "$T" && "$BLOBFS" d m1 2>>"$T/blobfs.log") || fail "daemon mode with relative paths"
  local pid
  pid=$(pgrep -f "^$BLOBFS d m1$") || fail "no daemon"
  _pids+=("$pid")
  local i
  for i in 0 2 4; do cmp -s "$T/m1/00000$i.bin" <("$TBLOB" cat "$T/d" $i) || fail "item $i (daemon mode)"; done
  (cd "$T" && exec "$BLOBFS" d m2 -f 2>>"$T/blobfs.log") &
  local fg=$!
  _pids+=("$fg")
  wait_until is_mounted "$T/m2" || fail "foreground mode with relative paths"
  cmp -s "$T/m2/000003.bin" <("$TBLOB" cat "$T/d" 3) || fail "item 3 (foreground)"
  ! grep -q "shrank" "$T/blobfs.log" || fail "false 'shrank' errors: $(cat "$T/blobfs.log")"
  kill -TERM "$pid" "$fg"
  wait_until bash -c "! kill -0 $pid 2>/dev/null && ! kill -0 $fg 2>/dev/null" || fail "SIGTERM did not end them"
  is_mounted "$T/m1" && fail "stale mount after SIGTERM (daemon mode)"
  is_mounted "$T/m2" && fail "stale mount after SIGTERM (foreground)"
  ls "$T/m1" "$T/m2" >/dev/null || fail "mountpoints broken"
}

test_a_fifo_block_is_eio_at_once_and_blocks_nothing_else() {
  make_blob "$T/b" 30 float32 4 8
  local block
  block=$("$PY" -c "import json; print(json.load(open('$T/b/.stat'))['bds'][1])")
  rm "$T/b/$block" && mkfifo "$T/b/$block"
  mount_fg "$T/b" "$T/m"
  local i
  for i in 1 2 3; do
    timeout 5 cat "$T/m/000009.bin" >/dev/null 2>"$T/err"; local rc=$?
    [[ $rc -ne 124 ]] || fail "a read of the FIFO block hung"
    grep -q "Input/output error" "$T/err" || fail "expected EIO: $(cat "$T/err")"
  done
  timeout 5 cmp -s "$T/m/000001.bin" <("$TBLOB" cat "$T/b" 1) || fail "block 0 no longer reads"
  timeout 5 cmp -s "$T/m/000020.bin" <("$TBLOB" cat "$T/b" 20) || fail "block 2 no longer reads"
  grep -q "block file is not a regular file (a FIFO)" "$T/blobfs.log" || fail "no log line"
  kill -TERM "$PID"
  wait_until bash -c "! kill -0 $PID 2>/dev/null" || fail "the daemon survived SIGTERM"
}

test_a_ragged_dataset_rebuilt_under_a_frozen_mount_serves_the_old_one() {
  "$PY" -c "import numpy as np; [np.save('$T/a%d.npy' % i, np.full((500, 4), i, np.float32)) for i in range(6)]
[np.save('$T/b%d.npy' % i, np.full((300, 4), 10 + i, np.float32)) for i in range(6)]"
  "$TBLOB" build "$T/d" "$T"/a*.npy || fail "build"
  "$TBLOB" cat "$T/d" 4 > "$T/old4"
  mount_fg "$T/d" "$T/m" -o live=false
  cmp -s "$T/m/000004.bin" "$T/old4" || fail "before the rebuild"
  "$TBLOB" build "$T/d" "$T"/b*.npy || fail "rebuild"
  echo 3 > /proc/sys/vm/drop_caches
  cmp -s "$T/m/000004.bin" "$T/old4" || fail "the old dataset's item 4 is gone or wrong: $(tail -2 "$T/blobfs.log")"
  cmp -s "$T/m/000005.bin" <("$PY" -c "import numpy as np, sys; sys.stdout.buffer.write(np.full((500, 4), 5, np.float32).tobytes())") ||
    fail "item 5 of the old dataset"
  ! grep -q "error" "$T/blobfs.log" || fail "errors logged: $(cat "$T/blobfs.log")"
}

test_counts_past_what_a_mount_numbers_are_refused_and_big_ranges_served() {
  # Blobs described by their .stat alone (reads would fail: the block is
  # short), to test what is promised without writing exabytes.
  mk() {
    "$PY" - "$1" "$2" <<'PY'
import json, os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d)
conf = {"__notes__": {"args": [], "class_name": "TensorBlob", "kwargs": {}, "using_default_values": []},
        "block_size": 1 << 62, "dtype": "uint8", "shape": []}
open(f"{d}/.conf", "w").write(json.dumps(conf, indent=2, sort_keys=True) + "\n")
name = "0a0a0a0a-0000-4000-8000-000000000000"
open(f"{d}/{name}", "wb").close()
open(f"{d}/.stat", "w").write(json.dumps({"len": n, "bds": [name]}, separators=(",", ":")))
PY
  }
  mk "$T/huge" $((1 << 62))
  mkdir -p "$T/m0"
  local out rc
  out=$("$BLOBFS" "$T/huge" "$T/m0" 2>&1); rc=$?
  [[ $rc -eq 3 && $out == *"are more than a mount serves (2305843009213693951, 2^61 - 1)"* ]] || fail "2^62 tensors: $rc $out"
  is_mounted "$T/m0" && fail "mounted anyway"
  local max=$(((1 << 61) - 1))
  mk "$T/max" "$max"
  mount_fg "$T/max" "$T/m"
  [[ $(stat -c %s "$T/m/$((max - 1)).bin") == 1 ]] || fail "the last tensor"
  [[ $(stat -c %s "$T/m/000000-$max.bin") == "$max" ]] || fail "the range of everything"
  [[ $(stat -c %s "$T/m/3000000000-3000000005.bin") == 5 ]] || fail "a range past 2^31"
  local a b c
  a=$(stat -c %i "$T/m/3000000000-3000000005.bin"); b=$(stat -c %i "$T/m/3000000000-3000000005.npy")
  c=$(stat -c %i "$T/m/$((max - 1)).bin")
  [[ $a != "$b" && $a != "$c" && $b != "$c" ]] || fail "inode numbers collide: $a $b $c"
  [[ -e $T/m/000000-$((max + 1)).bin ]] && fail "a range past the end exists"
  grep -q "count: $max" "$T/m/meta.yaml" || fail "meta.yaml count"
  true
}

# expect_tensor MNT I SALT [DTYPE]: file I of the mount holds make_blob's
# tensor I (+ SALT), in DTYPE (int64 by default).
expect_tensor() {
  "$PY" - "$1" "$2" "$3" "${4:-int64}" <<'PY'
import sys, numpy as np
m, i, salt, dt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
got = np.fromfile(f"{m}/{i:06d}.bin", dtype=dt)
want = (np.arange(got.size, dtype=np.int64) + i * 1000 + salt).astype(dt)
sys.exit(0 if got.size and (got == want).all() else 1)
PY
}

test_live_mount_follows_appends_while_eight_readers_check_every_byte() {
  make_blob "$T/b" 200 int64 16 64         # 128-byte tensors, 64 a block
  mount_fg "$T/b" "$T/m" -o inotify=false   # the poll alone: 2 s is its bound
  "$PY" - "$T/m" "$BLOB_WRITE" "$T/b" "$T/commits" <<'PY' || fail "readers saw wrong bytes, errors or late tensors"
import errno, multiprocessing as mp, os, random, subprocess, sys, time
import numpy as np
m, writer, blob, commits_log = sys.argv[1:5]
item, per = 128, 16

def tensor(i):
    return (np.arange(per, dtype=np.int64) + i * 1000).tobytes()

def reader(seed, stop_at, out):
    rng = random.Random(seed)
    ops = bad = errors = 0
    seen = {}  # first time each count was seen through the listing or names
    known = 200
    allfd = os.open(f"{m}/all.bin", os.O_RDONLY)
    while time.time() < stop_at:
        kind = rng.randrange(5)
        try:
            if kind == 0:                          # a tensor file by name
                i = rng.randrange(known)
                with open(f"{m}/{i:06d}.bin", "rb") as f: got = f.read()
                bad += got != tensor(i)
            elif kind == 1:                        # a range file
                a = rng.randrange(known); b = min(known, a + rng.randrange(1, 40))
                with open(f"{m}/{a:06d}-{b:06d}.bin", "rb") as f: got = f.read()
                bad += got != b"".join(tensor(i) for i in range(a, b))
            elif kind == 2:                        # all.bin: size whole tensors, bytes right
                size = os.fstat(allfd).st_size
                bad += size % item != 0
                off = rng.randrange(max(1, size // item)) * item
                got = os.pread(allfd, 4 * item, off)
                bad += got != b"".join(tensor(i) for i in range(off // item, off // item + len(got) // item))
            elif kind == 3:                        # the next tensor to appear, by name
                if os.path.exists(f"{m}/{known:06d}.bin"):
                    while os.path.exists(f"{m}/{known:06d}.bin"): known += 1
                    seen.setdefault(known, time.time())
            else:                                  # meta.yaml agrees with all.bin's size
                with open(f"{m}/meta.yaml") as f: count = int([l for l in f if l.startswith("count:")][0].split()[1])
                bad += count < 200
            ops += 1
        except OSError as e:
            if e.errno != errno.ENOENT: errors += 1   # a range past the end, racing a listing: fine
    os.close(allfd)
    out.put((ops, bad, errors, seen))

out = mp.Queue()
stop_at = time.time() + 7
procs = [mp.Process(target=reader, args=(s, stop_at, out)) for s in range(8)]
for p in procs: p.start()
time.sleep(0.5)
w = subprocess.run([writer, blob, "append", "50", "20", "200"], capture_output=True, text=True)
results = [out.get() for _ in procs]
for p in procs: p.join()
ops = sum(r[0] for r in results); bad = sum(r[1] for r in results); errors = sum(r[2] for r in results)
seen = {}
for r in results:
    for k, t in r[3].items(): seen[k] = min(t, seen.get(k, t))
commits = [(int(a) / 1e9, int(b)) for a, b in (l.split() for l in w.stdout.splitlines())]
open(commits_log, "w").write(w.stdout)
late = []
for t, count in commits:
    first = min((ts for k, ts in seen.items() if k >= count), default=None)
    if first is None or first - t > 2: late.append((count, None if first is None else round(first - t, 3)))
delays = sorted(min(ts for k, ts in seen.items() if k >= c) - t for t, c in commits if any(k >= c for k in seen))
print(f"    8 readers: {ops} reads, {bad} mismatches, {errors} errors; {len(commits)} commits, "
      f"visible after median {delays[len(delays)//2]*1000:.0f} ms, max {delays[-1]*1000:.0f} ms", file=sys.stderr)
if w.returncode: print(w.stderr, file=sys.stderr)
sys.exit(1 if bad or errors or late or w.returncode or len(commits) != 20 else 0)
PY
  grep -qx "count: 1200" "$T/m/meta.yaml" || fail "meta.yaml after the appends: $(grep count "$T/m/meta.yaml")"
  [[ $(stat -c %s "$T/m/all.bin") == $((1200 * 128)) ]] || fail "all.bin size"
  [[ $(ls "$T/m" | wc -l) == 1203 ]] || fail "ls shows $(ls "$T/m" | wc -l) entries"
  ! grep -q "error" "$T/blobfs.log" || fail "errors logged: $(cat "$T/blobfs.log")"
}

test_live_overwrites_by_our_writer_and_pythons_reach_every_cached_view_and_nothing_else() {
  make_blob "$T/b" 40 int64 16 8
  mount_fg "$T/b" "$T/m" -o log_level=debug
  # Cache every view of tensors 5 and 10, and an unchanged tensor.
  cat "$T/m/000005.bin" "$T/m/000005.npy" "$T/m/000004-000008.bin" "$T/m/000010.bin" "$T/m/000010.npy" \
      "$T/m/000020.bin" "$T/m/all.bin" "$T/m/all.npy" > /dev/null || fail "first reads"
  command -v fincore >/dev/null && [[ $(fincore -nb -o RES "$T/m/000020.bin" | tr -d ' ') -gt 0 ]] ||
    echo "    (fincore cannot tell cached pages here)" >&2
  "$BLOB_WRITE" "$T/b" overwrite 5 2 7 >/dev/null || fail "our writer"
  wait_until expect_tensor "$T/m" 5 7 || fail "tensor 5 never showed its new bytes"
  "$PY" - "$T/m" 5 7 <<'PY' || fail "a view of tensor 5 kept old bytes"
import sys, numpy as np
m, i, salt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
want = np.arange(16, dtype=np.int64) + i * 1000 + salt
assert (np.load(f"{m}/{i:06d}.npy") == want).all(), "npy"
r = np.fromfile(f"{m}/000004-000008.bin", dtype=np.int64).reshape(4, 16)
assert (r[1] == want).all() and (r[2] == want + 1000).all() and r[0][0] == 4000, "range"
a = np.fromfile(f"{m}/all.bin", dtype=np.int64).reshape(-1, 16)
assert (a[i] == want).all() and a[4][0] == 4000 and a[7][0] == 7000, "all.bin"
n = np.load(f"{m}/all.npy", mmap_mode="r")
assert (n[i] == want).all() and n.shape == (40, 16), "all.npy"
PY
  expect_tensor "$T/m" 20 0 || fail "an unchanged tensor changed"
  if command -v fincore >/dev/null; then
    # Only the files that show tensors 5 and 6 lost their pages.
    [[ $(fincore -nb -o RES "$T/m/000020.bin" | tr -d ' ') -gt 0 ]] || fail "an unchanged file lost its cached pages"
  fi
  # Python's writer: bytes changed where they stand, .stat rewritten in place.
  py_write "$T/b" 10 1 9
  wait_until expect_tensor "$T/m" 10 9 || fail "tensor 10 never showed the Python writer's bytes"
  "$PY" -c "
import numpy as np, sys
assert (np.load('$T/m/000010.npy') == np.arange(16) + 10009).all()
assert (np.fromfile('$T/m/all.bin', dtype=np.int64).reshape(-1, 16)[10] == np.arange(16) + 10009).all()" ||
    fail "a view of tensor 10 kept old bytes"
  grep -q "followed a commit: 40 -> 40 items" "$T/blobfs.log" || fail "no commit followed: $(cat "$T/blobfs.log")"
}

test_a_poll_alone_finds_commits_and_inotify_finds_them_sooner() {
  make_blob "$T/b" 10 int64 16 4
  mount_fg "$T/b" "$T/slow" -o inotify=false,refresh_interval=30
  mount_fg "$T/b" "$T/poll" -o inotify=false,refresh_interval=0.2
  mount_fg "$T/b" "$T/watch" -o refresh_interval=30
  "$BLOB_WRITE" "$T/b" append 1 1 >/dev/null || fail "append"
  wait_until test -e "$T/watch/000010.bin" || fail "inotify did not wake the refresher"
  wait_until test -e "$T/poll/000010.bin" || fail "the 0.2 s poll did not find the commit"
  sleep 1
  [[ -e $T/slow/000010.bin ]] && fail "a 30 s poll without inotify found the commit at once (what woke it?)"
  true
}

test_live_truncation_removes_names_and_shrinks_all_files() {
  make_blob "$T/b" 30 int64 16 8
  mount_fg "$T/b" "$T/m"
  stat "$T/m/000025.bin" "$T/m/000020-000030.bin" >/dev/null && cat "$T/m/000025.bin" >/dev/null || fail "before"
  "$TBLOB" truncate "$T/b" 12 || fail "truncate"
  wait_until bash -c "[[ \$(stat -c %s '$T/m/all.bin') == $((12 * 128)) ]]" || fail "all.bin did not shrink"
  [[ -e $T/m/000025.bin ]] && fail "a truncated tensor still exists"
  [[ -e $T/m/000012.bin ]] && fail "tensor 12 still exists"
  [[ -e $T/m/000020-000030.bin ]] && fail "a range past the end still exists"
  expect_tensor "$T/m" 11 0 || fail "tensor 11"
  [[ $(ls "$T/m" | wc -l) == 15 ]] || fail "ls: $(ls "$T/m" | wc -l) entries"
  "$PY" -c "import numpy as np; a = np.load('$T/m/all.npy'); assert a.shape == (12, 16), a.shape" || fail "all.npy"
  "$TBLOB" truncate "$T/b" 0 || fail "truncate to 0"
  wait_until bash -c "[[ \$(stat -c %s '$T/m/all.bin') == 0 ]]" || fail "all.bin not empty"
  [[ $(ls "$T/m" | tr '\n' ' ') == "all.bin all.npy meta.yaml " ]] || fail "ls of an empty blob: $(ls "$T/m")"
  grep -qx "count: 0" "$T/m/meta.yaml" || fail "meta.yaml"
}

test_live_ragged_dataset_rebuilt_under_the_mount() {
  "$PY" -c "import numpy as np; [np.save('$T/a%d.npy' % i, np.full((3, 2), i, np.float32)) for i in range(4)]
[np.save('$T/b%d.npy' % i, np.full((5, 2), 10 + i, np.float32)) for i in range(6)]"
  "$TBLOB" build "$T/d" "$T"/a*.npy || fail "build"
  mount_fg "$T/d" "$T/m"
  cat "$T/m/000001.bin" "$T/m/all.bin" >/dev/null
  "$TBLOB" build "$T/d" "$T"/b*.npy || fail "rebuild"
  wait_until bash -c "grep -qx 'count: 6' '$T/m/meta.yaml'" || fail "meta.yaml: $(grep count "$T/m/meta.yaml")"
  cmp -s "$T/m/000001.bin" <("$TBLOB" cat "$T/d" 1) || fail "item 1 kept its old bytes"
  cmp -s "$T/m/000005.bin" <("$TBLOB" cat "$T/d" 5) || fail "item 5"
  [[ $(stat -c %s "$T/m/all.bin") == $((30 * 8)) ]] || fail "all.bin size"
}

test_live_damaged_stat_keeps_the_last_good_commit_then_follows_again() {
  make_blob "$T/b" 10 int64 16 4
  mount_fg "$T/b" "$T/m"
  cp "$T/b/.stat" "$T/good"
  printf '{"len":' > "$T/b/.stat"             # cut, as a writer killed mid-rewrite leaves it
  sleep 1.5
  [[ $(stat -c %s "$T/m/all.bin") == 1280 ]] || fail "the mount moved to a damaged commit"
  expect_tensor "$T/m" 9 0 || fail "tensor 9 no longer reads"
  [[ $(grep -c "serving the last good commit" "$T/blobfs.log") -eq 1 ]] || fail "want one log line: $(cat "$T/blobfs.log")"
  cp "$T/good" "$T/b/.stat"
  "$BLOB_WRITE" "$T/b" append 3 1 >/dev/null || fail "append"
  wait_until bash -c "[[ -e '$T/m/000012.bin' ]]" || fail "the mount did not follow the next good commit"
  expect_tensor "$T/m" 12 0 || fail "tensor 12"
}

test_frozen_mount_serves_its_commit_byte_for_byte() {
  make_blob "$T/b" 20 int64 16 4
  "$TBLOB" export "$T/b" "$T/before.npy"
  mount_fg "$T/b" "$T/m" -o live=false
  sleep 0.3                                     # the blocks are held open in the background
  "$BLOB_WRITE" "$T/b" overwrite 0 20 5 >/dev/null || fail "overwrite"   # every block replaced and removed
  "$BLOB_WRITE" "$T/b" append 10 1 >/dev/null || fail "append"
  echo 3 > /proc/sys/vm/drop_caches
  sleep 1.5
  [[ $(stat -c %s "$T/m/all.bin") == $((20 * 128)) ]] || fail "the frozen mount's size moved"
  [[ -e $T/m/000020.bin ]] && fail "an appended tensor appeared"
  "$PY" -c "
import numpy as np
a = np.load('$T/m/all.npy'); b = np.load('$T/before.npy')
assert a.shape == b.shape and (a == b).all()" || fail "the frozen mount's bytes changed: $(tail -3 "$T/blobfs.log")"
  ! grep -q "error" "$T/blobfs.log" || fail "errors: $(cat "$T/blobfs.log")"
}

# A cut inside a block, then appends by another process: the rows past the
# cut are rewritten in a copy, never where a frozen mount still reads them.
test_frozen_mount_keeps_its_rows_across_a_truncate_and_an_append_by_other_processes() {
  make_blob "$T/b" 20 int64 16 20                # one block holds every tensor
  "$TBLOB" export "$T/b" "$T/before.npy"
  mount_fg "$T/b" "$T/m" -o live=false
  sleep 0.3
  "$PY" -c "import numpy as np; np.save('$T/other.npy', np.full((10, 16), -7, dtype=np.int64))"
  "$TBLOB" truncate "$T/b" 10 || fail "truncate"
  "$TBLOB" import "$T/b" "$T/other.npy" || fail "append"
  echo 3 > /proc/sys/vm/drop_caches
  "$PY" -c "
import numpy as np
a = np.load('$T/m/all.npy'); b = np.load('$T/before.npy')
assert a.shape == b.shape and (a == b).all(), 'rows 10..19 changed under the frozen mount'" || fail "the frozen mount's bytes changed"
}

test_appending_one_tensor_to_ten_million_costs_a_handful_of_invalidations() {
  "$PY" -c "import numpy as np; np.save('$T/s.npy', np.arange(10_000_000, dtype=np.int32))"
  "$TBLOB" import "$T/b" "$T/s.npy" --create --dtype int32 --shape '' || fail "import"
  rm -f "$T/s.npy"
  mount_fg "$T/b" "$T/m" -o log_level=debug
  cat "$T/m/9999999.bin" "$T/m/0000000.bin" > /dev/null 2>&1
  local before after
  before=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
  "$BLOB_WRITE" "$T/b" append 1 1 >/dev/null || fail "append"
  wait_until bash -c "[[ -e '$T/m/10000000.bin' ]]" || fail "the appended tensor did not appear"
  [[ $(od -An -td4 "$T/m/10000000.bin" | tr -d ' ') == 1410065408 ]] || fail "its value"  # 10,000,000 * 1000 as int32
  after=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
  local line
  line=$(grep "followed a commit: 10000000 -> 10000001" "$T/blobfs.log") || fail "no refresh logged"
  [[ $line =~ ([0-9]+)\ files\ and\ ([0-9]+)\ names ]] || fail "log line: $line"
  (( BASH_REMATCH[1] <= 5 && BASH_REMATCH[2] == 0 )) || fail "the refresh did work for more than the change: $line"
  echo "    $(grep -o 'refresh took [0-9.]* ms' "$T/blobfs.log" | tail -1) for one tensor appended to 10M," \
       "${BASH_REMATCH[1]} files invalidated; RSS ${before} -> ${after} KiB" >&2
  if [[ -z ${TBLOB_SANITIZED:-} ]]; then ((after - before < 2048)) || fail "RSS grew from $before to $after KiB"; fi
}

# The blob's bytes as the library reads them, for comparisons.
blob_bytes() { "$TBLOB" export "$1" /dev/stdout | tail -c +129; }

test_writable_mount_every_way_of_writing_lands_in_the_blob() {
  make_blob "$T/b" 20 int64 16 8             # 128-byte tensors
  mount_fg "$T/b" "$T/w" -o writable=true
  grep " $T/w " /proc/mounts | grep -q " rw," || fail "not mounted rw"
  "$PY" - "$T/w" "$T" <<'PY' || fail "a write did not land"
import numpy as np, os, subprocess, sys
w, t = sys.argv[1], sys.argv[2]
def tensor(i, salt=0): return (np.arange(16, dtype=np.int64) + i * 1000 + salt)
def run(cmd): subprocess.run(cmd, shell=True, check=True)
tensor(3, 7).tofile(f"{t}/t3.bin")
run(f"cp {t}/t3.bin {w}/000003.bin")                                  # cp: replace tensor 3
tensor(5, 9).tofile(f"{t}/t5.bin")
run(f"dd if={t}/t5.bin of={w}/000005.bin bs=100 conv=notrunc status=none")  # bs not a tensor's size
run(f"dd if={t}/t5.bin of={w}/all.bin bs=48 seek=20 skip=1 count=1 conv=notrunc status=none")  # bytes 960.. of tensor 7
np.concatenate([tensor(i) for i in (20, 21)]).tofile(f"{t}/two.bin")
run(f"cat {t}/two.bin >> {w}/all.bin")                                # cat >>: append 20, 21
run(f"cat {t}/two.bin | tee -a {w}/all.bin > /dev/null")               # tee -a: append 22, 23 (same bytes)
with open(f"{w}/all.bin", "ab") as f: f.write(tensor(24).tobytes())    # open('ab')
fd = os.open(f"{w}/000010-000012.bin", os.O_WRONLY)                      # os.pwrite into a range file
os.pwrite(fd, tensor(11, 5).tobytes(), 128); os.close(fd)
np.save(f"{w}/000012.npy", tensor(12, 3))                              # np.save: overwrite
np.save(f"{w}/000025.npy", tensor(25))                                 # np.save: the next index
tensor(26).tofile(f"{w}/000026.bin")                                   # create the next index
run(f"truncate -s {27 * 128} {w}/all.bin")                              # truncate to whole tensors (no change)
want = np.stack([tensor(i) for i in range(27)])
want[3] = tensor(3, 7); want[5] = tensor(5, 9); want[11] = tensor(11, 5); want[12] = tensor(12, 3)
want[22], want[23] = tensor(20), tensor(21)
w7 = want[7].view(np.uint8).copy(); w7[960 - 7 * 128: 960 - 7 * 128 + 48] = tensor(5, 9).view(np.uint8)[48:96]
want[7] = w7.view(np.int64)
np.save(f"{t}/want.npy", want)
got = np.load(f"{w}/all.npy")
assert got.shape == want.shape, (got.shape, want.shape)
bad = [i for i in range(len(want)) if not (got[i] == want[i]).all()]
assert not bad, f"tensors differ through the mount: {bad}"
PY
  cmp -s <(blob_bytes "$T/b") <("$PY" -c "import numpy as np, sys; sys.stdout.buffer.write(np.load('$T/want.npy').tobytes())") ||
    fail "the library reads other bytes"
  mount_fg "$T/b" "$T/r"
  cmp -s "$T/r/all.bin" <("$PY" -c "import numpy as np, sys; sys.stdout.buffer.write(np.load('$T/want.npy').tobytes())") ||
    fail "a fresh read-only mount reads other bytes"
  "$TBLOB" verify "$T/b" >/dev/null 2>"$T/err" || fail "verify: $(cat "$T/err")"
  [[ ! -s $T/err ]] || fail "verify warns: $(cat "$T/err")"
  truncate -s $((15 * 128)) "$T/w/all.bin" || fail "truncate -s"
  "$TBLOB" info "$T/b" | grep -qx "count: 15" || fail "truncate did not cut the blob"
  wait_until bash -c "[[ \$(stat -c %s '$T/r/all.bin') == $((15 * 128)) ]]" || fail "the read-only mount did not follow"
}

test_writable_mount_refusals_have_their_errno_and_change_nothing() {
  make_blob "$T/b" 10 int64 16 4
  cp -a "$T/b/.stat" "$T/stat.before"
  blob_bytes "$T/b" > "$T/before"
  mount_fg "$T/b" "$T/w" -o writable=true
  "$PY" - "$T/w" <<'PY' || fail "errno checks failed"
import errno, os, sys, numpy as np
w = sys.argv[1]
def expect(err, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        assert e.errno == err, (fn.__name__, args, errno.errorcode[e.errno], errno.errorcode[err])
        return
    raise AssertionError(f"{fn.__name__}{args} succeeded")
def write_close(path, data, flags=os.O_WRONLY | os.O_TRUNC, at=None):
    fd = os.open(path, flags, 0o644)
    try:
        if at is None: os.write(fd, data)
        else: os.pwrite(fd, data, at)
    finally:
        os.close(fd)
expect(errno.EPERM, os.mkdir, f"{w}/d")
expect(errno.EPERM, os.unlink, f"{w}/000001.bin")
expect(errno.EPERM, os.rename, f"{w}/000001.bin", f"{w}/000002.bin")
expect(errno.EPERM, os.symlink, "x", f"{w}/l")
expect(errno.EPERM, os.link, f"{w}/000001.bin", f"{w}/h")
expect(errno.EPERM, os.chmod, f"{w}/000001.bin", 0o600)
expect(errno.EPERM, write_close, f"{w}/meta.yaml", b"x")
expect(errno.EPERM, write_close, f"{w}/all.npy", b"x")
expect(errno.EPERM, write_close, f"{w}/000099.bin", b"x" * 128, os.O_WRONLY | os.O_CREAT)   # past the next index
expect(errno.EPERM, write_close, f"{w}/notes.txt", b"x", os.O_WRONLY | os.O_CREAT)
expect(errno.EINVAL, write_close, f"{w}/000001.bin", b"x" * 100)                            # a partial tensor (cp)
expect(errno.EINVAL, write_close, f"{w}/000010.bin", b"x" * 100, os.O_WRONLY | os.O_CREAT)  # a partial new tensor
expect(errno.EINVAL, write_close, f"{w}/all.bin", b"x" * 100, os.O_WRONLY | os.O_APPEND)   # a partial append
expect(errno.EFBIG, write_close, f"{w}/000001.bin", b"x" * 8, os.O_WRONLY, 200)              # past a tensor's end
expect(errno.EINVAL, np.save, f"{w}/000002.npy", np.zeros(16, np.int32))                   # wrong dtype
expect(errno.EINVAL, np.save, f"{w}/000002.npy", np.zeros(15, np.int64))                   # wrong shape
expect(errno.EINVAL, os.truncate, f"{w}/all.bin", 1000)                                     # not whole tensors
expect(errno.EINVAL, os.truncate, f"{w}/all.bin", 20 * 128)                                 # growing
expect(errno.EINVAL, os.truncate, f"{w}/000001.bin", 0)
PY
  cmp -s "$T/b/.stat" "$T/stat.before" || fail ".stat changed"
  cmp -s <(blob_bytes "$T/b") "$T/before" || fail "the blob's bytes changed"
  [[ $(ls -a "$T/b" | grep -c '^\.write') == 0 ]] || fail "staging files left: $(ls -a "$T/b")"
  # rw alone (fstab's defaults) does not make a mount writable.
  mount_fg "$T/b" "$T/ro" -o rw
  "$PY" -c "
import errno, os
try:
    os.open('$T/ro/000001.bin', os.O_WRONLY); raise SystemExit('writable')
except OSError as e:
    raise SystemExit(0 if e.errno == errno.EROFS else 'errno %d' % e.errno)" || fail "-o rw made a writable mount"
}

test_writable_mount_full_disk_fails_at_close_and_keeps_the_last_commit() {
  small_fs "$T/small" 2m
  make_blob "$T/small/b" 100 float32 256 64          # 1 KiB tensors, 64 KiB blocks: 100 KiB
  blob_bytes "$T/small/b" > "$T/before"
  mount_fg "$T/small/b" "$T/w" -o writable=true
  "$PY" - "$T/w" <<'PY' || fail "the full disk was not ENOSPC at close"
import errno, os, sys
w = sys.argv[1]
f = open(f"{w}/all.bin", "ab")
f.write(b"\1" * (1200 * 1024))     # staged (1.2 MiB fits); committing it needs as much again
try:
    f.close()
except OSError as e:
    sys.exit(0 if e.errno == errno.ENOSPC else f"close: {errno.errorcode[e.errno]}")
sys.exit("close succeeded")
PY
  "$TBLOB" info "$T/small/b" | grep -qx "count: 100" || fail "the blob's count changed"
  cmp -s <(blob_bytes "$T/small/b") "$T/before" || fail "the blob's bytes changed"
  "$TBLOB" verify "$T/small/b" >/dev/null || fail "verify"
  ls -a "$T/small/b" | grep -q '^\.write' && fail "staging left on the full disk"
  cmp -s "$T/w/all.bin" "$T/before" || fail "the mount serves other bytes"
}

test_writable_mount_daemon_killed_during_a_100mb_append_leaves_the_last_commit() {
  make_blob "$T/b" 50 float32 768 1024
  blob_bytes "$T/b" > "$T/before"
  local when
  for when in staging committing; do
    mount_fg "$T/b" "$T/w_$when" -o writable=true
    # A writer that says when it is half way through staging 100 MB, or
    # that it has started the close that commits them.
    "$PY" - "$T/w_$when/all.bin" "$T/mark" "$when" <<'PY' &
import os, sys
path, mark, when = sys.argv[1:4]
chunk = os.urandom(3072 * 340)   # about 1 MB of whole tensors
try:
    with open(path, "ab") as f:
        for k in range(100):
            f.write(chunk)
            if when == "staging" and k == 50: open(mark, "w").close()
        if when == "committing": open(mark, "w").close()
except OSError:
    pass
PY
    local writer=$!
    _pids+=("$writer")
    wait_until test -e "$T/mark" || fail "the writer did not get going"
    [[ $when == committing ]] && sleep 0.$((RANDOM % 4))
    kill -9 "$PID"
    wait "$PID" 2>/dev/null
    wait "$writer" 2>/dev/null
    rm -f "$T/mark"
    fusermount3 -uz "$T/w_$when" 2>/dev/null
    local count
    count=$("$TBLOB" info "$T/b" | sed -n 's/^count: //p')
    echo "    killed while $when: $count tensors committed" >&2
    "$TBLOB" verify "$T/b" >/dev/null 2>"$T/err" || fail "verify after a kill while $when: $(cat "$T/err")"
    if [[ $when == staging ]]; then
      [[ $count == 50 ]] || fail "a kill while staging committed something: $count"
    else
      [[ $count == 50 || $count == 34050 ]] || fail "a kill while committing left $count tensors, neither commit"
    fi
    cmp -s <(blob_bytes "$T/b" | head -c $((50 * 3072))) "$T/before" || fail "the committed tensors changed"
    "$TBLOB" truncate "$T/b" 50 || fail "truncate back"
  done
  mount_fg "$T/b" "$T/again" -o writable=true     # the next writer removes the dead daemon's staging
  ls -a "$T/b" | grep -q '^\.write' && fail "the staging of the killed daemon is still there"
  cmp -s "$T/again/all.bin" "$T/before" || fail "a restarted mount serves other bytes"
}

test_writable_mount_serialises_two_writer_processes() {
  make_blob "$T/b" 10 int64 16 8
  mount_fg "$T/b" "$T/w" -o writable=true
  "$PY" - "$T/w" <<'PY' || fail "two writers"
import multiprocessing as mp, os, sys, numpy as np
w = sys.argv[1]
def writer(tag):
    for k in range(25):
        with open(f"{w}/all.bin", "ab") as f:
            f.write(np.full((3, 16), tag * 1000 + k, np.int64).tobytes())
ps = [mp.Process(target=writer, args=(t,)) for t in (1, 2)]
for p in ps: p.start()
for p in ps: p.join()
assert all(p.exitcode == 0 for p in ps)
a = np.load(f"{w}/all.npy")
assert a.shape == (160, 16), a.shape
tail = a[10:]
groups = [tuple(tail[i:i + 3, 0]) for i in range(0, 150, 3)]
assert all(len(set(g)) == 1 for g in groups), "a commit was split"
assert sorted(g[0] for g in groups) == sorted(t * 1000 + k for t in (1, 2) for k in range(25))
assert (tail == tail[:, :1]).all(), "a tensor was torn"
PY
  "$TBLOB" info "$T/b" | grep -qx "count: 160" || fail "count"
}

test_writable_mount_fsync_commits_and_a_second_writable_mount_is_refused() {
  make_blob "$T/b" 10 int64 16 8
  mount_fg "$T/b" "$T/w" -o writable=true
  mount_fg "$T/b" "$T/r"
  local out rc
  mkdir -p "$T/w2"
  out=$("$BLOBFS" "$T/b" "$T/w2" -o writable=true 2>&1); rc=$?
  [[ $rc -eq 3 && $out == *"another writer has this blob open"* ]] || fail "a second writable mount: $rc $out"
  is_mounted "$T/w2" && fail "it mounted anyway"
  "$PY" - "$T/w" "$T/r" <<'PY' || fail "fsync did not commit"
import os, sys, time, numpy as np
w, r = sys.argv[1], sys.argv[2]
fd = os.open(f"{w}/all.bin", os.O_WRONLY | os.O_APPEND)
os.write(fd, np.full(16, 42, np.int64).tobytes())
assert not os.path.exists(f"{r}/000010.bin"), "visible before the commit"
os.fsync(fd)                                   # committed now, the fd still open
deadline = time.time() + 5
while not os.path.exists(f"{r}/000010.bin") and time.time() < deadline: time.sleep(0.01)
assert (np.fromfile(f"{r}/000010.bin", np.int64) == 42).all(), "the read-only mount does not show it"
os.write(fd, np.full(16, 43, np.int64).tobytes())
os.close(fd)
PY
  "$TBLOB" info "$T/b" | grep -qx "count: 12" || fail "count after fsync and close"
  local out2 rc2
  "$TBLOB" build "$T/d" "$PICO"/inputs/f32_ragged/item_*.npy || fail "build"
  mkdir -p "$T/wd"
  out2=$("$BLOBFS" "$T/d" "$T/wd" -o writable=true 2>&1); rc2=$?
  [[ $rc2 -eq 3 && $out2 == *"only a fixed-shape blob mounts writable"* ]] || fail "a writable ragged mount: $rc2 $out2"
}


# Metrics scraped while 4 readers go through every tensor file: the request
# counts and bytes agree with what was read; a busy port is refused before
# mounting, saying which.
test_metrics_scraped_during_a_read_load_agree_with_what_was_read() {
  make_blob "$T/b" 300 float32 256 64   # 1 KiB tensors
  local port; port=$(free_port)
  mount_fg "$T/b" "$T/m" -o metrics_listen=127.0.0.1:$port,keep_cache=false
  grep -q "metrics at http://127.0.0.1:$port/metrics" "$T/blobfs.log" || fail "no log line: $(cat "$T/blobfs.log")"
  "$PY" - "$T/m" "$port" <<'PY' || fail "metrics disagree with the reads"
import sys, threading, urllib.request, re
m, port = sys.argv[1], int(sys.argv[2])
url = f"http://127.0.0.1:{port}/metrics"
def scrape():
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
        text = r.read().decode()
    vals = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        name, value = line.rsplit(" ", 1)
        vals[name] = float(value)
    return text, vals
before_text, before = scrape()
assert "# TYPE blobfs_requests_total counter" in before_text
assert "# TYPE blobfs_request_duration_seconds histogram" in before_text
assert before["blobfs_stores_open"] == 1
items = [k for k in before if k.startswith("blobfs_items{")]
assert items and before[items[0]] == 300, items
got = [0] * 4
stop = False
def reader(k):
    for i in range(k, 300, 4):
        with open(f"{m}/{i:06d}.bin", "rb") as f:
            got[k] += len(f.read())
threads = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
for t in threads: t.start()
mid = [scrape()[1] for _ in range(5)]  # scrapes during the load
for t in threads: t.join()
text, after = scrape()
total = sum(got)
assert total == 300 * 1024
read_bytes = after["blobfs_read_bytes_total"] - before["blobfs_read_bytes_total"]
assert read_bytes == total, (read_bytes, total)
reads = after['blobfs_requests_total{op="read"}'] - before['blobfs_requests_total{op="read"}']
lookups = after['blobfs_requests_total{op="lookup"}'] - before['blobfs_requests_total{op="lookup"}']
assert reads >= 300 and lookups >= 300, (reads, lookups)
# Counters never go down between scrapes; histogram buckets are cumulative.
for a, b in zip([before] + mid, mid + [after]):
    for k, v in a.items():
        if k.endswith("_total") or "_bucket" in k:
            assert b[k] >= v, (k, v, b[k])
buckets = sorted((float(re.search(r'le="([^"]+)"', k).group(1).replace("+Inf", "inf")), v)
                 for k, v in after.items() if k.startswith('blobfs_request_duration_seconds_bucket{op="read"'))
assert [v for _, v in buckets] == sorted(v for _, v in buckets), buckets
assert buckets[-1][1] == after['blobfs_request_duration_seconds_count{op="read"}']
# An error is counted by its errno name.
try:
    open(f"{m}/999999.bin", "rb")
except FileNotFoundError:
    pass
assert scrape()[1].get('blobfs_errors_total{errno="ENOENT"}', 0) >= 1
# Only /metrics is served.
try:
    urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
    raise SystemExit("/other was served")
except urllib.error.HTTPError as e:
    assert e.code == 404
PY
  # A commit by another process: one refresh that followed it, the new count.
  "$BLOB_WRITE" "$T/b" append 5 1 >/dev/null || fail "append"
  followed() { [[ $(metric "$port" 'blobfs_refreshes_total{result="commit"}') -ge 1 ]]; }
  wait_until followed || fail "no refresh counted: $(metrics "$port" | grep refreshes)"
  [[ $(metric "$port" "blobfs_items{source=\"$T/b\"}") == 305 ]] || fail "items: $(metrics "$port" | grep items)"
  # The same port again: refused before mounting, naming the address.
  mkdir -p "$T/m2"
  "$BLOBFS" "$T/b" "$T/m2" -f -o metrics_listen=127.0.0.1:$port 2>"$T/err" && fail "mounted with the port in use"
  grep -q "metrics_listen 127.0.0.1:$port: cannot listen: Address already in use" "$T/err" || fail "error: $(cat "$T/err")"
  [[ $(wc -l <"$T/err") -eq 1 ]] || fail "more than one line: $(cat "$T/err")"
  is_mounted "$T/m2" && fail "a mount was left at m2"
  "$BLOBFS" "$T/b" "$T/m2" -f -o metrics_listen=localhost 2>"$T/err" && fail "mounted with a bad address"
  grep -q "metrics_listen: expected HOST:PORT" "$T/err" || fail "error: $(cat "$T/err")"
  true
}

# The transport: the ring where the kernel has it on, /dev/fuse otherwise
# with one line saying why, and transport: uring refused before mounting
# when the ring cannot be had.
test_transport_uses_the_ring_when_on_and_falls_back_with_one_log_line() {
  [[ -w $URING_KNOB ]] || { echo "    (no $URING_KNOB in this kernel: nothing to choose)"; return 0; }
  local BLOBFS_EXPECT_TRANSPORT=  # this test chooses the transport of each mount itself
  make_blob "$T/b" 300 float32 4,3 7
  set_uring N
  mount_fg "$T/b" "$T/m1" -o transport=auto
  grep -q "transport: /dev/fuse, since FUSE over io_uring is off ($URING_KNOB is N)" "$T/blobfs.log" ||
    fail "no fallback line: $(grep transport: "$T/blobfs.log")"
  cmp "$T/m1/all.bin" <("$TBLOB" export "$T/b" /dev/stdout | tail -c +129) || fail "bytes on /dev/fuse"
  mkdir -p "$T/m2"
  "$BLOBFS" "$T/b" "$T/m2" -f -o transport=uring 2>"$T/err" && fail "transport: uring started with the ring off"
  grep -q "transport: uring, but FUSE over io_uring is off" "$T/err" || fail "error: $(cat "$T/err")"
  is_mounted "$T/m2" && fail "a refused start left a mount"
  set_uring Y
  local port
  port=$(free_port)
  : >"$T/blobfs.log"
  mount_fg "$T/b" "$T/m3" -o transport=uring,metrics_listen=127.0.0.1:$port
  grep -q "transport: io_uring, one queue per CPU" "$T/blobfs.log" || fail "log: $(cat "$T/blobfs.log")"
  local i
  for i in $(seq 0 299); do cat "$T/m3/$(printf %06d "$i").bin"; done | cmp - "$T/m1/all.bin" || fail "bytes on the ring"
  "$PY" -c "import numpy as np; a = np.load('$T/m3/all.npy'); assert a.shape == (300, 4, 3) and a[299, 3, 2] == 299011" ||
    fail "numpy on the ring"
  local carried
  carried=$(metric "$port" blobfs_ring_requests_total)
  [[ -n $carried ]] && ((carried >= 300)) || fail "the ring carried $carried requests"
  # A read-only mount's first FLUSH is answered ENOSYS: 300 closes, one FLUSH.
  local flushes
  flushes=$(metric "$port" 'blobfs_requests_total{op="flush"}')
  [[ -n $flushes ]] && ((flushes <= 1)) || fail "$flushes FLUSH requests for 300 closes"
  : >"$T/blobfs.log"
  mount_fg "$T/b" "$T/m4" -o transport=dev
  grep -q "transport: /dev/fuse (transport: dev)" "$T/blobfs.log" || fail "log: $(cat "$T/blobfs.log")"
}

run_tests
