#!/usr/bin/env bash
# The whole test suite once under AddressSanitizer and UndefinedBehaviorSanitizer: builds the
# tree with -DDLIPKG_SANITIZE=ON into build-asan/ (g++), runs the unit and contract tests there
# and the integration tests against build-asan/dlipkg. Any sanitizer report fails the run
# (UBSan is built not to recover). Slow on 2 cores (a second full build): not part of
# scripts/test.sh; run it before a release, or when touching parsing or buffer code.
#   scripts/sanitize.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
if [ ! -f build-asan/build.ninja ]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDLIPKG_SANITIZE=ON \
    ${CMAKE_CXX_COMPILER_LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$CMAKE_CXX_COMPILER_LAUNCHER} >/dev/null
fi
cmake --build build-asan -j2
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
export DLIPKG_BINARY="$PWD/build-asan/dlipkg"
cleanup=()
trap 'for c in "${cleanup[@]}"; do eval "$c"; done' EXIT
if [ -z "${DLIPKG_TEST_POSTGRES_URL:-}" ]; then
  pg_dir=$(mktemp -d /tmp/dlipkg-postgres-XXXXXX)
  cleanup+=('scripts/postgres.sh stop "$pg_dir"; rm -rf "$pg_dir"')
  DLIPKG_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$pg_dir")
  export DLIPKG_TEST_POSTGRES_URL DLIPKG_TEST_POSTGRES_DIR="$pg_dir"
fi
export DLIPKG_TEST_NO_S3=${DLIPKG_TEST_NO_S3:-1}
status=0
(cd build-asan && ctest --output-on-failure -j2) || status=1
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration "$@" || status=1
exit $status
