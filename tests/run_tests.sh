#!/usr/bin/env bash
# Runs every test suite against the build in $1 (default: build) and ends with
# one line "N passed, M failed" that counts them all; exits 1 if M > 0.
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PY=/usr/bin/python3  # Debian's python3, which has numpy (the first on PATH may not)
passed=0
failed=0
failures=()

# Catch2 prints "test cases: T | P passed | F failed" or "All tests passed (... in T test cases)".
run_catch() {
  local name=$1; shift
  local log
  log=$(mktemp)
  "$@" >"$log" 2>&1
  local rc=$?
  cat "$log"
  local line p=0 f=0
  line=$(grep -E '^(test cases:|All tests passed)' "$log" | tail -1)
  if [[ $line =~ All\ tests\ passed.*\ ([0-9]+)\ test\ case ]]; then
    p=${BASH_REMATCH[1]}
  elif [[ $line =~ test\ cases:\ *([0-9]+)\ \|\ *([0-9]+)\ passed\ \|\ *([0-9]+)\ failed ]]; then
    p=${BASH_REMATCH[2]}; f=${BASH_REMATCH[3]}
  elif [[ $line =~ test\ cases:\ *([0-9]+)\ \|\ *([0-9]+)\ failed ]]; then
    f=${BASH_REMATCH[2]}
  fi
  if [[ $rc -ne 0 && $f -eq 0 ]]; then f=1; fi  # crashed before its summary
  passed=$((passed + p)); failed=$((failed + f))
  [[ $f -gt 0 ]] && failures+=("$name")
  rm -f "$log"
}

# A shell suite that ends with its own "N passed, M failed" line.
run_suite() {
  local name=$1; shift
  local log
  log=$(mktemp)
  "$@" 2>&1 | tee "$log"
  local line p=0 f=1
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
  if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then p=${BASH_REMATCH[1]}; f=${BASH_REMATCH[2]}; fi
  passed=$((passed + p)); failed=$((failed + f))
  [[ $f -gt 0 ]] && failures+=("$name")
  rm -f "$log"
}

# A shell-level check: counts as one test.
check() {
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "FAIL $name"; echo "$out" | sed 's/^/     /'
  fi
}

echo "== unit tests (Catch2)"
run_catch unit "$BUILD/tests/unit_tests"

echo "== conformance with the Python reference tool"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ref=tests/conformance/tensorblob_ref.py
check "reference tool accepts the golden blobs" $PY $ref check-golden tests/conformance/tensorblob
for d in tests/conformance/tensorblob/*/; do
  name=$(basename "$d")
  [[ -f $d/.stat ]] || continue
  if [[ $name == db_* ]]; then continue; fi  # TensorDB waits for its own issue
  check "rewrite of $name matches Python's bytes" \
    bash -c "'$BUILD/tests/copy_blob' '$d' '$tmp/$name' && $PY $ref compare '$d' '$tmp/$name'"
  check "reference tool reads our $name" $PY $ref describe "$tmp/$name"
done

echo "== tblob end to end"
BUILD=$BUILD run_suite cli tests/cli/cli_test.sh

echo "== mount tests (real FUSE mounts, real clients)"
BUILD=$BUILD run_suite mount tests/mount/mount_test.sh

echo
if ((${#failures[@]})); then echo "failed: ${failures[*]}"; fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
