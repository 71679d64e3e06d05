#!/usr/bin/env bash
# Runs every malformed input in tests/hostile/cases (see make_cases.py): each
# must give its expected exit code and a one-line error that names the file
# and the problem -- no crash, no hang, no mount left behind.
source "$(dirname "$0")/../lib.sh"
CASES=$ROOT/tests/hostile/cases
F32=$ROOT/tests/conformance/tensorblob/f32_3blocks

# make_special PATH KIND: what git cannot hold, made where a store file was.
make_special() {
  local path=$1 kind=$2
  rm -rf "$path"
  case $kind in
    fifo) mkfifo "$path" ;;
    chardev) mknod "$path" c 1 5 ;;  # the device /dev/zero is
    socket) "$PY" -c "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$path" ;;
    dir) mkdir "$path" ;;
    *) fail "unknown special kind $kind" ;;
  esac
}

# sparse_blob DIR BLOCKS: BLOCKS sparse 64 MiB blocks of uint8 tensors of
# 1 MiB (64 a block); tensor 64k+j starts with the bytes "k,j". Echoes the count.
sparse_blob() {
  "$PY" - "$1" "$2" <<'PY'
import json, os, sys, uuid
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d)
conf = {"__notes__": {"args": [], "class_name": "TensorBlob", "kwargs": {}, "using_default_values": []},
        "block_size": 64, "dtype": "uint8", "shape": [1 << 20]}
open(f"{d}/.conf", "w").write(json.dumps(conf, indent=2, sort_keys=True) + "\n")
names = [str(uuid.uuid4()) for _ in range(n)]
for k, name in enumerate(names):
    with open(f"{d}/{name}", "wb") as f:
        f.truncate(64 << 20)
        for j in (0, 63):
            f.seek(j << 20); f.write(f"{k},{j}".encode())
open(f"{d}/.stat", "w").write(json.dumps({"len": 64 * n, "bds": names}, separators=(",", ":")))
PY
}

# read_marks MNT BLOCKS: the first and last tensor of every block read back
# with their marks, by 8 readers at once (so the daemon runs all its worker
# threads, each with its own /dev/fuse descriptor under clone_fd).
read_marks() {
  "$PY" - "$1" "$2" <<'PY'
import sys
from concurrent.futures import ThreadPoolExecutor
m, n = sys.argv[1], int(sys.argv[2])
def check(kj):
    k, j = kj
    with open(f"{m}/{64 * k + j:06d}.bin", "rb") as f:
        return f.read(8).rstrip(b"\0") == f"{k},{j}".encode()
with ThreadPoolExecutor(8) as pool:
    ok = all(pool.map(check, [(k, j) for k in range(n) for j in (0, 63)]))
sys.exit(0 if ok else 1)
PY
}

run_case() {
  local dir=$1 run path code message
  run=$(sed -n 's/^run: //p' "$dir/expect"); path=$(sed -n 's/^path: //p' "$dir/expect")
  code=$(sed -n 's/^exit: //p' "$dir/expect"); message=$(sed -n 's/^message: //p' "$dir/expect")
  cp -a "$dir" "$T/case"
  local name kind
  while read -r name kind; do make_special "$T/case/$name" "$kind"; done < <(sed -n 's/^special: //p' "$dir/expect")
  local target="$T/case/$path" err rc
  [[ $path == /* ]] && target=$path
  case $run in
    info|verify) err=$(timeout 20 "$TBLOB" "$run" "$target" 2>&1 >/dev/null); rc=$? ;;
    cat) err=$(timeout 20 "$TBLOB" cat "$target" 2 2>&1 >/dev/null); rc=$? ;;
    import) err=$(timeout 20 "$TBLOB" import "$T/new" "$target" --create 2>&1 >/dev/null); rc=$?
      [[ -e $T/new ]] && fail "a refused import left $T/new" ;;
    blobfs-config)
      mkdir -p "$T/m"; _mounts+=("$T/m")
      err=$(timeout 20 "$BLOBFS" "$F32" "$T/m" --config "$target" 2>&1); rc=$?
      is_mounted "$T/m" && fail "a mount was left behind" ;;
    blobfs-source)
      # path: SOURCE (in the case) then blobfs's own arguments.
      local src args
      read -r src args <<<"$path"
      mkdir -p "$T/m"; _mounts+=("$T/m")
      # shellcheck disable=SC2086
      err=$(timeout 20 "$BLOBFS" "$T/case/$src" "$T/m" $args 2>&1); rc=$?
      is_mounted "$T/m" && fail "a mount was left behind" ;;
    mount-name)
      # The error a client gets for this name at the mount, as an errno name.
      mount_fg "$F32" "$T/m"
      local got
      got=$("$PY" -c "
import errno, os, sys
try:
    os.stat(os.path.join(sys.argv[1], open(sys.argv[2], 'rb').read().decode()))
    print('found')
except OSError as e:
    print(errno.errorcode[e.errno])" "$T/m" "$target")
      [[ $got == "$code" ]] || fail "stat gave $got, want $code"
      return 0 ;;
    signal)
      mount_fg "$F32" "$T/m"
      kill -s "$path" "$PID" || fail "could not send SIG$path"
      sleep 0.5
      if [[ $code == ignored ]]; then
        kill -0 "$PID" 2>/dev/null || fail "SIG$path ended the daemon"
        cmp -s "$T/m/000003.bin" <("$TBLOB" cat "$F32" 3) || fail "not serving after SIG$path"
        return 0
      fi
      wait_until bash -c "! kill -0 $PID 2>/dev/null" || fail "SIG$path did not end the daemon"
      wait "$PID"; rc=$?
      [[ $rc -eq 0 ]] || fail "exit $rc after SIG$path, want 0"
      is_mounted "$T/m" && fail "SIG$path left the mount"
      ls "$T/m" >/dev/null 2>&1 || fail "mountpoint broken after SIG$path"
      return 0 ;;
    limit-as|limit-nofile)
      # path: the limit, then blobfs's own arguments.
      if [[ $run == limit-as && -n ${TBLOB_SANITIZED:-} ]]; then
        echo "    (sanitizer build: its shadow memory needs more address space than the limit)" >&2
        return 0
      fi
      local limit args blocks=32
      read -r limit args <<<"$path"
      if [[ $run == limit-nofile && $limit == */* && -n ${TBLOB_SANITIZED:-} ]]; then
        # UBSan probes a vptr by writing it into a pipe(); with every
        # descriptor taken the probe fails and valid objects are reported.
        echo "    (sanitizer build: UBSan's vptr probe needs free descriptors)" >&2
        return 0
      fi
      [[ $run == limit-nofile ]] && blocks=120
      sparse_blob "$T/b" "$blocks" || fail "could not make the sparse blob"
      mkdir -p "$T/m"; _mounts+=("$T/m")
      # LIMIT is "SOFT" (the hard limit kept) or "SOFT/HARD".
      local flag=-v soft=${limit%/*} hard=
      [[ $limit == */* ]] && hard=${limit#*/}
      [[ $run == limit-nofile ]] && flag=-n
      [[ $run == limit-as ]] && hard=$soft
      # shellcheck disable=SC2086
      (ulimit -S $flag "$soft"; [[ -z $hard ]] || ulimit -H $flag "$hard"; exec "$BLOBFS" "$T/b" "$T/m" -f $args) 2>>"$T/blobfs.log" &
      PID=$!; _pids+=("$PID")
      wait_until is_mounted "$T/m" || { cat "$T/blobfs.log" >&2; fail "blobfs did not mount under ulimit $flag $limit"; }
      read_marks "$T/m" "$blocks" || fail "a tensor read back wrong under ulimit $flag $limit: $(tail -3 "$T/blobfs.log")"
      read_marks "$T/m" "$blocks" || fail "a second pass read back wrong"
      kill -0 "$PID" || fail "the daemon died"
      return 0 ;;
    *) fail "unknown run '$run' in $dir/expect" ;;
  esac
  [[ $rc -eq $code ]] || fail "exit $rc, want $code: $err"
  [[ $code -eq 0 ]] && return 0
  [[ $rc -lt 124 ]] || fail "killed by a signal or timed out: $err"
  err=${err%$'\n'usage: blobfs*}  # blobfs adds its usage line after the error
  [[ $(printf '%s\n' "$err" | wc -l) -eq 1 ]] || fail "error is not one line: $err"
  [[ $err == *"$message"* ]] || fail "error lacks '$message': $err"
  [[ $err == *"$T/case"* || $target == /* ]] || fail "error does not name the file: $err"
}

for d in "$CASES"/*/; do
  name=$(basename "$d")
  eval "test_$name() { run_case '$d'; }"
done
run_tests
