#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang 16, ASan + UBSan, -DDLIPKG_FUZZ=ON) into
# build-fuzz/ and runs each for a fixed budget, starting from its seed corpus in
# tests/fuzz/corpus/<target> (copied: the repository's corpora are not modified).
#   scripts/fuzz.sh                 10 s per target (what .ci/run runs, through scripts/test.sh)
#   scripts/fuzz.sh --budget 600    the longer run: 10 minutes per target (docs/testing.md)
#   scripts/fuzz.sh 60 names        one target (a bare number is the budget too)
#   scripts/fuzz.sh --build-only    only build the targets
# Prints, per target, libFuzzer's final statistics (executions, executions per second, new
# units, peak RSS), the corpus size at the end and whether it found anything. Exits non-zero on
# any finding: a crash, a sanitizer report, a leak, an input slower than 10 s (-timeout) or an
# RSS over 2 GiB. The input is kept in build-fuzz/findings/<target>/ and the log is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --fuzz
seconds=10
build_only=false
if [ "${1:-}" = --budget ]; then
  seconds=${2:?--budget needs a number of seconds}
  shift 2
elif [ "${1:-}" = --build-only ]; then
  build_only=true
  shift
elif [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
all=(json_decode names sdk_signature credentials sources s3_xml request config)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
if [ ! -f build-fuzz/build.ninja ]; then
  launcher=${CMAKE_CXX_COMPILER_LAUNCHER:-}
  [ -z "$launcher" ] && command -v ccache >/dev/null && launcher=ccache
  CXX=clang++-16 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDLIPKG_FUZZ=ON ${launcher:+-DCMAKE_CXX_COMPILER_LAUNCHER=$launcher} >/dev/null
fi
# Only the fuzz targets and the libraries they link (not the server, not the tests).
cmake --build build-fuzz -j2 --target "${targets[@]/#/fuzz_}"
$build_only && exit 0

status=0
for t in "${targets[@]}"; do
  work=$(mktemp -d "/tmp/dlipkg-fuzz-$t-XXXXXX")
  mkdir -p "$work/corpus" "build-fuzz/findings/$t"
  cp -r "tests/fuzz/corpus/$t/." "$work/corpus/"
  log="$work/log"
  # -timeout: a single input slower than 10 s is a finding (a hang), not just a slow run.
  if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      build-fuzz/fuzz/fuzz_"$t" -max_total_time="$seconds" -timeout=10 -max_len=65536 \
      -rss_limit_mb=2048 -artifact_prefix="build-fuzz/findings/$t/" -print_final_stats=1 \
      "$work/corpus" >"$log" 2>&1; then
    found=none
  else
    found=FOUND
  fi
  final_stat() { grep -o "stat::$1: *[0-9]*" "$log" | grep -o '[0-9]*$' || echo '?'; }
  runs=$(final_stat number_of_executed_units)
  # A run that printed no statistics did not fuzz (it could not start): a failure too.
  [ "$runs" = '?' ] && found=FOUND
  corpus=$(find "$work/corpus" -type f | wc -l)
  printf 'fuzz %-13s %5s s %11s executions %7s/s  corpus %5s  new %5s  rss %4s MB  findings: %s\n' \
    "$t" "$seconds" "$runs" "$(final_stat average_exec_per_sec)" "$corpus" "$(final_stat new_units_added)" \
    "$(final_stat peak_rss_mb)" "$found"
  if [ "$found" = none ]; then
    rm -rf "$work"
  else
    status=1
    echo "--- fuzz_$t log ($log); inputs in build-fuzz/findings/$t/:" >&2
    tail -n 60 "$log" >&2
  fi
done
exit $status
