#!/usr/bin/env bash
# The README's second command: install what is missing, build, run the whole test suite
# (unit and contract tests through ctest, integration tests through pytest against the real
# server, nginx, SQLite, PostgreSQL and Swift s3api on loopback). Exits non-zero if anything
# failed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/build.sh
# Throw-away servers for the store tests, unless the caller brought its own:
# PostgreSQL for the PostgreSQL store, Swift + s3api for the S3 blob store (without it the S3
# cases fail, unless DLIPKG_TEST_NO_S3=1, for developers without Swift).
cleanup=()
trap 'for c in "${cleanup[@]}"; do eval "$c"; done' EXIT
if [ -z "${DLIPKG_TEST_POSTGRES_URL:-}" ]; then
  pg_dir=$(mktemp -d /tmp/dlipkg-postgres-XXXXXX)
  cleanup+=('scripts/postgres.sh stop "$pg_dir"; rm -rf "$pg_dir"')
  DLIPKG_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$pg_dir")
  export DLIPKG_TEST_POSTGRES_URL DLIPKG_TEST_POSTGRES_DIR="$pg_dir"
fi
if [ "${DLIPKG_TEST_NO_S3:-}" != 1 ]; then
  swift_dir=$(mktemp -d)
  cleanup+=('scripts/swift_s3.sh stop "$swift_dir" >/dev/null; rm -rf "$swift_dir"')
  DLIPKG_TEST_S3_ENDPOINT=$(scripts/swift_s3.sh start "$swift_dir" | tail -n 1)
  export DLIPKG_TEST_S3_ENDPOINT DLIPKG_TEST_S3_ACCESS_KEY=test:tester
  export DLIPKG_TEST_S3_SECRET_KEY=testing
fi
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
