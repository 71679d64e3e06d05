#!/usr/bin/env bash
# run_fuzz.sh BUILD SECONDS: runs every libFuzzer target for SECONDS under
# ASan + UBSan, starting from its seeds in tests/fuzz/seeds/NAME, growing a
# corpus in BUILD/fuzz/corpus/NAME. SECONDS=0 only replays the seeds (what
# `make test` does). Ends with "N passed, M failed"; a crash input is kept as
# BUILD/fuzz/crash-NAME-* and belongs in seeds/ as a regression test once fixed.
set -u
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
SECONDS_EACH=${2:-30}
passed=0
failed=0
for bin in "$BUILD"/fuzz/fuzz_*; do
  [[ -x $bin && -f $bin ]] || continue
  name=$(basename "$bin"); name=${name#fuzz_}
  seeds=tests/fuzz/seeds/$name
  corpus=$BUILD/fuzz/corpus/$name
  mkdir -p "$corpus"
  if [[ $SECONDS_EACH -eq 0 ]]; then
    args=(-runs=0 "$seeds")
  else
    args=(-max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 "$corpus" "$seeds")
  fi
  log=$(mktemp)
  if "$bin" -artifact_prefix="$BUILD/fuzz/crash-$name-" "${args[@]}" >"$log" 2>&1; then
    runs=$(grep -oE 'Done [0-9]+ runs' "$log" | tail -1)
    echo "ok   fuzz $name: ${runs:-seeds replayed}"
    passed=$((passed + 1))
  else
    echo "FAIL fuzz $name"; tail -30 "$log" | sed 's/^/     /'
    failed=$((failed + 1))
  fi
  rm -f "$log"
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
