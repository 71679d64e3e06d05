#!/usr/bin/env bash
# run_tests.sh [BUILD...]: runs every test suite against each build directory
# (default: build) and ends with one line "N passed, M failed" that counts
# them all; exits 1 if M > 0. A build under */asan is the sanitizer build.
set -u
cd "$(dirname "$0")/.."
BUILDS=("${@:-build}")
PY=/usr/bin/python3  # Debian's python3, which has numpy (the first on PATH may not)
passed=0
failed=0
failures=()

# "P F" from a Catch2 log: "test cases: T | P passed | F failed" or
# "All tests passed (... in T test cases)".
catch_counts() {
  local line
  line=$(grep -E '^(test cases:|All tests passed)' "$1" | tail -1)
  if [[ $line =~ All\ tests\ passed.*\ ([0-9]+)\ test\ case ]]; then echo "${BASH_REMATCH[1]} 0"
  elif [[ $line =~ test\ cases:\ *[0-9]+\ \|\ *([0-9]+)\ passed\ \|\ *([0-9]+)\ failed ]]; then echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
  elif [[ $line =~ test\ cases:\ *[0-9]+\ \|\ *([0-9]+)\ failed ]]; then echo "0 ${BASH_REMATCH[1]}"
  else echo "0 0"; fi
}

# "P F" from a shell suite's own last line "P passed, F failed".
suite_counts() {
  local line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -1)
  if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
  else echo "0 0"; fi
}

# run_counted NAME COUNTER CMD...: runs a suite, shows its output and adds the
# counts COUNTER reads from it; a suite that fails without saying so (a crash
# before its summary) counts as one failure.
run_counted() {
  local name=$1 counter=$2; shift 2
  local log p f rc
  log=$(mktemp)
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  read -r p f <<<"$($counter "$log")"
  if [[ $rc -ne 0 && $f -eq 0 ]]; then f=1; fi
  passed=$((passed + p)); failed=$((failed + f))
  if [[ $f -gt 0 ]]; then failures+=("$name"); fi
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

tmp=$(mktemp -d)
URING_KNOB=/sys/module/fuse/parameters/enable_uring
uring_was=
# Whatever happens, the kernel's io_uring switch is left as it was found.
trap 'rm -rf "$tmp"; [[ -n $uring_was ]] && echo "$uring_was" >"$URING_KNOB"' EXIT

for BUILD in "${BUILDS[@]}"; do
  if [[ $BUILD == *asan* ]]; then export TBLOB_SANITIZED=1; else unset TBLOB_SANITIZED; fi
  echo "######## $BUILD${TBLOB_SANITIZED:+ (ASan + UBSan)}"
  echo "== unit tests (Catch2)"
  run_counted "unit ($BUILD)" catch_counts "$BUILD/tests/unit_tests"

  echo "== conformance with the Python reference tool"
  out=$tmp/$(echo "$BUILD" | tr / _)
  mkdir -p "$out"
  ref=tests/conformance/tensorblob_ref.py
  check "reference tool accepts the golden blobs" $PY $ref check-golden tests/conformance/tensorblob
  for d in tests/conformance/tensorblob/*/; do
    name=$(basename "$d")
    [[ -f $d/.stat ]] || continue
    check "rewrite of $name matches Python's bytes" \
      bash -c "'$BUILD/tests/copy_blob' '$d' '$out/$name' && $PY $ref compare '$d' '$out/$name'"
    check "reference tool reads our $name" $PY $ref describe "$out/$name"
  done

  if [[ -z ${TBLOB_SANITIZED:-} ]]; then  # the fuzz targets carry their own sanitizers
    echo "== fuzz targets replay their seeds (make fuzz runs them for longer)"
    run_counted fuzz suite_counts tests/fuzz/run_fuzz.sh "$BUILD" 0
  fi

  echo "== hostile inputs (tests/hostile/cases)"
  BUILD=$BUILD run_counted "hostile ($BUILD)" suite_counts tests/hostile/run_hostile.sh

  echo "== tblob end to end"
  BUILD=$BUILD run_counted "cli ($BUILD)" suite_counts tests/cli/cli_test.sh

  # Every mount test runs on both transports: on /dev/fuse with the normal
  # build, and with the sanitizer build on FUSE over io_uring where this
  # kernel has it (its switch turned on for these suites and put back), so
  # the ring's code also runs under ASan + UBSan.
  transport=dev
  if [[ -n ${TBLOB_SANITIZED:-} && -w $URING_KNOB ]]; then
    transport=uring
    uring_was=$(cat "$URING_KNOB")
    echo Y >"$URING_KNOB"
  fi
  on=$([[ $transport == uring ]] && echo "FUSE over io_uring, $URING_KNOB = Y for these suites" || echo /dev/fuse)
  expect=$([[ $transport == uring ]] && echo uring || true)
  echo "== mount tests (real FUSE mounts, real clients) on $on"
  BUILD=$BUILD BLOBFS_EXPECT_TRANSPORT=$expect run_counted "mount on $transport ($BUILD)" suite_counts tests/mount/mount_test.sh

  echo "== a data directory mounted (catalog: many stores, TensorDB tables) on $on"
  BUILD=$BUILD BLOBFS_EXPECT_TRANSPORT=$expect run_counted "catalog on $transport ($BUILD)" suite_counts tests/mount/catalog_test.sh
  if [[ $transport == uring ]]; then echo "$uring_was" >"$URING_KNOB"; uring_was=; fi
  if [[ -n ${TBLOB_SANITIZED:-} && ! -w $URING_KNOB ]]; then
    echo "== no FUSE over io_uring in this kernel ($URING_KNOB): the mount tests ran on /dev/fuse only"
  fi

  echo "== stores on S3 (a real Ceph RADOS Gateway, boto3 uploads, a fault proxy)"
  BUILD=$BUILD run_counted "s3 ($BUILD)" suite_counts tests/s3/s3_test.sh
done

echo
if ((${#failures[@]})); then echo "failed: ${failures[*]}"; fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
