#!/usr/bin/env bash
# tblob end to end: every command with real files, its exit code and its
# one-line errors; import refusals leave the blob untouched; make install.
source "$(dirname "$0")/../lib.sh"

# expect_exit CODE PATTERN CMD...: CMD must exit CODE with PATTERN in its stderr.
expect_exit() {
  local want=$1 pattern=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  [[ $rc -eq $want ]] || fail "$* exited $rc, want $want ($err)"
  [[ $err == *"$pattern"* ]] || fail "$*: stderr '$err' lacks '$pattern'"
  [[ $(printf '%s' "$err" | wc -l) -le 1 ]] || fail "$*: error is more than one line: $err"
}

test_create_and_its_refusals() {
  "$TBLOB" create "$T/b" --dtype float --shape 3,2 --block-size 5 || fail "create"
  grep -q '"dtype": "float32"' "$T/b/.conf" || fail "alias not written canonically"
  [[ $(cat "$T/b/.stat") == '{"len":0,"bds":[]}' ]] || fail ".stat"
  expect_exit 2 "a blob already exists here" "$TBLOB" create "$T/b" --dtype float32 --shape 3
  expect_exit 2 "--dtype and --shape are required" "$TBLOB" create "$T/c" --shape 3
  expect_exit 2 "shape dimensions must be at least 1" "$TBLOB" create "$T/c" --dtype float32 --shape 3,0
  expect_exit 2 "shape dimension must be an integer, got 'x'" "$TBLOB" create "$T/c" --dtype float32 --shape 3,x
  expect_exit 2 "unknown dtype 'floot'" "$TBLOB" create "$T/c" --dtype floot --shape 3
  expect_exit 2 "block_size must be at least 1" "$TBLOB" create "$T/c" --dtype float32 --shape 3 --block-size 0
  expect_exit 2 "overflows" "$TBLOB" create "$T/c" --dtype float64 --shape 4294967296,4294967296
  expect_exit 2 "unknown option --bogus" "$TBLOB" create "$T/c" --bogus
  [[ -e $T/c ]] && fail "a refused create left $T/c"
  true
}

test_import_npy_of_every_header_version_and_raw_files() {
  "$PY" - "$T" <<'PY'
import sys, numpy as np
t = sys.argv[1]
a = np.arange(40, dtype=np.float32).reshape(10, 4)
np.save(f"{t}/v1.npy", a[:3])
for v in [(2, 0), (3, 0)]:
    with open(f"{t}/v{v[0]}.npy", "wb") as f:
        np.lib.format.write_array(f, a[3 + 2 * (v[0] - 2): 5 + 2 * (v[0] - 2)], version=v)
np.save(f"{t}/one.npy", a[7])           # a single tensor of the blob's shape
a[8:].tofile(f"{t}/raw.bin")            # raw C-order bytes
np.save(f"{t}/want.npy", a)
PY
  "$TBLOB" import "$T/b" "$T/v1.npy" "$T/v2.npy" "$T/v3.npy" "$T/one.npy" --create || fail "npy import"
  "$TBLOB" import "$T/b" "$T/raw.bin" --dtype float32 --shape 4 || fail "raw import"
  "$TBLOB" export "$T/b" "$T/got.npy" || fail "export"
  "$PY" -c "import numpy as np; assert (np.load('$T/got.npy') == np.load('$T/want.npy')).all()" || fail "contents differ"
}

test_import_refusals_name_the_file_and_change_nothing() {
  "$PY" - "$T" <<'PY'
import sys, numpy as np
t = sys.argv[1]
np.save(f"{t}/good.npy", np.ones((3, 4), np.float32))
np.save(f"{t}/fortran.npy", np.asfortranarray(np.ones((3, 4), np.float32)))
np.save(f"{t}/int.npy", np.ones((3, 4), np.int32))
np.save(f"{t}/big.npy", np.ones((3, 4), ">f4"))
np.save(f"{t}/shape.npy", np.ones((3, 5), np.float32))
np.save(f"{t}/object.npy", np.array([{}, 1], dtype=object), allow_pickle=True)
np.save(f"{t}/str.npy", np.array(["ab"]))
with open(f"{t}/short.npy", "wb") as f:
    f.write(open(f"{t}/good.npy", "rb").read()[:-5])
open(f"{t}/notnpy.npy", "wb").write(b"hello world")
open(f"{t}/badhdr.npy", "wb").write(b"\x93NUMPY\x01\x00\x10\x00{'descr': <f4}   \n")
PY
  "$TBLOB" import "$T/b" "$T/good.npy" --create || fail "setup"
  local before
  before=$(cat "$T/b/.stat")
  expect_exit 3 "fortran.npy: Fortran-order arrays are not supported" "$TBLOB" import "$T/b" "$T/good.npy" "$T/fortran.npy"
  expect_exit 3 "int.npy: dtype <i4 (int32) does not match the blob's float32" "$TBLOB" import "$T/b" "$T/int.npy"
  expect_exit 3 "big.npy: numpy dtype '>f4' cannot be stored in a blob" "$TBLOB" import "$T/b" "$T/big.npy"
  expect_exit 3 "shape.npy: shape (3, 5) is neither (4,) nor (n, *(4,))" "$TBLOB" import "$T/b" "$T/shape.npy"
  expect_exit 3 "object.npy: object arrays cannot be stored" "$TBLOB" import "$T/b" "$T/object.npy"
  expect_exit 3 "str.npy: numpy dtype '<U2' cannot be stored" "$TBLOB" import "$T/b" "$T/str.npy"
  expect_exit 3 "short.npy: header promises 176 bytes but the file has 171" "$TBLOB" import "$T/b" "$T/short.npy"
  expect_exit 3 "notnpy.npy: not a .npy file (raw files need --dtype and --shape)" "$TBLOB" import "$T/b" "$T/notnpy.npy"
  expect_exit 3 "badhdr.npy" "$TBLOB" import "$T/b" "$T/badhdr.npy"
  expect_exit 3 "missing.npy: open: No such file or directory" "$TBLOB" import "$T/b" "$T/missing.npy"
  expect_exit 3 "raw file of 11 bytes is not a whole number of 16-byte tensors" \
    "$TBLOB" import "$T/b" "$T/notnpy.npy" --dtype float32 --shape 4
  expect_exit 2 "--dtype/--shape int32 (4,) differ from the blob's float32 (4,)" \
    "$TBLOB" import "$T/b" "$T/good.npy" --dtype int32 --shape 4
  expect_exit 3 "no such blob (use --create to make one)" "$TBLOB" import "$T/nob" "$T/good.npy"
  [[ $(cat "$T/b/.stat") == "$before" ]] || fail "a refused import changed .stat"
  [[ $(ls "$T/b" | wc -l) -eq 1 ]] || fail "a refused import left files: $(ls "$T/b")"
}

test_export_ranges_and_refusals() {
  "$PY" -c "import numpy as np; np.save('$T/s.npy', np.arange(60, dtype=np.int64).reshape(20, 3))"
  "$TBLOB" import "$T/b" "$T/s.npy" --create --block-size 6 || fail "import"
  local spec
  for spec in "5:9" ":4" "15:" "-3:" "-100:100" "7:3" "::"; do
    if [[ $spec == "::" ]]; then
      expect_exit 2 "range must be A:B" "$TBLOB" export "$T/b" "$T/o.npy" --range "$spec"
      continue
    fi
    "$TBLOB" export "$T/b" "$T/o.npy" --range "$spec" || fail "export --range $spec"
    "$PY" -c "import numpy as np; a = np.load('$T/s.npy'); b = np.load('$T/o.npy'); assert b.shape == a[$spec].shape and (b == a[$spec]).all(), '$spec'" ||
      fail "--range $spec differs from numpy's slice"
  done
  "$TBLOB" create "$T/bf" --dtype bfloat16 --shape 2 || fail "create bf16"
  expect_exit 2 "numpy has no dtype bfloat16" "$TBLOB" export "$T/bf" "$T/x.npy"
  [[ -e $T/x.npy ]] && fail "a refused export left a file"
  expect_exit 3 "no such blob" "$TBLOB" export "$T/none" "$T/x.npy"
  ls "$T" | grep -q tmp && fail "temporary files left: $(ls "$T")"
  true
}

test_cat_info_truncate_extend() {
  "$PY" -c "import numpy as np; np.save('$T/s.npy', np.arange(30, dtype=np.int16).reshape(10, 3)); np.save('$T/t.npy', -np.arange(12, dtype=np.int16).reshape(4, 3))"
  "$TBLOB" import "$T/b" "$T/s.npy" --create --block-size 4 || fail "import b"
  "$TBLOB" import "$T/o" "$T/t.npy" --create --block-size 4 || fail "import o"
  [[ $("$TBLOB" cat "$T/b" -1 | od -An -td2 | xargs) == "27 28 29" ]] || fail "cat -1"
  [[ $("$TBLOB" cat "$T/b" 2 | od -An -td2 | xargs) == "6 7 8" ]] || fail "cat 2"
  expect_exit 2 "index 10 out of range for 10 items" "$TBLOB" cat "$T/b" 10
  expect_exit 2 "INDEX must be an integer, got 'x'" "$TBLOB" cat "$T/b" x
  "$TBLOB" info "$T/b" | grep -qx "count: 10" || fail "info count"
  "$TBLOB" info "$T/b" | grep -qx "dtype: int16" || fail "info dtype"
  expect_exit 2 "N must be between 0 and the blob's size 10, got 11" "$TBLOB" truncate "$T/b" 11
  "$TBLOB" truncate "$T/b" 6 || fail "truncate"
  "$TBLOB" info "$T/b" | grep -qx "count: 6" || fail "truncated count"
  cp -r "$T/b" "$T/b2"
  "$TBLOB" extend "$T/b" "$T/o" --keep-order || fail "extend --keep-order"
  [[ $("$TBLOB" cat "$T/b" 6 | od -An -td2 | xargs) == "0 -1 -2" ]] || fail "keep-order: tensor 6"
  "$TBLOB" extend "$T/b2" "$T/o" || fail "extend"
  # Fast path: b2 held 6 (one full block of 4 + 2); o's full block comes first, then b2's tail.
  [[ $("$TBLOB" cat "$T/b2" 4 | od -An -td2 | xargs) == "0 -1 -2" ]] || fail "fast path order: $("$TBLOB" cat "$T/b2" 4 | od -An -td2)"
  [[ $("$TBLOB" cat "$T/b2" 8 | od -An -td2 | xargs) == "12 13 14" ]] || fail "fast path: own tail after"
  "$TBLOB" info "$T/b2" | grep -qx "count: 10" || fail "extended count"
  "$TBLOB" create "$T/f" --dtype float32 --shape 3 || fail "create f"
  expect_exit 2 "cannot extend a int16 (3,) blob with" "$TBLOB" extend "$T/b" "$T/f"
}

test_help_usage_and_unknown_commands() {
  local c
  for c in create import export info cat verify build truncate extend; do
    "$TBLOB" "$c" --help | grep -q "^usage: tblob $c" || fail "$c --help"
  done
  "$TBLOB" --help | grep -q "^commands:" || fail "tblob --help"
  "$TBLOB" --version | grep -q "^tblob [0-9]" || fail "--version"
  expect_exit 2 "unknown command 'frob'" "$TBLOB" frob
  expect_exit 2 "no command given" "$TBLOB"
  expect_exit 2 "expected 1 argument, got 2" "$TBLOB" info a b
}

test_progress_bar_only_on_a_terminal() {
  "$PY" -c "import numpy as np; np.save('$T/s.npy', np.zeros((200000, 64), np.float32))"
  "$TBLOB" import "$T/b" "$T/s.npy" --create 2>"$T/err" || fail "import"
  [[ -s $T/err ]] && fail "output on a non-terminal stderr: $(cat "$T/err")"
  script -qec "'$TBLOB' export '$T/b' '$T/o.npy'" /dev/null > "$T/tty" || fail "export under a terminal"
  grep -q "export \[" "$T/tty" || fail "no progress bar on a terminal: $(head -c 200 "$T/tty")"
}

test_make_demo_mounts_and_reads_the_demo_blob() {
  mkdir -p "$T/demo/mnt"
  _mounts+=("$T/demo/mnt")
  make -s -C "$ROOT" "${MAKE_BUILD_ARGS[@]}" DEMO="$T/demo" demo > "$T/out" 2>&1 || fail "make demo: $(tail -5 "$T/out")"
  local pid
  pid=$(pgrep -f "[b]lobfs $T/demo/blob") && _pids+=("$pid")
  grep -q "^000000.bin" "$T/out" || fail "no ls output"
  grep -qx "count: 10000" "$T/out" || fail "no meta.yaml"
  grep -q "(10000, 64) \[42\." "$T/out" || fail "no numpy line: $(tail -3 "$T/out")"
  grep -q "fusermount3 -u $T/demo/mnt" "$T/out" || fail "no unmount hint"
  make -s -C "$ROOT" "${MAKE_BUILD_ARGS[@]}" DEMO="$T/demo" demo > "$T/out2" 2>&1 || fail "second make demo"
  grep -q "creating the demo blob" "$T/out2" && fail "the demo blob was created twice"
  fusermount3 -u "$T/demo/mnt" || fail "unmount"
}

test_blobfs_help_and_version() {
  "$BLOBFS" --help | grep -q "^usage: blobfs SOURCE MOUNTPOINT" || fail "--help"
  "$BLOBFS" --version | grep -q "^blobfs [0-9].* (libfuse 3" || fail "--version: $("$BLOBFS" --version)"
  local out rc
  out=$("$BLOBFS" 2>&1); rc=$?
  [[ $rc -eq 2 && $out == *"no SOURCE given"* ]] || fail "no arguments: $rc $out"
}

test_make_install_puts_everything_under_destdir() {
  make -s -C "$ROOT" "${MAKE_BUILD_ARGS[@]}" install DESTDIR="$T/root" PREFIX=/usr/local >/dev/null || fail "make install"
  local f
  for f in usr/local/bin/blobfs usr/local/bin/tblob usr/local/lib/libtensorblob.a usr/local/include/tensorblob/blob.h \
           usr/local/share/tensorblob/blobfs.yaml etc/systemd/system/blobfs@.service; do
    [[ -f $T/root/$f ]] || fail "$f not installed"
  done
  [[ -x $T/root/usr/local/bin/blobfs ]] || fail "blobfs not executable"
  grep -q "^ExecStart=/usr/local/bin/blobfs -f --config /etc/blobfs/%i.yaml" "$T/root/etc/systemd/system/blobfs@.service" ||
    fail "unit ExecStart"
  make -s -C "$ROOT" "${MAKE_BUILD_ARGS[@]}" install DESTDIR="$T/root2" PREFIX=/opt/tb >/dev/null || fail "make install PREFIX"
  grep -q "^ExecStart=/opt/tb/bin/blobfs " "$T/root2/etc/systemd/system/blobfs@.service" || fail "PREFIX not applied to the unit"
}

PICO=$ROOT/tests/conformance/picomap
PICO_REF=$ROOT/tests/conformance/picomap_ref.py
PICO_NAMES="f32_ragged f16_1d i64_2x3 u8_img single bool_ragged f4_bigendian dotted tiny_example"

test_conformance_datasets_verify_and_read_back_item_by_item() {
  local name i n
  for name in $PICO_NAMES empty; do
    "$TBLOB" verify "$PICO/$name" >"$T/out" || fail "verify $name: $(cat "$T/out")"
    grep -q ": ok, hash " "$T/out" || fail "verify $name said: $(cat "$T/out")"
  done
  "$TBLOB" verify "$PICO/f32_ragged.json" >/dev/null || fail "verify by the .json path"
  "$TBLOB" verify "$PICO/f32_ragged.starts.npy" >/dev/null || fail "verify by the .starts.npy path"
  for name in $PICO_NAMES; do
    n=$("$TBLOB" info "$PICO/$name" | sed -n 's/^count: //p')
    for i in $(seq 0 $((n - 1))); do
      "$TBLOB" cat "$PICO/$name" "$i" > "$T/got" || fail "cat $name $i"
      "$PY" -c "import numpy as np, sys; a = np.load('$PICO/inputs/$name/item_$(printf %04d "$i").npy'); sys.stdout.buffer.write(np.ascontiguousarray(a).tobytes())" > "$T/want"
      cmp -s "$T/got" "$T/want" || fail "$name item $i differs"
    done
  done
  "$TBLOB" info "$PICO/f4_bigendian" | grep -qx 'dtype: ">f4"' || fail "info dtype: $("$TBLOB" info "$PICO/f4_bigendian")"
}

test_build_matches_picomap_and_its_reference_tool() {
  local name target
  for name in $PICO_NAMES; do
    "$TBLOB" build "$T/$name" "$PICO"/inputs/"$name"/item_*.npy || fail "build $name"
    cmp -s "$T/$name.dat" "$PICO/$name.dat" || fail "$name.dat differs"
    cmp -s "$T/$name.starts.npy" "$PICO/$name.starts.npy" || fail "$name.starts.npy differs"
    "$PY" "$PICO_REF" compare "$PICO/$name.dat" "$T/$name.dat" >"$T/cmp" 2>&1 || fail "picomap_ref compare $name: $(cat "$T/cmp")"
    "$PY" "$PICO_REF" verify "$T/$name.dat" >/dev/null 2>&1 || fail "picomap_ref verify rejects our $name"
  done
  "$PY" "$PICO_REF" check-golden "$PICO" >"$T/g" 2>&1 || fail "check-golden: $(cat "$T/g")"
}

test_flipped_byte_fails_verify_naming_the_item() {
  "$TBLOB" build "$T/d" "$PICO"/inputs/f32_ragged/item_*.npy || fail "build"
  "$TBLOB" verify "$T/d" >/dev/null || fail "fresh build does not verify"
  "$PY" -c "
b = bytearray(open('$T/d.dat', 'rb').read()); b[12 * 16 + 5] ^= 0x40; open('$T/d.dat', 'wb').write(b)"
  expect_exit 1 "d.dat: item 3 does not match its recorded hash" "$TBLOB" verify "$T/d"
  expect_exit 1 "refusing to record hashes of damaged data" "$TBLOB" verify "$T/d" --update
  # picomap's own datasets have no per-item hashes until --update records them.
  cp "$PICO"/u8_img.* "$T/"; chmod u+w "$T"/u8_img.*
  "$TBLOB" verify "$T/u8_img" --update >/dev/null || fail "--update"
  [[ -f $T/u8_img.hashes.npy ]] || fail "no sidecar written"
  "$PY" "$PICO_REF" verify "$T/u8_img.dat" >/dev/null 2>&1 || fail "picomap no longer accepts the dataset"
  "$PY" -c "
b = bytearray(open('$T/u8_img.dat', 'rb').read()); b[200] ^= 1; open('$T/u8_img.dat', 'wb').write(b)"
  expect_exit 1 "u8_img.dat: item 1 does not match its recorded hash" "$TBLOB" verify "$T/u8_img"
  cp "$PICO"/tiny_example.* "$T/"; chmod u+w "$T"/tiny_example.*
  printf '\x41' | dd of="$T/tiny_example.dat" bs=1 seek=3 conv=notrunc status=none
  expect_exit 1 "no per-item hashes to name the item" "$TBLOB" verify "$T/tiny_example"
}

test_verify_of_blobs_with_and_without_hashes() {
  "$PY" -c "import numpy as np; np.save('$T/s.npy', np.arange(40, dtype=np.float32).reshape(10, 4))"
  "$TBLOB" import "$T/b" "$T/s.npy" --create --block-size 3 || fail "import"
  "$TBLOB" verify "$T/b" | grep -q "10 tensors read; no per-tensor hashes recorded" || fail "verify without hashes"
  "$TBLOB" verify "$T/b" --update >/dev/null || fail "--update"
  "$TBLOB" verify "$T/b" | grep -q "matched their recorded hashes" || fail "verify with hashes"
  local block
  block=$("$PY" -c "import json; print(json.load(open('$T/b/.stat'))['bds'][2])")
  printf '\x01' | dd of="$T/b/$block" bs=1 seek=20 conv=notrunc status=none   # tensor 7
  expect_exit 1 "tensor 7 does not match its recorded hash" "$TBLOB" verify "$T/b"
  truncate -s 10 "$T/b/$block"
  expect_exit 3 "$block: block file is 10 bytes" "$TBLOB" verify "$T/b"
}

test_build_refusals_change_nothing() {
  "$PY" - "$T" <<'PY'
import sys, numpy as np
t = sys.argv[1]
np.save(f"{t}/a.npy", np.ones((2, 3), np.float32))
np.save(f"{t}/int.npy", np.ones((2, 3), np.int32))
np.save(f"{t}/trail.npy", np.ones((2, 4), np.float32))
np.save(f"{t}/empty.npy", np.ones((0, 3), np.float32))
np.save(f"{t}/scalar.npy", np.float32(1))
np.save(f"{t}/fortran.npy", np.asfortranarray(np.ones((2, 3), np.float32)))
np.save(f"{t}/obj.npy", np.array([None, 1], dtype=object), allow_pickle=True)
np.save(f"{t}/one_d.npy", np.ones(3, np.float32))
np.save(f"{t}/col.npy", np.ones((2, 1), np.float32))
PY
  "$TBLOB" build "$T/d" "$T/a.npy" || fail "build"
  local before
  before=$(md5sum "$T"/d.* | md5sum)
  expect_exit 3 "int.npy: dtype <i4 differs from the first item's <f4" "$TBLOB" build "$T/d" "$T/a.npy" "$T/int.npy"
  expect_exit 3 "trail.npy: trailing shape (4,) differs from the first item's (3,)" "$TBLOB" build "$T/d" "$T/a.npy" "$T/trail.npy"
  expect_exit 3 "empty.npy: item of shape (0, 3) has no elements" "$TBLOB" build "$T/d" "$T/empty.npy"
  expect_exit 3 "scalar.npy: a 0-d array has no rows" "$TBLOB" build "$T/d" "$T/scalar.npy"
  expect_exit 3 "fortran.npy: Fortran-order arrays are not supported" "$TBLOB" build "$T/d" "$T/fortran.npy"
  expect_exit 3 "obj.npy: dtype '|O' is an object dtype" "$TBLOB" build "$T/d" "$T/obj.npy"
  expect_exit 3 "col.npy: trailing shape (1,) differs from the first item's ()" "$TBLOB" build "$T/d" "$T/one_d.npy" "$T/col.npy"
  expect_exit 2 "expected BASE and at least one FILE.npy" "$TBLOB" build "$T/d"
  [[ $(md5sum "$T"/d.* | md5sum) == "$before" ]] || fail "a refused build changed the dataset"
  ls "$T" | grep -q '\.tmp$' && fail "temporaries left: $(ls "$T")"
  true
}

test_ragged_export_and_info() {
  "$TBLOB" export "$PICO/f32_ragged" "$T/all.npy" || fail "export"
  "$TBLOB" export "$PICO/f32_ragged" "$T/r.npy" --range 1:3 || fail "export range"
  "$PY" - "$T" "$PICO" <<'PY' || fail "numpy check"
import sys, numpy as np
t, p = sys.argv[1], sys.argv[2]
items = [np.load(f"{p}/inputs/f32_ragged/item_{i:04d}.npy") for i in range(5)]
a = np.load(f"{t}/all.npy")
assert a.shape == (29, 4) and (a == np.concatenate(items)).all()
r = np.load(f"{t}/r.npy")
assert r.shape == (8, 4) and (r == np.concatenate(items[1:3])).all()
PY
  "$TBLOB" info "$PICO/f32_ragged" > "$T/info"
  grep -qx "total_rows: 29" "$T/info" || fail "info: $(cat "$T/info")"
  grep -qx "hash: f71fe1abd0b151ee709c03b10123922a" "$T/info" || fail "info hash"
  grep -qx "trail_shape: \[4\]" "$T/info" || fail "info trail"
}

test_export_writes_through_devices_fifos_and_symlinks_and_replaces_only_files() {
  make_blob "$T/b" 20
  "$TBLOB" export "$T/b" "$T/want.npy" || fail "export to a new file"
  # A device: written into (and still a device afterwards). A node of our
  # own for /dev/full's device: a regression must not replace the system's.
  mknod "$T/full" c 1 7 || fail "mknod"
  expect_exit 3 "No space left on device" "$TBLOB" export "$T/b" "$T/full"
  [[ -c $T/full ]] || fail "the device was replaced by a file"
  # A FIFO: streamed to its reader.
  mkfifo "$T/fifo"
  cat "$T/fifo" > "$T/from_fifo" &
  local reader=$!
  "$TBLOB" export "$T/b" "$T/fifo" || fail "export into a FIFO"
  wait "$reader"
  [[ -p $T/fifo ]] || fail "the FIFO was replaced"
  cmp -s "$T/from_fifo" "$T/want.npy" || fail "the FIFO's reader got other bytes"
  # A symbolic link: followed; the file it names is replaced, the link stays.
  echo old > "$T/target.npy"
  ln -s target.npy "$T/link.npy"
  "$TBLOB" export "$T/b" "$T/link.npy" || fail "export through a symlink"
  [[ -L $T/link.npy ]] || fail "the symlink was replaced"
  cmp -s "$T/target.npy" "$T/want.npy" || fail "the symlink's target was not written"
  # /dev/stdout, into a file and into a pipe.
  "$TBLOB" export "$T/b" /dev/stdout > "$T/stdout.npy" || fail "export to /dev/stdout"
  cmp -s "$T/stdout.npy" "$T/want.npy" || fail "/dev/stdout into a file"
  "$TBLOB" export "$T/b" /dev/stdout | cat > "$T/piped.npy" || fail "export to /dev/stdout | cat"
  cmp -s "$T/piped.npy" "$T/want.npy" || fail "/dev/stdout into a pipe"
  # A regular file keeps its mode when it is replaced.
  chmod 600 "$T/want.npy"
  "$TBLOB" export "$T/b" "$T/want.npy" || fail "export over a file"
  [[ $(stat -c %a "$T/want.npy") == 600 ]] || fail "mode not kept: $(stat -c %a "$T/want.npy")"
  ln -s nowhere.npy "$T/dangling.npy"
  expect_exit 2 "dangling symbolic link" "$TBLOB" export "$T/b" "$T/dangling.npy"
  expect_exit 2 "is a directory" "$TBLOB" export "$T/b" "$T"
  [[ -e $T/nowhere.npy ]] && fail "wrote through a dangling symlink"
  ls -a "$T" | grep -q '\.tmp\.' && fail "temporaries left: $(ls -a "$T")"
  true
}

test_a_failed_write_of_the_output_is_exit_3_and_a_closed_pipe_ends_quietly() {
  make_blob "$T/b" 5
  "$TBLOB" info "$T/b" > /dev/full 2>"$T/err"; [[ $? -eq 3 ]] || fail "info > /dev/full did not exit 3"
  grep -qx "tblob: stdout: write: No space left on device" "$T/err" || fail "message: $(cat "$T/err")"
  "$TBLOB" verify "$T/b" > /dev/full 2>"$T/err"; [[ $? -eq 3 ]] || fail "verify > /dev/full: $(cat "$T/err")"
  "$TBLOB" cat "$T/b" 2 > /dev/full 2>"$T/err"; [[ $? -eq 3 ]] || fail "cat > /dev/full: $(cat "$T/err")"
  "$TBLOB" --help > /dev/full 2>/dev/null; [[ $? -eq 3 ]] || fail "--help > /dev/full"
  # A reader that stops early: exit 0, nothing on stderr.
  make_blob "$T/big" 200000 float32 64 8192
  "$TBLOB" cat "$T/big" 3 2>"$T/err" | head -c1 >/dev/null
  [[ ${PIPESTATUS[0]} -eq 0 && ! -s $T/err ]] || fail "cat | head -c1: exit ${PIPESTATUS[0]}, $(cat "$T/err")"
  "$TBLOB" export "$T/big" /dev/stdout 2>"$T/err" | head -c1 >/dev/null
  [[ ${PIPESTATUS[0]} -eq 0 && ! -s $T/err ]] || fail "export | head -c1: exit ${PIPESTATUS[0]}, $(cat "$T/err")"
  "$TBLOB" info "$T/big" 2>"$T/err" | head -c1 >/dev/null
  [[ ${PIPESTATUS[0]} -eq 0 && ! -s $T/err ]] || fail "info | head -c1"
}

test_import_checks_every_file_before_it_creates_the_blob() {
  "$PY" -c "
import numpy as np
np.save('$T/a.npy', np.ones((3, 4), np.float32))
np.save('$T/bad.npy', np.ones((3, 5), np.float32))
np.save('$T/fortran.npy', np.asfortranarray(np.ones((3, 4), np.float32)))"
  expect_exit 3 "bad.npy: shape (3, 5) is neither (4,) nor" "$TBLOB" import "$T/new" "$T/a.npy" "$T/bad.npy" --create
  [[ -e $T/new ]] && fail "a refused import --create left $T/new"
  expect_exit 3 "fortran.npy: Fortran-order arrays are not supported" "$TBLOB" import "$T/new" "$T/a.npy" "$T/fortran.npy" --create
  [[ -e $T/new ]] && fail "left $T/new"
  mkfifo "$T/fifo.npy"
  expect_exit 3 "fifo.npy: not a regular file (a FIFO)" timeout 10 "$TBLOB" import "$T/new" "$T/a.npy" "$T/fifo.npy" --create
  [[ -e $T/new ]] && fail "left $T/new"
  "$TBLOB" import "$T/new" "$T/a.npy" --create || fail "a good import"
}

test_imports_killed_at_random_leave_strays_that_verify_lists_and_the_next_writer_removes() {
  "$PY" -c "import numpy as np; np.save('$T/big.npy', np.ones((40000, 768), np.float32))"  # 123 MB
  "$TBLOB" create "$T/b" --dtype float32 --shape 768 --block-size 1024 || fail "create"
  local i
  for i in 1 2 3 4 5 6; do
    "$TBLOB" import "$T/b" "$T/big.npy" &
    local pid=$!
    sleep "0.$((RANDOM % 3 + 1))"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  local count
  count=$("$TBLOB" info "$T/b" | sed -n 's/^count: //p')
  [[ -n $count ]] || fail "the blob does not open"
  "$TBLOB" verify "$T/b" >/dev/null 2>"$T/err" || fail "verify failed: $(cat "$T/err")"
  local listed stray
  listed=$("$PY" -c "import json; print(len(json.load(open('$T/b/.stat'))['bds']))")
  stray=$(( $(ls "$T/b" | wc -l) - listed ))
  if ((stray > 0)); then
    grep -q "files (.* bytes) that no commit lists" "$T/err" || fail "verify did not report $stray strays: $(cat "$T/err")"
  fi
  echo "    $stray stray block files after six killed imports ($count tensors committed)" >&2
  "$TBLOB" import "$T/b" "$T/big.npy" 2>/dev/null | true  # a writer opens the blob...
  "$TBLOB" truncate "$T/b" "$count" || fail "truncate"      # ...and another
  listed=$("$PY" -c "import json; print(len(json.load(open('$T/b/.stat'))['bds']))")
  [[ $(ls "$T/b" | wc -l) -eq $listed ]] || fail "strays left after a writer opened it: $(ls "$T/b" | wc -l) files, $listed listed"
  "$TBLOB" verify "$T/b" >/dev/null 2>"$T/err" || fail "verify"
  [[ ! -s $T/err ]] || fail "verify still warns: $(cat "$T/err")"
}

test_huge_tensors_reserve_disk_as_they_grow_not_a_block_ahead() {
  "$PY" -c "import numpy as np; np.save('$T/two.npy', np.ones((2, 1 << 20), np.float32))"  # two 4 MiB tensors
  "$TBLOB" import "$T/b" "$T/two.npy" --create || fail "import"
  local kib
  kib=$(du -sk "$T/b" | cut -f1)
  ((kib < 32 * 1024)) || fail "$kib KiB on disk for 8 MiB of tensors (a 32 GiB block reserved?)"
  "$TBLOB" verify "$T/b" >/dev/null || fail "verify"
}

test_a_damaged_sidecar_is_reported_ignored_and_rewritten() {
  make_blob "$T/b" 12
  "$TBLOB" verify --update "$T/b" >/dev/null || fail "verify --update"
  head -c 100 "$T/b/.hashes.npy" > "$T/short"
  local bad
  for bad in empty garbage short; do
    case $bad in
      empty) : > "$T/b/.hashes.npy" ;;
      garbage) echo "not numpy" > "$T/b/.hashes.npy" ;;
      short) cp "$T/short" "$T/b/.hashes.npy" ;;
    esac
    "$TBLOB" info "$T/b" > "$T/info" || fail "info refused the blob ($bad sidecar)"
    grep -q "^hash: .*damaged: .*hashes.npy" "$T/info" || fail "info does not say the sidecar is damaged: $(grep hash "$T/info")"
    "$TBLOB" cat "$T/b" 3 | cmp -s - <("$PY" -c "import numpy as np, sys; sys.stdout.buffer.write(np.load('$T/src_b.npy')[3].tobytes())") ||
      fail "cat ($bad sidecar)"
    "$TBLOB" verify "$T/b" >/dev/null 2>"$T/err" || fail "verify ($bad sidecar)"
    grep -q "warning: per-item hashes damaged" "$T/err" || fail "verify does not warn: $(cat "$T/err")"
    "$TBLOB" verify --update "$T/b" >/dev/null || fail "verify --update could not repair a $bad sidecar"
    "$TBLOB" verify "$T/b" | grep -q "matched their recorded hashes" || fail "not repaired"
  done
}

test_make_install_with_a_space_in_prefix() {
  make -s -C "$ROOT" "${MAKE_BUILD_ARGS[@]}" install DESTDIR="$T/dest dir" PREFIX="/opt/my tools" >/dev/null ||
    fail "make install with spaces"
  [[ -x "$T/dest dir/opt/my tools/bin/blobfs" ]] || fail "blobfs not installed"
  grep -q '^ExecStart="/opt/my tools/bin/blobfs" -f ' "$T/dest dir/etc/systemd/system/blobfs@.service" ||
    fail "ExecStart: $(grep ExecStart "$T/dest dir/etc/systemd/system/blobfs@.service")"
}

# Paths a user names are followed through symbolic links, as cp follows
# them (git-annex and DVC keep data behind links); a store's own files never.
test_inputs_and_config_behind_symbolic_links_are_followed() {
  "$PY" -c "import numpy as np; np.save('$T/real.npy', np.arange(12, dtype=np.float32).reshape(4, 3))"
  ln -s real.npy "$T/link.npy"
  "$TBLOB" import "$T/b" "$T/link.npy" --create || fail "import through a symlink"
  "$TBLOB" export "$T/b" "$T/out.npy" || fail "export"
  cmp -s "$T/real.npy" "$T/out.npy" || fail "the imported tensors differ"
  printf 'naming_width: 6\n' > "$T/real.yaml"
  ln -s real.yaml "$T/link.yaml"
  # The config is read before the source is looked at: the error is the source's.
  mkdir "$T/m"
  "$BLOBFS" --config "$T/link.yaml" "$T/nothing" "$T/m" -f 2>"$T/err" && fail "mounted nothing"
  grep -q "nothing" "$T/err" || fail "unexpected error: $(cat "$T/err")"
  ! grep -q "symbolic link" "$T/err" || fail "config through a symlink refused: $(cat "$T/err")"
}

# TensorDB: info shows the committed rows and every field; export --field
# writes one field's rows, never past the database's count.
test_tensordb_info_and_export_of_a_field() {
  local db=$ROOT/tests/conformance/tensorblob/db_two_fields
  "$TBLOB" info "$db" >"$T/info" || fail "info on a TensorDB"
  "$PY" - "$T/info" <<'PY' || fail "info: $(cat "$T/info")"
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
assert d["format"] == "tensordb" and d["rows"] == 5 and d["block_size"] == 3, d
assert d["fields"]["embed"] == {"dtype": "float16", "shape": [4], "item_bytes": 8, "total_bytes": 40}, d
assert d["fields"]["price"]["dtype"] == "float32" and "warnings" not in d, d
PY
  "$TBLOB" export "$db" "$T/embed.npy" --field embed --range 1:4 || fail "export --field"
  "$PY" -c "
import numpy as np
a = np.load('$T/embed.npy')
i, j = np.meshgrid(np.arange(1, 4), np.arange(4), indexing='ij')
assert a.dtype == np.float16 and (a == (i + j / 4).astype(np.float16)).all(), a" || fail "embed rows differ"
  expect_exit 2 "is a TensorDB: choose a field with --field NAME (fields: embed, price)" "$TBLOB" export "$db" "$T/x.npy"
  expect_exit 2 "no field 'nope'" "$TBLOB" export "$db" "$T/x.npy" --field nope
  expect_exit 2 "is not a TensorDB" "$TBLOB" export "$T/../nonexistent-blob-$$" "$T/x.npy" --field x
  [[ -e $T/x.npy ]] && fail "a refused export wrote its output"
  # A field committed past the database (a crash between the two commits).
  cp -r "$db" "$T/db"
  "$PY" -c "import numpy as np; np.save('$T/more.npy', np.full((2, 1), 9, np.float32))"
  "$TBLOB" import "$T/db/price" "$T/more.npy" || fail "append to the field"
  "$TBLOB" export "$T/db" "$T/price.npy" --field price || fail "export of the longer field"
  "$PY" -c "
import numpy as np
a = np.load('$T/price.npy')
assert a.shape == (5, 1) and (a[:, 0] == np.arange(5) * 1.5).all(), a" || fail "export went past the committed rows"
  "$TBLOB" info "$T/db" | grep -q "price: 7 rows, the database commits 5; using 5" || fail "info hides the disagreement"
  "$PY" "$ROOT/tests/conformance/tensorblob_ref.py" describe "$T/db" >/dev/null || fail "reference tool refuses it"
}

# A plain directory is a data directory: tblob info lists every store below
# it, damaged ones with their error, and follows no symbolic link out of it.
test_info_of_a_data_directory_indexes_its_stores() {
  local r=$T/root
  mkdir -p "$r/models/v1" "$r/empty" "$T/outside/secret"
  cp -r "$ROOT/tests/conformance/tensorblob/f32_3blocks" "$r/models/v1/emb"
  cp -r "$ROOT/tests/conformance/tensorblob/db_two_fields" "$r/table"
  cp -r "$ROOT/tests/conformance/tensorblob/bool" "$T/outside/secret/leak"
  cp "$ROOT"/tests/conformance/picomap/f32_ragged.* "$r/"
  echo junk >"$r/README.txt"; mkfifo "$r/a_fifo"
  mkdir "$r/broken"; echo '{' >"$r/broken/.conf"; echo '{"len":0,"bds":[]}' >"$r/broken/.stat"
  ln -s "$T/outside" "$r/escape"
  touch "$r/bad"$'\n'"name.json" "$r/bad"$'\n'"name.dat"
  timeout 20 "$TBLOB" info "$r" >"$T/index" || fail "info of a data directory: $(cat "$T/index")"
  "$PY" - "$T/index" <<'PY' || fail "index: $(cat "$T/index")"
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
s = d["stores"]
assert set(s) == {"broken", "f32_ragged", "models/v1/emb", "table"}, sorted(s)
assert s["models/v1/emb"] == {"kind": "blob", "count": 10, "dtype": "float32", "shape": [2, 3], "total_bytes": 240}, s
assert s["f32_ragged"]["kind"] == "ragged" and s["f32_ragged"]["count"] == 5 and s["f32_ragged"]["trail_shape"] == [4]
assert s["table"]["kind"] == "tensordb" and s["table"]["rows"] == 5 and set(s["table"]["fields"]) == {"embed", "price"}
assert s["broken"]["kind"] == "blob" and "invalid JSON" in s["broken"]["error"], s["broken"]
assert any("escape: a symbolic link, not followed" in x for x in d["skipped"]), d["skipped"]
assert any("control character" in x for x in d["skipped"]), d["skipped"]
assert "leak" not in open(sys.argv[1]).read()
PY
  # A blob whose .conf is gone is still a damaged blob, not an empty index.
  rm "$r/broken/.conf"
  expect_exit 3 ".conf: missing" "$TBLOB" info "$r/broken"
}

run_tests
