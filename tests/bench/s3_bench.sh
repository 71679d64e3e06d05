#!/usr/bin/env bash
# s3_bench.sh [BUILD]: blobfs over S3 against the local RADOS Gateway, in one
# run, against two baselines measured in the same run:
#   ceiling  boto3 downloading the same block objects whole, 8 at a time
#            (what the gateway can deliver here)
#   s3fs     Debian's s3fs mounting a bucket that holds the same tensors one
#            object per tensor (the layout a user would otherwise pick)
# Sets: 20,000 x 3 KB and 500 x 600 KB tensors (float32). For each: dd bs=1M
# of all.bin and reading every tensor file in order, cold (fresh daemon,
# empty disk cache, no page cache) and with a warm disk cache (fresh daemon,
# cache_dir filled by the cold run). Prints MB/s and the ratios.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(realpath "${1:-$ROOT/build}")
BLOBFS=$BUILD/blobfs
TBLOB=$BUILD/tblob
PY=/usr/bin/python3
source "$ROOT/tests/s3/lib_s3.sh"
command -v s3fs >/dev/null || { echo "s3_bench: needs s3fs (apt-get install s3fs)"; exit 2; }

W=$(mktemp -d /tmp/s3bench.XXXXXX)
mounts=()
cleanup() {
  local m
  for m in "${mounts[@]+"${mounts[@]}"}"; do
    grep -q " $m fuse" /proc/mounts && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; }
  done
  rm -rf "$W"
}
trap cleanup EXIT
trap "exit 130" INT TERM
s3_start || exit 1
export AWS_ENDPOINT_URL=$RGW_ENDPOINT
s3_py mb bench >/dev/null
s3_py mb pertensor >/dev/null

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
# mbps BYTES SECONDS
mbps() { "$PY" -c "print(f'{$1 / $2 / 1e6:.0f}')"; }
ratio() { "$PY" -c "print(f'{$1 / $2:.2f}')"; }

# read_files MNT N: reads 000000.bin .. N-1 in order; prints the bytes read.
read_files() {
  "$PY" - "$1" "$2" <<'PY'
import sys
m, n = sys.argv[1], int(sys.argv[2])
total = 0
for i in range(n):
    with open(f"{m}/{i:06d}.bin", "rb") as f:
        total += len(f.read())
print(total)
PY
}

mount_blobfs() {  # SOURCE MNT [OPTS]
  mkdir -p "$2"; mounts+=("$2")
  "$BLOBFS" "$1" "$2" ${3:+-o "$3"} 2>>"$W/blobfs.log" || { cat "$W/blobfs.log"; exit 1; }
}
umount_blobfs() { fusermount3 -u "$1"; for _ in $(seq 50); do grep -q " $1 fuse" /proc/mounts || return 0; sleep 0.1; done; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "gateway: Ceph RADOS Gateway $(radosgw --version 2>/dev/null | awk '{print $3}') on 127.0.0.1 (memstore OSD), one node"

for set in "20000 768" "500 150528"; do
  read -r n per <<<"$set"
  bytes_per=$((per * 4)); total=$((n * bytes_per))
  name="s${n}"
  echo
  echo "== $n tensors x $((bytes_per / 1000)) KB (all.bin $((total / 1000000)) MB)"
  "$PY" -c "import numpy as np; np.save('$W/$name.npy', np.random.default_rng(7).random(($n, $per), dtype=np.float32))"
  "$TBLOB" import "$W/$name" "$W/$name.npy" --create >/dev/null
  "$TBLOB" push "$W/$name" "s3://bench/$name" >/dev/null
  s3_py upload-tensors "$W/$name.npy" "s3://pertensor/$name" --threads 16 >/dev/null

  # (a) the ceiling: boto3 fetching the block objects whole, in parallel,
  # into files (what a user does) and thrown away (the network alone).
  best_ceiling=0; best_discard=0
  for rep in 1 2 3; do
    for how in files discard; do
      rm -rf "$W/dl"
      flag=(); [[ $how == discard ]] && flag=(--discard)
      out=$(s3_py download-all "s3://bench/$name" "$W/dl" --threads 8 "${flag[@]}")
      b=$(sed 's/.*bytes=\([0-9]*\).*/\1/' <<<"$out"); s=$(sed 's/.*seconds=\([0-9.]*\).*/\1/' <<<"$out")
      r=$(mbps "$b" "$s")
      if [[ $how == files ]]; then (( r > best_ceiling )) && best_ceiling=$r; else (( r > best_discard )) && best_discard=$r; fi
    done
  done
  drop
  echo "ceiling (boto3, 8 parallel whole-object GETs into files): $best_ceiling MB/s; bytes thrown away: $best_discard MB/s (best of 3)"

  for pass in cold warm; do
    [[ $pass == cold ]] && rm -rf "$W/cache"
    # dd of all.bin, best of 3 as for the ceiling (cold: an empty disk cache
    # each time, the first one kept for the warm passes)
    dd_rate=0
    for rep in 1 2 3; do
      use=$W/cache
      if [[ $pass == cold && $rep != 1 ]]; then rm -rf "$W/cache_dd"; use=$W/cache_dd; fi
      drop
      mount_blobfs "s3://bench/$name" "$W/m" "cache_dir=$use"
      t0=$(now); dd if="$W/m/all.bin" of=/dev/null bs=1M status=none; t1=$(now)
      umount_blobfs "$W/m"
      r=$(mbps "$total" "$("$PY" -c "print($t1 - $t0)")")
      (( r > dd_rate )) && dd_rate=$r
    done
    rm -rf "$W/cache_dd"
    [[ $pass == cold ]] && rm -rf "$W/cache_files"
    # every tensor file, in order
    drop
    cache=$W/cache; [[ $pass == cold ]] && cache=$W/cache_files
    mount_blobfs "s3://bench/$name" "$W/m" "cache_dir=$cache"
    t0=$(now); got=$(read_files "$W/m" "$n"); t1=$(now)
    umount_blobfs "$W/m"
    files_s=$("$PY" -c "print($t1 - $t0)")
    files_rate=$(mbps "$got" "$files_s")
    files_per_s=$("$PY" -c "print(f'{$n / $files_s:.0f}')")
    echo "blobfs $pass: dd all.bin $dd_rate MB/s = $(ratio "$dd_rate" "$best_ceiling")x ceiling ($(ratio "$dd_rate" "$best_discard")x thrown away);" \
         "every tensor file $files_rate MB/s, $files_per_s files/s = $(ratio "$files_rate" "$best_ceiling")x ceiling"
    eval "files_${pass}=$files_per_s"
  done

  # (b) s3fs over one object per tensor, cold: the first 1,000 files.
  printf '%s:%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$W/passwd"; chmod 600 "$W/passwd"
  mkdir -p "$W/s3fs"; mounts+=("$W/s3fs")
  s3fs pertensor "$W/s3fs" -o url="$RGW_ENDPOINT" -o use_path_request_style -o passwd_file="$W/passwd" \
    -o stat_cache_expire=1 -o enable_noobj_cache 2>>"$W/s3fs.log" || { cat "$W/s3fs.log"; exit 1; }
  drop
  limit=$(( n < 1000 ? n : 1000 ))
  t0=$(now); got=$(read_files "$W/s3fs/$name" "$limit"); t1=$(now)
  fusermount3 -u "$W/s3fs"
  s3fs_s=$("$PY" -c "print($t1 - $t0)")
  s3fs_per_s=$("$PY" -c "print(f'{$limit / $s3fs_s:.0f}')")
  echo "s3fs, one object per tensor, cold: $s3fs_per_s files/s ($(mbps "$got" "$s3fs_s") MB/s, first $limit files)"
  echo "every tensor file: blobfs cold $(ratio "$files_cold" "$s3fs_per_s")x s3fs, warm cache $(ratio "$files_warm" "$s3fs_per_s")x s3fs"
  rm -rf "$W/$name" "$W/$name.npy" "$W/dl"
done
s3_stop
