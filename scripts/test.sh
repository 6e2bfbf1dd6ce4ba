#!/usr/bin/env bash
# The README's second command: install what is missing, build, run the whole test suite
# (unit and contract tests through ctest, integration tests through pytest against the real
# server, nginx, SQLite, PostgreSQL and Swift s3api on loopback). Exits non-zero if anything
# failed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/build.sh
source scripts/test_servers.sh
status=0
(cd build && ctest --output-on-failure -j2) || status=1
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration "$@" || status=1
# Every fuzz target for a short fixed budget (10 s by default, DLIPKG_TEST_FUZZ_BUDGET), from
# its seed corpus: on in CI (.ci/run sets DLIPKG_TEST_FUZZ=1), off by default here, since the
# clang build of the targets is a second (small) build in build-fuzz/.
if [ "${DLIPKG_TEST_FUZZ:-}" = 1 ]; then
  scripts/fuzz.sh --budget "${DLIPKG_TEST_FUZZ_BUDGET:-10}" || status=1
fi
exit $status
