#!/usr/bin/env bash
# The whole test suite once under AddressSanitizer (with LeakSanitizer) and
# UndefinedBehaviorSanitizer: builds the tree with -DDLIPKG_SANITIZE=ON into build-asan/ (g++),
# runs the unit and contract tests there (ctest) and the integration tests (pytest) against
# build-asan/dlipkg, with PostgreSQL and Swift s3api on loopback as scripts/test.sh does.
# Fails on a failing test or on any sanitizer report: UBSan is built not to recover, and every
# report of every process (test binaries, each server the integration tests start, the client)
# is also written to a report directory that must stay empty, so a report at a server's exit
# (a leak after SIGTERM) fails the run even when no test saw it.
# Slow on 2 cores (a second full build, and the tests run 2-3 times slower): not part of
# scripts/test.sh; run it before a release, or after touching parsing or buffer code.
#   scripts/sanitize.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
if [ ! -f build-asan/build.ninja ]; then
  launcher=${CMAKE_CXX_COMPILER_LAUNCHER:-}
  [ -z "$launcher" ] && command -v ccache >/dev/null && launcher=ccache
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDLIPKG_SANITIZE=ON \
    ${launcher:+-DCMAKE_CXX_COMPILER_LAUNCHER=$launcher} >/dev/null
fi
cmake --build build-asan -j2
reports=$(mktemp -d /tmp/dlipkg-sanitize-XXXXXX)
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan"
export DLIPKG_BINARY="$PWD/build-asan/dlipkg"
# The integration tests' memory ceilings allow for ASan's own memory (tests/integration/harness.py).
export DLIPKG_TEST_SANITIZED=1
source scripts/test_servers.sh
status=0
(cd build-asan && ctest --output-on-failure -j2) || status=1
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration "$@" || status=1
found=$(find "$reports" -type f | wc -l)
if [ "$found" -ne 0 ]; then
  echo "sanitize: $found sanitizer report(s):" >&2
  for f in "$reports"/*; do echo "--- $f" >&2; head -n 60 "$f" >&2; done
  status=1
else
  echo "sanitize: no sanitizer report"
  rm -rf "$reports"
fi
exit $status
