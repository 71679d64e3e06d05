#!/usr/bin/env bash
# Stores on S3 against a real server: a Ceph RADOS Gateway started for this
# suite (rgw.sh), fixtures uploaded with boto3 the way users upload them, a
# fault proxy (fault_proxy.py) between blobfs and the gateway. Every test
# has its own bucket. Ends with "N passed, M failed".
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/lib_s3.sh"

if ! s3_start; then
  echo "FAIL the RADOS Gateway did not start (make test-deps installs ceph-mon ceph-osd radosgw ceph-common)"
  echo "0 passed, 1 failed"
  exit 1
fi
export AWS_ENDPOINT_URL=$RGW_ENDPOINT
CONF=$ROOT/tests/conformance

# new_bucket: a bucket of this test's own; sets BUCKET.
new_bucket() {
  BUCKET="t$(date +%s%N | tail -c 9)$RANDOM"
  s3_py mb "$BUCKET" >/dev/null || fail "could not create bucket $BUCKET"
}

# same_tree A B: every file of mount A is in mount B with the same bytes
# (meta.yaml less its source line, which names where each came from).
same_tree() {
  "$PY" - "$1" "$2" <<'PY'
import os, sys
a, b = sys.argv[1], sys.argv[2]
names = sorted(os.listdir(a))
assert names == sorted(os.listdir(b)), f"listings differ: {names[:5]} vs {sorted(os.listdir(b))[:5]}"
for n in names:
    x, y = open(f"{a}/{n}", "rb").read(), open(f"{b}/{n}", "rb").read()
    if n == "meta.yaml":
        drop = lambda t: b"\n".join(l for l in t.split(b"\n") if not l.startswith(b"source:"))
        x, y = drop(x), drop(y)
    assert x == y, f"{n} differs ({len(x)} vs {len(y)} bytes)"
# Views found by name, not listed: a range of the first items.
if "000001.bin" in names:
    assert open(f"{a}/000000-000002.bin", "rb").read() == open(f"{b}/000000-000002.bin", "rb").read(), "a range differs"
PY
}

# read_tensors MNT N: every tensor file 0..N-1 of make_blob's values checked.
read_tensors() {
  "$PY" - "$1" "$2" "${3:-float32}" "${4:-4,3}" <<'PY'
import sys, numpy as np
m, n, dt, shape = sys.argv[1], int(sys.argv[2]), sys.argv[3], tuple(int(x) for x in sys.argv[4].split(","))
per = int(np.prod(shape))
for i in range(n):
    want = (i * 1000 + np.arange(per)).astype(dt).tobytes()
    got = open(f"{m}/{i:06d}.bin", "rb").read()
    assert got == want, f"tensor {i} differs"
PY
}

test_conformance_blobs_and_datasets_uploaded_with_boto3_mount_byte_exact_and_verify() {
  new_bucket
  local d name n=0
  for d in "$CONF"/tensorblob/*/; do
    name=$(basename "$d")
    [[ -f $d/.stat && $name != db_* ]] || continue
    s3_py upload "$d" "s3://$BUCKET/blobs/$name" || fail "upload $name"
    "$TBLOB" verify "s3://$BUCKET/blobs/$name" >/dev/null || fail "tblob verify s3://$BUCKET/blobs/$name"
    mount_fg "$d" "$T/local_$name"
    mount_fg "s3://$BUCKET/blobs/$name" "$T/s3_$name"
    same_tree "$T/local_$name" "$T/s3_$name" || fail "$name: the S3 mount differs from the local one"
    n=$((n + 1))
  done
  s3_py upload "$CONF/picomap" "s3://$BUCKET/ragged" || fail "upload picomap"
  for d in "$CONF"/picomap/*.dat; do
    name=$(basename "$d" .dat)
    "$TBLOB" verify "s3://$BUCKET/ragged/$name" >/dev/null || fail "tblob verify ragged $name"
    mount_fg "$CONF/picomap/$name" "$T/lr_$name"
    mount_fg "s3://$BUCKET/ragged/$name" "$T/sr_$name"
    same_tree "$T/lr_$name" "$T/sr_$name" || fail "ragged $name: the S3 mount differs from the local one"
    n=$((n + 1))
  done
  echo "    $n stores compared file by file" >&2
  [[ $n -ge 8 ]] || fail "only $n fixtures found"
}

test_tblob_info_cat_export_verify_take_s3_paths() {
  new_bucket
  make_blob "$T/b" 30 float32 4,3 7
  "$TBLOB" push "$T/b" "s3://$BUCKET/emb" >/dev/null || fail "push"
  "$TBLOB" info "s3://$BUCKET/emb" | grep -q "^count: 30$" || fail "info: $("$TBLOB" info "s3://$BUCKET/emb")"
  cmp -s <("$TBLOB" cat "s3://$BUCKET/emb" 17) <("$TBLOB" cat "$T/b" 17) || fail "cat differs"
  "$TBLOB" export "s3://$BUCKET/emb" "$T/out.npy" --range 5:25 || fail "export"
  "$TBLOB" export "$T/b" "$T/want.npy" --range 5:25
  cmp -s "$T/out.npy" "$T/want.npy" || fail "export differs"
  "$TBLOB" verify "s3://$BUCKET/emb" | grep -q "ok, 30 tensors" || fail "verify"
  # Writing to a store on S3 is refused, naming what to do instead.
  local err
  err=$("$TBLOB" import "s3://$BUCKET/emb" "$T/want.npy" 2>&1) && fail "import into S3 succeeded"
  [[ $err == *"tblob push"* || $err == *"s3://"* ]] || fail "unclear refusal: $err"
  mkdir -p "$T/w"
  err=$("$BLOBFS" "s3://$BUCKET/emb" "$T/w" -f -o writable 2>&1) && fail "writable S3 mount"
  [[ $err == *"read-only"* ]] || fail "unclear refusal: $err"
}

test_push_then_a_second_node_sees_appends_within_the_refresh_interval_while_eight_readers_read() {
  new_bucket
  make_blob "$T/b" 200 float32 4,3 64
  "$TBLOB" push "$T/b" "s3://$BUCKET/live" >/dev/null || fail "push"
  mount_fg "s3://$BUCKET/live" "$T/node1" -o refresh_interval=0.5
  mount_fg "s3://$BUCKET/live" "$T/node2" -o refresh_interval=0.5
  read_tensors "$T/node2" 200 || fail "node 2 reads wrong bytes"
  # 8 readers on node 1 check every tensor they can see while the store grows.
  "$PY" - "$T/node1" "$T/stop" >"$T/readers.out" 2>&1 <<'PY' &
import os, sys, threading, numpy as np
m, stop = sys.argv[1], sys.argv[2]
bad, reads, seen = [], [0], [0]
def reader(k):
    rng = np.random.default_rng(k)
    while not os.path.exists(stop):
        n = len([x for x in os.listdir(m) if x.endswith(".bin") and x[0].isdigit()])
        seen[0] = max(seen[0], n)
        i = int(rng.integers(0, n))
        try:
            got = open(f"{m}/{i:06d}.bin", "rb").read()
        except FileNotFoundError:
            continue
        want = (i * 1000 + np.arange(12)).astype(np.float32).tobytes()
        reads[0] += 1
        if got != want: bad.append(i)
ts = [threading.Thread(target=reader, args=(k,)) for k in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
print(f"reads={reads[0]} mismatches={len(bad)} seen={seen[0]}")
sys.exit(1 if bad else 0)
PY
  local readers=$! round
  for round in 1 2 3; do
    "$PY" -c "
import numpy as np
n0 = 200 + ($round - 1) * 150
a = ((np.arange(n0, n0 + 150)[:, None] * 1000) + np.arange(12)[None, :]).astype(np.float32).reshape(150, 4, 3)
np.save('$T/more.npy', a)"
    "$TBLOB" import "$T/b" "$T/more.npy" || fail "append"
    "$TBLOB" push "$T/b" "s3://$BUCKET/live" >/dev/null || fail "push $round"
    local want=$((200 + round * 150)) t0=$SECONDS
    wait_until test -e "$T/node1/$(printf %06d $((want - 1))).bin" || fail "node 1 never showed $want tensors"
    wait_until test -e "$T/node2/$(printf %06d $((want - 1))).bin" || fail "node 2 never showed $want tensors"
    echo "    push $round: both nodes show $want tensors within $((SECONDS - t0)) s" >&2
  done
  touch "$T/stop"
  wait "$readers" || fail "readers: $(cat "$T/readers.out")"
  echo "    $(cat "$T/readers.out")" >&2
  read_tensors "$T/node2" 650 || fail "node 2 wrong after the pushes"
}

test_push_and_pull_are_resumable_and_round_trip_byte_exact() {
  new_bucket
  "$PY" -c "import numpy as np; np.save('$T/big.npy', np.random.default_rng(3).integers(0, 255, (3000, 40000), dtype=np.uint8))"
  "$TBLOB" import "$T/b" "$T/big.npy" --create --block-size 2000 || fail "import"  # blocks of 80 MB: multipart
  # An interrupted push: the proxy holds every upload of the second block.
  proxy_start "$T/rules"
  proxy_set "delay 60000 match=PUT .*partNumber=3"
  AWS_ENDPOINT_URL=$PROXY_ENDPOINT timeout -s KILL 8 "$TBLOB" push "$T/b" "s3://$BUCKET/p" --parallel 2 && fail "the held push finished"
  proxy_set
  local out
  out=$("$TBLOB" push "$T/b" "s3://$BUCKET/p") || fail "second push"
  [[ $out == *"already there"* ]] || fail "push output: $out"
  out=$("$TBLOB" push "$T/b" "s3://$BUCKET/p") || fail "third push"
  [[ $out == "sent 0 files"* ]] || fail "a push of an unchanged store sent files: $out"
  "$TBLOB" pull "s3://$BUCKET/p" "$T/copy" >/dev/null || fail "pull"
  "$TBLOB" export "$T/copy" "$T/copy.npy" || fail "export of the pulled copy"
  cmp -s "$T/big.npy" "$T/copy.npy" || fail "the pulled copy differs"
  "$TBLOB" verify "$T/copy" >/dev/null || fail "verify of the pulled copy"
  out=$("$TBLOB" pull "s3://$BUCKET/p" "$T/copy") || fail "second pull"
  [[ $out == *", 2 already there"* || $out == *"already there"* ]] || fail "pull output: $out"
  # A ragged dataset both ways, under another name.
  "$PY" -c "
import numpy as np
for i in range(5): np.save('$T/item%d.npy' % i, np.arange((i + 1) * 6, dtype=np.int32).reshape(i + 1, 6))"
  "$TBLOB" build "$T/ds" "$T"/item{0,1,2,3,4}.npy || fail "build"
  "$TBLOB" push "$T/ds" "s3://$BUCKET/r/ragged" >/dev/null || fail "push ragged"
  "$TBLOB" verify "s3://$BUCKET/r/ragged" >/dev/null || fail "verify ragged on S3"
  "$TBLOB" pull "s3://$BUCKET/r/ragged" "$T/back/ds2" >/dev/null || fail "pull ragged"
  cmp -s "$T/ds.dat" "$T/back/ds2.dat" && cmp -s "$T/ds.json" "$T/back/ds2.json" || fail "the pulled dataset differs"
}

# A local block file is block-sized whatever it holds (sparse past its
# rows); its object holds only the rows, and a pull makes it whole again.
test_a_last_block_goes_up_only_as_far_as_its_rows_and_comes_back_whole() {
  new_bucket
  make_blob "$T/b" 50 float32 1000 8192            # one 32 MB block file holding 200 KB
  "$TBLOB" push "$T/b" "s3://$BUCKET/s" >/dev/null || fail "push"
  local size
  size=$(s3_py ls "s3://$BUCKET/s" | awk '$1 !~ /\.(conf|stat)$/ {print $2}')
  [[ $size -eq $((50 * 4000)) ]] || fail "the block object is $size bytes, want $((50 * 4000))"
  mount_fg "s3://$BUCKET/s" "$T/m"
  cmp -s "$T/m/all.bin" <("$TBLOB" export "$T/b" /dev/stdout | tail -c $((50 * 4000))) || fail "all.bin differs"
  "$TBLOB" verify "s3://$BUCKET/s" >/dev/null || fail "verify"
  "$TBLOB" pull "s3://$BUCKET/s" "$T/copy" >/dev/null || fail "pull"
  local block
  block=$("$PY" -c "import json; print(json.load(open('$T/copy/.stat'))['bds'][0])")
  [[ $(stat -c %s "$T/copy/$block") -eq $((8192 * 4000)) ]] || fail "the pulled block is not block-sized"
  "$PY" -c "
import json, numpy as np
# what Python tensorblob does: map the whole block
m = np.memmap('$T/copy/$block', dtype=np.float32, mode='r', shape=(8192, 1000))
assert (m[49] == 49 * 1000 + np.arange(1000)).all()" || fail "the pulled block does not map as Python maps it"
  "$TBLOB" pull "s3://$BUCKET/s" "$T/copy" | grep -q "already there" || fail "a second pull fetched again"
  "$TBLOB" push "$T/b" "s3://$BUCKET/s" | grep -q "^sent 0 files" || fail "a second push sent again"
}

test_push_with_delete_removes_blocks_no_commit_lists() {
  new_bucket
  make_blob "$T/b" 40 float32 4,3 10
  "$TBLOB" push "$T/b" "s3://$BUCKET/d" >/dev/null || fail "push"
  "$TBLOB" truncate "$T/b" 10 || fail "truncate"
  "$TBLOB" push "$T/b" "s3://$BUCKET/d" >/dev/null || fail "push after truncate"
  [[ $(s3_py ls "s3://$BUCKET/d" | wc -l) -eq 6 ]] || fail "the old blocks should stay without --delete"
  "$TBLOB" push "$T/b" "s3://$BUCKET/d" --delete | grep -q "3 unlisted blocks deleted" || fail "--delete"
  [[ $(s3_py ls "s3://$BUCKET/d" | wc -l) -eq 3 ]] || fail "left: $(s3_py ls "s3://$BUCKET/d")"
  "$TBLOB" verify "s3://$BUCKET/d" >/dev/null || fail "verify after --delete"
}

test_the_gateway_stopped_mid_read_gives_eio_then_reads_resume_without_remounting() {
  new_bucket
  make_blob "$T/b" 2000 float32 4,3 100
  "$TBLOB" push "$T/b" "s3://$BUCKET/g" >/dev/null || fail "push"
  mount_fg "s3://$BUCKET/g" "$T/m" -o s3_retries=2,s3_part_size=64K
  read_tensors "$T/m" 100 || fail "first reads"
  s3_gateway_stop
  local t0=$SECONDS
  cat "$T/m/001500.bin" >/dev/null 2>"$T/err" && fail "a read with the gateway down succeeded"
  grep -q "Input/output error" "$T/err" || fail "not EIO: $(cat "$T/err")"
  echo "    EIO after $((SECONDS - t0)) s of retries" >&2
  kill -0 "$PID" || fail "the daemon died"
  grep -q "s3://$BUCKET/g/" "$T/blobfs.log" || fail "the log does not name the object: $(cat "$T/blobfs.log")"
  s3_gateway_start || fail "gateway restart"
  read_tensors "$T/m" 2000 || fail "reads after the restart"
}

test_delays_truncated_answers_resets_and_503s_are_retried_and_never_served() {
  new_bucket
  make_blob "$T/b" 3000 float32 4,3 500
  "$TBLOB" push "$T/b" "s3://$BUCKET/f" >/dev/null || fail "push"
  proxy_start "$T/rules"
  local rule
  for rule in "delay 300 count=3 match=GET" "truncate 1000 count=3 match=GET .*/f/[0-9a-f-]{36}" \
              "reset count=3 match=GET .*/f/[0-9a-f-]{36}" "status 503 count=4" "corrupt count=0"; do
    proxy_set "$rule"
    mount_fg "s3://$BUCKET/f" "$T/m_${#rule}" -o s3_endpoint=$PROXY_ENDPOINT,s3_part_size=64K,s3_retries=6
    read_tensors "$T/m_${#rule}" 3000 || fail "wrong bytes with '$rule': $(tail -3 "$T/blobfs.log")"
    fusermount3 -u "$T/m_${#rule}"
  done
  grep -q " truncate" "$PROXY_LOG" && grep -q " reset" "$PROXY_LOG" && grep -q " 503 " "$PROXY_LOG" ||
    fail "the proxy did not inject every fault: $(tail -5 "$PROXY_LOG")"
}

test_a_damaged_cache_part_is_fetched_again_never_served() {
  new_bucket
  make_blob "$T/b" 5000 float32 4,3 1000
  "$TBLOB" push "$T/b" "s3://$BUCKET/c" >/dev/null || fail "push"
  proxy_start "$T/rules"
  local opts="s3_endpoint=$PROXY_ENDPOINT,cache_dir=$T/cache,s3_part_size=64K" port
  port=$(free_port)
  mount_fg "s3://$BUCKET/c" "$T/m1" -o "$opts,metrics_listen=127.0.0.1:$port"
  read_tensors "$T/m1" 5000 || fail "first pass"
  # The metrics say what happened: parts fetched, their bytes, no hits yet.
  local misses fetched
  misses=$(metric "$port" blobfs_s3_cache_misses_total); fetched=$(metric "$port" blobfs_s3_fetched_bytes_total)
  [[ -n $misses && $misses -ge 3 ]] || fail "cold: $misses misses"
  [[ -n $fetched && $fetched -ge 240000 ]] || fail "cold: $fetched bytes fetched for 240000 bytes of tensors"
  [[ $(metric "$port" 'blobfs_s3_cache_hits_total{tier="disk"}') == 0 ]] || fail "cold: disk hits"
  fusermount3 -u "$T/m1"
  gone() { [[ -z $(metric "$port" blobfs_stores_open) ]]; }
  wait_until gone || fail "metrics still served after unmount"
  local parts gets
  parts=$(ls "$T/cache" | grep -c '\.part$')
  [[ $parts -ge 3 ]] || fail "only $parts parts cached"
  # Warm: nothing is fetched again.
  : > "$PROXY_LOG"
  mount_fg "s3://$BUCKET/c" "$T/m2" -o "$opts,metrics_listen=127.0.0.1:$port"
  read_tensors "$T/m2" 5000 || fail "warm pass"
  [[ $(metric "$port" blobfs_s3_cache_misses_total) == 0 ]] || fail "warm: misses"
  [[ $(metric "$port" 'blobfs_s3_cache_hits_total{tier="disk"}') -ge $parts ]] || fail "warm: too few disk hits"
  fusermount3 -u "$T/m2"
  gets=$(grep -cE "^GET .*/c/[0-9a-f-]{36}" "$PROXY_LOG")
  [[ $gets -eq 0 ]] || fail "$gets block GETs with a warm cache"
  # Every part damaged: a flipped byte, a cut file, garbage.
  local f k=0
  for f in "$T"/cache/*.part; do
    case $((k++ % 3)) in
      0) printf '\xff' | dd of="$f" bs=1 seek=200 conv=notrunc status=none ;;
      1) truncate -s 150 "$f" ;;
      2) head -c 5000 /dev/urandom > "$f" ;;
    esac
  done
  : > "$PROXY_LOG"
  mount_fg "s3://$BUCKET/c" "$T/m3" -o "$opts,metrics_listen=127.0.0.1:$port"
  read_tensors "$T/m3" 5000 || fail "a damaged cache part was served"
  [[ $(metric "$port" blobfs_s3_cache_damaged_total) -ge $parts ]] || fail "damaged parts not counted"
  gets=$(grep -cE "^GET .*/c/[0-9a-f-]{36}" "$PROXY_LOG")
  [[ $gets -ge $parts ]] || fail "only $gets of $parts damaged parts fetched again"
  grep -q "damaged" "$T/blobfs.log" || fail "no log line about the damaged parts"
}

test_a_missing_block_object_is_eio_naming_it_and_the_rest_is_served() {
  new_bucket
  make_blob "$T/b" 300 float32 4,3 100
  "$TBLOB" push "$T/b" "s3://$BUCKET/m" >/dev/null || fail "push"
  local gone
  gone=$("$PY" -c "import json; print(json.load(open('$T/b/.stat'))['bds'][1])")
  s3_py rm "s3://$BUCKET/m/$gone" || fail "rm"
  mount_fg "s3://$BUCKET/m" "$T/m"
  cat "$T/m/000150.bin" >/dev/null 2>"$T/err" && fail "read of a missing block succeeded"
  grep -q "Input/output error" "$T/err" || fail "not EIO: $(cat "$T/err")"
  grep -q "$gone" "$T/blobfs.log" || fail "the log does not name the object: $(cat "$T/blobfs.log")"
  cmp -s "$T/m/000050.bin" <("$TBLOB" cat "$T/b" 50) || fail "block 0 not served"
  cmp -s "$T/m/000250.bin" <("$TBLOB" cat "$T/b" 250) || fail "block 2 not served"
  kill -0 "$PID" || fail "the daemon died"
}

test_wrong_credentials_missing_bucket_and_no_endpoint_fail_before_mounting_in_one_line() {
  new_bucket
  make_blob "$T/b" 5
  "$TBLOB" push "$T/b" "s3://$BUCKET/x" >/dev/null || fail "push"
  mkdir -p "$T/m"
  _mounts+=("$T/m")
  local err
  check_refusal() {
    local want=$1; shift
    err=$("$@" 2>&1) && fail "mounted: $*"
    [[ $(printf '%s\n' "$err" | grep -vc '^usage:') -eq 1 ]] || fail "not one line: $err"
    [[ $err == *"$want"* ]] || fail "'$want' not in: $err"
    ! grep -q " $T/m fuse" /proc/mounts || fail "a mount was left behind"
  }
  check_refusal "access denied" env AWS_SECRET_ACCESS_KEY=wrong "$BLOBFS" "s3://$BUCKET/x" "$T/m" -f
  check_refusal "AWS_ACCESS_KEY_ID" env AWS_ACCESS_KEY_ID=NOSUCHKEY "$BLOBFS" "s3://$BUCKET/x" "$T/m" -f
  check_refusal "bucket does not exist" "$BLOBFS" "s3://nosuchbucket$RANDOM/x" "$T/m" -f
  check_refusal "s3_endpoint" "$BLOBFS" "s3://$BUCKET/x" "$T/m" -f -o s3_endpoint=http://127.0.0.1:1,s3_retries=0
  check_refusal "no such blob" "$BLOBFS" "s3://$BUCKET/nothing" "$T/m" -f
  check_refusal "s3_endpoint" "$BLOBFS" "s3://$BUCKET/x" "$T/m" -f -o s3_endpoint=notaurl
  check_refusal "bucket name" "$BLOBFS" "s3://UPPER/x" "$T/m" -f
  # The same for tblob, which reads the same environment.
  err=$(AWS_SECRET_ACCESS_KEY=wrong "$TBLOB" info "s3://$BUCKET/x" 2>&1) && fail "info with a wrong secret"
  [[ $err == *"access denied"* ]] || fail "tblob: $err"
  # Credentials from the shared file and a profile, as the AWS tools take them.
  printf '[other]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$T/creds"
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE="$T/creds" AWS_PROFILE=other \
    "$TBLOB" info "s3://$BUCKET/x" >/dev/null || fail "credentials from a profile"
  ! grep -rq "$AWS_SECRET_ACCESS_KEY" "$T/blobfs.log" 2>/dev/null || fail "a secret was logged"
}

test_the_daemon_detaches_and_serves_reads_ahead_after_forking() {
  new_bucket
  make_blob "$T/b" 20000 float32 4,3 4096
  "$TBLOB" push "$T/b" "s3://$BUCKET/bg" >/dev/null || fail "push"
  mkdir -p "$T/m"
  _mounts+=("$T/m")
  "$BLOBFS" "s3://$BUCKET/bg" "$T/m" -o s3_part_size=64K 2>>"$T/blobfs.log" || fail "daemon mode"
  local pid
  pid=$(pgrep -f "blobfs s3://$BUCKET/bg")
  _pids+=("$pid")
  cmp -s "$T/m/all.bin" <("$TBLOB" export "$T/b" /dev/stdout | tail -c $((20000 * 48))) || fail "all.bin differs"
}

run_tests
