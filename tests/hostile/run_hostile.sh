#!/usr/bin/env bash
# Runs every malformed input in tests/hostile/cases (see make_cases.py): each
# must give its expected exit code and a one-line error that names the file
# and the problem -- no crash, no hang, no mount left behind.
source "$(dirname "$0")/../lib.sh"
CASES=$ROOT/tests/hostile/cases

run_case() {
  local dir=$1 run path code message
  run=$(sed -n 's/^run: //p' "$dir/expect"); path=$(sed -n 's/^path: //p' "$dir/expect")
  code=$(sed -n 's/^exit: //p' "$dir/expect"); message=$(sed -n 's/^message: //p' "$dir/expect")
  cp -a "$dir" "$T/case"
  local target="$T/case/$path" err rc
  case $run in
    info|verify) err=$(timeout 20 "$TBLOB" "$run" "$target" 2>&1 >/dev/null); rc=$? ;;
    blobfs-config)
      mkdir -p "$T/m"; _mounts+=("$T/m")
      err=$(timeout 20 "$BLOBFS" "$ROOT/tests/conformance/tensorblob/f32_3blocks" "$T/m" --config "$target" 2>&1); rc=$?
      is_mounted "$T/m" && fail "a mount was left behind" ;;
    mount-name)
      # The error a client gets for this name at the mount, as an errno name.
      mount_fg "$ROOT/tests/conformance/tensorblob/f32_3blocks" "$T/m"
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
    *) fail "unknown run '$run' in $dir/expect" ;;
  esac
  [[ $rc -eq $code ]] || fail "exit $rc, want $code: $err"
  [[ $code -eq 0 ]] && return 0
  [[ $rc -lt 128 ]] || fail "killed by a signal: $err"
  err=${err%$'\n'usage: blobfs*}  # blobfs adds its usage line after the error
  [[ $(printf '%s\n' "$err" | wc -l) -eq 1 ]] || fail "error is not one line: $err"
  [[ $err == *"$message"* ]] || fail "error lacks '$message': $err"
  [[ $err == *"$T/case"* ]] || fail "error does not name the file: $err"
}

for d in "$CASES"/*/; do
  name=$(basename "$d")
  eval "test_$name() { run_case '$d'; }"
done
run_tests
