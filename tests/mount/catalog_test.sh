#!/usr/bin/env bash
# A whole data directory mounted: blobfs ROOT MOUNTPOINT with ROOT a plain
# directory (or a TensorDB). Real mounts, read with ls, cat, diff and numpy.
source "$(dirname "$0")/../lib.sh"
PICO=$ROOT/tests/conformance/picomap
GOLD=$ROOT/tests/conformance/tensorblob

# make_root DIR: blobs, a ragged dataset, the TensorDB fixture, nested and
# empty directories, and what must not show: junk files, a FIFO, symbolic
# links (one out of the root), a name with a newline.
make_root() {
  local r=$1
  mkdir -p "$r/models/v1" "$r/models/v2" "$r/empty" "$T/outside"
  make_blob "$r/emb" 12 float32 4,3 5
  make_blob "$r/models/v1/ids" 7 int64 2 3
  cp -r "$GOLD/f32_3blocks" "$r/models/v2/emb"
  cp "$PICO"/f32_ragged.* "$r/"
  cp -r "$GOLD/db_two_fields" "$r/table"
  cp -r "$GOLD/bool" "$T/outside/leak"
  echo junk >"$r/README.txt"
  mkfifo "$r/a_fifo"
  ln -s "$T/outside" "$r/escape"
  ln -s emb "$r/emb_link"
  touch "$r/bad"$'\n'"name.json" "$r/bad"$'\n'"name.dat"
}

test_a_data_directory_is_a_tree_of_stores_each_as_a_single_mount_shows_it() {
  make_root "$T/r"
  mount_fg "$T/r" "$T/m"
  [[ $(ls "$T/m" | tr '\n' ' ') == "emb empty f32_ragged index.yaml models table " ]] || fail "root lists: $(ls "$T/m")"
  [[ $(ls "$T/m/models" | tr '\n' ' ') == "v1 v2 " ]] || fail "models lists: $(ls "$T/m/models")"
  [[ -z $(ls -A "$T/m/empty") ]] || fail "an empty directory lists: $(ls -A "$T/m/empty")"
  [[ -d $T/m/emb && -d $T/m/f32_ragged && -d $T/m/table ]] || fail "stores are not directories"
  # Each store's directory is what mounting that store alone shows, byte for byte.
  local s
  for s in emb models/v1/ids models/v2/emb f32_ragged; do
    mount_fg "$T/r/$s" "$T/single_${s//\//_}"
    diff <(ls -l --time-style=+ "$T/single_${s//\//_}" | sed 1d) <(ls -l --time-style=+ "$T/m/$s" | sed 1d) ||
      fail "$s: the listing differs from a single mount's"
    diff -r "$T/single_${s//\//_}" "$T/m/$s" >/dev/null || fail "$s: bytes differ from a single mount's"
  done
  cmp <("$TBLOB" export "$T/r/emb" /dev/stdout | tail -c +129) "$T/m/emb/all.bin" || fail "emb/all.bin is not the library's bytes"
  "$PY" - "$T/m" "$T/src_emb.npy" "$T/src_ids.npy" <<'PY' || fail "numpy through the catalog"
import sys, numpy as np
m, src, ids = sys.argv[1], np.load(sys.argv[2]), np.load(sys.argv[3])
assert (np.load(f"{m}/emb/all.npy") == src).all()
assert (np.load(f"{m}/emb/000007.npy") == src[7]).all()
got = np.load(f"{m}/models/v1/ids/all.npy")
assert got.dtype == np.int64 and (got == ids).all() and got[3].tolist() == [3000, 3001], got
PY
  # index.yaml is tblob info's index of the same root.
  diff <("$TBLOB" info "$T/r") "$T/m/index.yaml" || fail "index.yaml differs from tblob info"
  grep -q "^  table:" "$T/m/index.yaml" || fail "index.yaml lacks the TensorDB"
  # What is not a store or a directory does not show, and nothing leads out.
  for s in README.txt a_fifo escape emb_link "bad"$'\n'"name" f32_ragged.json f32_ragged.dat; do
    [[ -e $T/m/$s ]] && fail "$s shows in the mount"
  done
  ls "$T/m/escape/leak" 2>/dev/null && fail "a symbolic link led out of the root"
  grep -q "not shown: .*escape: a symbolic link, not followed" "$T/blobfs.log" || fail "no log line for the link: $(cat "$T/blobfs.log")"
  grep -q "control character" "$T/blobfs.log" || fail "no log line for the bad name"
  # Read-only, with read-only errors.
  touch "$T/m/new" 2>/dev/null && fail "created a file in the catalog"
  mkdir "$T/m/emb/x" 2>/dev/null && fail "made a directory in a store"
  [[ $(stat -c %a "$T/m/models") == 555 && $(stat -c %a "$T/m/index.yaml") == 444 ]] || fail "modes"
}

test_a_tensordb_shows_meta_and_fields_counted_to_its_committed_rows() {
  cp -r "$GOLD/db_two_fields" "$T/db"
  # A crash between the fields' commits and the DB's: one field runs longer.
  "$PY" -c "import numpy as np; np.save('$T/more.npy', np.ones((2, 4), dtype=np.float16))"
  "$TBLOB" import "$T/db/embed" "$T/more.npy" || fail "appending to one field"
  [[ $("$TBLOB" info "$T/db/embed" | grep '^count:') == "count: 7" ]] || fail "the field did not grow"
  mkdir -p "$T/r" && cp -r "$T/db" "$T/r/table"
  mount_fg "$T/r" "$T/m"
  mount_fg "$T/db" "$T/mdb"  # a TensorDB as SOURCE: the same directory at the root
  local m
  for m in "$T/m/table" "$T/mdb"; do
    [[ $(ls "$m" | tr '\n' ' ') == "embed meta.yaml price " ]] || fail "$m lists: $(ls "$m")"
    grep -qx "rows: 5" "$m/meta.yaml" || fail "$m/meta.yaml: $(cat "$m/meta.yaml")"
    grep -q "^format: tensordb" "$m/meta.yaml" || fail "meta.yaml format"
    [[ -e $m/embed/000004.bin && ! -e $m/embed/000005.bin && ! -e $m/embed/000006.bin ]] || fail "embed shows rows past the DB's"
    grep -qx "count: 5" "$m/embed/meta.yaml" || fail "embed/meta.yaml: $(cat "$m/embed/meta.yaml")"
    [[ $(stat -c %s "$m/embed/all.bin") == 40 && $(stat -c %s "$m/price/all.bin") == 20 ]] || fail "all.bin sizes"
  done
  "$PY" - "$T/m/table" "$T/db" <<'PY' || fail "field bytes"
import sys, json, numpy as np
m, db = sys.argv[1], sys.argv[2]
e = np.load(f"{m}/embed/all.npy"); p = np.load(f"{m}/price/all.npy")
assert e.shape == (5, 4) and e.dtype == np.float16 and p.shape == (5, 1) and p.dtype == np.float32, (e.shape, p.shape)
# The first five rows of each field's own blob, as its block files hold them.
for name, arr, dt in [("embed", e, np.float16), ("price", p, np.float32)]:
    st = json.load(open(f"{db}/{name}/.stat")); conf = json.load(open(f"{db}/{name}/.conf"))
    B = conf["block_size"]; rows = []
    for b in st["bds"]:
        rows.append(np.fromfile(f"{db}/{name}/{b}", dtype=dt).reshape((B,) + tuple(conf["shape"])))
    want = np.concatenate(rows)[:5]
    assert (arr == want).all(), name
PY
  diff -r -x meta.yaml "$T/m/table" "$T/mdb" >/dev/null || fail "the two mounts of the DB differ"
  diff <(grep -v '^source:' "$T/m/table/embed/meta.yaml") <(grep -v '^source:' "$T/mdb/embed/meta.yaml") ||
    fail "the field's meta.yaml differs between the two mounts"
}

test_a_damaged_store_shows_its_error_and_every_other_store_works() {
  make_root "$T/r"
  mkdir "$T/r/broken"; echo '{' >"$T/r/broken/.conf"; echo '{"len":0,"bds":[]}' >"$T/r/broken/.stat"
  mkdir "$T/r/nostat"; cp "$T/r/emb/.conf" "$T/r/nostat/"
  cp -r "$GOLD/db_two_fields" "$T/r/baddb"; echo '{"len":' >"$T/r/baddb/.stat"
  mount_fg "$T/r" "$T/m"
  [[ $(ls "$T/m/broken") == meta.yaml ]] || fail "broken lists: $(ls "$T/m/broken")"
  grep -q "^format: damaged" "$T/m/broken/meta.yaml" || fail "broken/meta.yaml: $(cat "$T/m/broken/meta.yaml")"
  grep -q "broken/.conf: invalid JSON" "$T/m/broken/meta.yaml" || fail "broken/meta.yaml names no cause"
  grep -q "^error: .*nostat" "$T/m/nostat/meta.yaml" || fail "nostat/meta.yaml: $(cat "$T/m/nostat/meta.yaml")"
  [[ $(ls "$T/m/baddb") == meta.yaml ]] || fail "baddb lists: $(ls "$T/m/baddb")"
  grep -q "^format: damaged" "$T/m/baddb/meta.yaml" || fail "baddb/meta.yaml: $(cat "$T/m/baddb/meta.yaml")"
  [[ -e $T/m/broken/000000.bin ]] && fail "a damaged store shows tensors"
  cmp <("$TBLOB" export "$T/r/emb" /dev/stdout | tail -c +129) "$T/m/emb/all.bin" || fail "a good store next to damaged ones"
  grep -qx "rows: 5" "$T/m/table/meta.yaml" || fail "a good TensorDB next to a damaged one"
  grep -q "damaged store, shown with a meta.yaml" "$T/blobfs.log" || fail "no log line: $(cat "$T/blobfs.log")"
  # A block cut under a store: EIO there, the rest of that store and the others read.
  local blk
  blk=$("$PY" -c "import json; print(json.load(open('$T/r/models/v2/emb/.stat'))['bds'][0])")
  : >"$T/r/models/v2/emb/$blk"
  cat "$T/m/models/v2/emb/000000.bin" >/dev/null 2>"$T/err" && fail "read a cut block"
  grep -q "Input/output error" "$T/err" || fail "not EIO: $(cat "$T/err")"
  cat "$T/m/emb/000011.bin" >/dev/null || fail "another store after an EIO"
  kill -0 "$PID" || fail "the daemon died"
}

# A store is opened when something inside it is first asked for, and closed
# when the kernel forgets it; listing the root opens none.
test_ten_thousand_stores_list_without_opening_any_and_stay_within_the_bound() {
  make_blob "$T/one" 3 float32 2 4
  "$PY" - "$T/one" "$T/r" 10000 <<'PY' || fail "making 10,000 stores"
import os, shutil, sys
one, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = os.listdir(one)
for i in range(n):
    d = f"{root}/s{i:05d}"
    os.makedirs(d)
    for f in files:
        shutil.copyfile(f"{one}/{f}", f"{d}/{f}")
PY
  local port
  port=$(free_port)
  mount_fg "$T/r" "$T/m" -o metrics_listen=127.0.0.1:$port,max_open_stores=8
  [[ $(ls "$T/m" | wc -l) == 10001 ]] || fail "ls lists $(ls "$T/m" | wc -l) names"
  ls -l "$T/m" >/dev/null || fail "ls -l"
  [[ $(metric "$port" blobfs_stores_open) == 0 ]] || fail "listing opened stores: $(metric "$port" blobfs_stores_open)"
  local fds
  fds=$(ls /proc/$PID/fd | wc -l)
  ((fds < 40)) || fail "the daemon holds $fds descriptors after a listing"
  cmp "$T/m/s04242/all.bin" <("$TBLOB" export "$T/one" /dev/stdout | tail -c +129) || fail "a store's bytes"
  [[ $(metric "$port" blobfs_stores_open) == 1 ]] || fail "reading one store opened $(metric "$port" blobfs_stores_open)"
  # Reading from 40 stores: no more than the bound stay open.
  local i
  for i in $(seq 100 139); do cat "$T/m/s00$i/000001.bin" >/dev/null || fail "s00$i"; done
  wait_until bash -c "(( \$(\"$PY\" -c \"import urllib.request as u; print([l for l in u.urlopen('http://127.0.0.1:$port/metrics').read().decode().splitlines() if l.startswith('blobfs_stores_open ')][0].split()[1])\") <= 8 ))" ||
    fail "stores open past the bound: $(metric "$port" blobfs_stores_open)"
  # The kernel forgetting its inodes closes the stores.
  sync; echo 2 >/proc/sys/vm/drop_caches
  wait_until bash -c "[[ \$(\"$PY\" -c \"import urllib.request as u; print([l for l in u.urlopen('http://127.0.0.1:$port/metrics').read().decode().splitlines() if l.startswith('blobfs_stores_open ')][0].split()[1])\") == 0 ]]" ||
    fail "stores stay open after the kernel forgot them: $(metric "$port" blobfs_stores_open)"
  cmp "$T/m/s00100/000001.bin" "$T/m/s09999/000001.bin" || fail "stores reopen"
}

test_a_live_catalog_follows_stores_added_removed_replaced_and_appended() {
  mkdir -p "$T/r/sub"
  make_blob "$T/r/a" 4 float32 2 3
  mount_fg "$T/r" "$T/m" -o refresh_interval=0.2
  [[ $(stat -c %s "$T/m/a/all.bin") == 32 ]] || fail "a/all.bin size"
  cat "$T/m/a/all.bin" >/dev/null
  # An append to an open store reaches the files the kernel cached.
  "$PY" -c "import numpy as np; np.save('$T/two.npy', np.full((2, 2), 7, dtype=np.float32))"
  "$TBLOB" import "$T/r/a" "$T/two.npy" || fail "append"
  wait_until bash -c "[[ \$(stat -c %s '$T/m/a/all.bin') == 48 ]]" || fail "all.bin did not grow: $(stat -c %s "$T/m/a/all.bin")"
  wait_until test -e "$T/m/a/000005.bin" || fail "the new tensor has no file"
  cmp <(tail -c 16 "$T/m/a/all.bin") <("$PY" -c "import sys, numpy as np; sys.stdout.buffer.write(np.full((2, 2), 7, dtype=np.float32).tobytes())") ||
    fail "the appended bytes"
  # A store added, in a directory already listed.
  ls "$T/m/sub" >/dev/null
  make_blob "$T/r/sub/b" 2 int32 2 3
  wait_until test -e "$T/m/sub/b/000001.bin" || fail "a new store did not appear: $(ls "$T/m/sub")"
  wait_until bash -c "ls '$T/m/sub' | grep -qx b" || fail "a new store is not listed"
  wait_until grep -q "^  sub/b:" "$T/m/index.yaml" || fail "index.yaml lacks the new store: $(cat "$T/m/index.yaml")"
  # Replaced by another store of the same name.
  rm -rf "$T/r/sub/b"
  make_blob "$T/r/sub/b" 5 int32 2 3
  wait_until test -e "$T/m/sub/b/000004.bin" || fail "the replacing store does not show: $(ls "$T/m/sub/b")"
  grep -qx "count: 5" "$T/m/sub/b/meta.yaml" || fail "meta.yaml of the replaced store: $(cat "$T/m/sub/b/meta.yaml")"
  # Removed.
  rm -rf "$T/r/sub/b"
  wait_until bash -c "[[ ! -e '$T/m/sub/b' ]]" || fail "a removed store still shows"
  wait_until bash -c "! ls '$T/m/sub' | grep -q ." || fail "a removed store is still listed"
  kill -0 "$PID" || fail "the daemon died"
}

# An attacker with write access under ROOT swaps names for symbolic links
# after the mount looked them up: nothing outside ROOT shows.
test_names_swapped_for_links_after_a_lookup_lead_nowhere() {
  mkdir -p "$T/r/sub" "$T/outside/sub"
  make_blob "$T/r/s" 3 float32 2 3
  make_blob "$T/r/sub/t" 3 float32 2 3
  make_blob "$T/outside/secret" 9 int32 2 3
  cp -r "$T/outside/secret" "$T/outside/sub/t"
  # Frozen: the kernel keeps every name it looked up, so the daemon is asked
  # about what lies below a swapped directory without looking it up again.
  mount_fg "$T/r" "$T/m" -o live=false
  ls "$T/m/s" "$T/m/sub" >/dev/null || fail "listing"
  mv "$T/r/s" "$T/r/s_old"; ln -s "$T/outside/secret" "$T/r/s"
  mv "$T/r/sub" "$T/r/sub_old"; ln -s "$T/outside/sub" "$T/r/sub"
  local p
  for p in s/000008.bin sub/t/000008.bin sub/t/meta.yaml; do
    [[ -e $T/m/$p ]] && fail "$p shows what lies outside the root"
  done
  [[ -n $(ls "$T/m/sub/t" 2>/dev/null) ]] && fail "a store below a swapped directory lists: $(ls "$T/m/sub/t")"
  grep -q "secret\|int32" "$T/m/index.yaml" && fail "index.yaml names what lies outside"
  [[ -e $T/m/s_old/000002.bin && -e $T/m/sub_old/t/000002.bin ]] || fail "the moved stores do not show"
  kill -0 "$PID" || fail "the daemon died"
}

test_catalog_refuses_writable_and_stops_cleanly_on_sigterm_with_stores_open() {
  make_root "$T/r"
  mkdir -p "$T/m"
  "$BLOBFS" "$T/r" "$T/m" -f -o writable 2>"$T/err" && fail "a writable catalog mounted"
  grep -q "a data directory mounts read-only" "$T/err" || fail "error: $(cat "$T/err")"
  is_mounted "$T/m" && fail "a mount was left behind"
  mount_fg "$T/r" "$T/m"
  cat "$T/m/emb/000001.bin" "$T/m/models/v2/emb/all.bin" "$T/m/table/price/all.bin" >/dev/null || fail "reads"
  exec 7<"$T/m/emb/all.bin"  # a file held open across the stop
  kill -TERM "$PID"
  for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  exec 7<&-
  kill -0 "$PID" 2>/dev/null && fail "the daemon did not stop on SIGTERM"
  wait "$PID"; local rc=$?
  [[ $rc == 0 ]] || fail "exit status $rc: $(cat "$T/blobfs.log")"
  wait_until bash -c "! grep -q ' $T/m fuse' /proc/mounts" || fail "the mount was left behind"
}

run_tests
