#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang 16, ASan + UBSan, -DDLIPKG_FUZZ=ON) into
# build-fuzz/ and runs each for a fixed budget, starting from its seed corpus in
# tests/fuzz/corpus/<target> (copied: the repository's corpora are not modified).
#   scripts/fuzz.sh                 10 s per target
#   scripts/fuzz.sh --budget 20     20 s per target (what scripts/test.sh runs with
#                                   DLIPKG_TEST_FUZZ=1)
#   scripts/fuzz.sh --budget 600    the longer run: 10 minutes per target
#   scripts/fuzz.sh 60 names        one target (a bare number is the budget too)
# Prints, per target, the executions done and whether it found anything; exits non-zero on a
# finding (the crashing input is kept in build-fuzz/findings/<target>/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --fuzz
seconds=10
if [ "${1:-}" = --budget ]; then
  seconds=${2:?--budget needs a number of seconds}
  shift 2
elif [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(json_decode names sdk_signature credentials sources s3_xml request config)
if [ ! -f build-fuzz/build.ninja ]; then
  CXX=clang++-16 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDLIPKG_FUZZ=ON ${CMAKE_CXX_COMPILER_LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$CMAKE_CXX_COMPILER_LAUNCHER} >/dev/null
fi
cmake --build build-fuzz -j2 --target "${targets[@]/#/fuzz_}"
status=0
for t in "${targets[@]}"; do
  work=$(mktemp -d /tmp/dlipkg-fuzz-$t-XXXXXX)
  mkdir -p "$work/corpus" "build-fuzz/findings/$t"
  cp -r "tests/fuzz/corpus/$t/." "$work/corpus/"
  log="$work/log"
  if build-fuzz/fuzz/fuzz_"$t" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
       -artifact_prefix="build-fuzz/findings/$t/" -print_final_stats=1 "$work/corpus" >"$log" 2>&1; then
    found=none
  else
    found="FOUND (see build-fuzz/findings/$t/ and $log)"
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  printf 'fuzz %-14s %4s s  %10s executions  findings: %s\n' "$t" "$seconds" "$runs" "$found"
  [ "$found" = none ] && rm -rf "$work"
done
exit $status
