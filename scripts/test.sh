#!/usr/bin/env bash
# The README's second command: install what is missing, build, run the whole test suite
# (unit and contract tests through ctest, integration tests through pytest against the real
# server, nginx, SQLite and PostgreSQL on loopback). Exits non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/build.sh
# A throw-away PostgreSQL for the PostgreSQL store's tests, unless the caller brought one.
if [ -z "${DLIPKG_TEST_POSTGRES_URL:-}" ]; then
  pg_dir=$(mktemp -d /tmp/dlipkg-postgres-XXXXXX)
  trap 'scripts/postgres.sh stop "$pg_dir"; rm -rf "$pg_dir"' EXIT
  DLIPKG_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$pg_dir")
  export DLIPKG_TEST_POSTGRES_URL DLIPKG_TEST_POSTGRES_DIR="$pg_dir"
fi
status=0
(cd build && ctest --output-on-failure -j2) || status=1
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration "$@" || status=1
exit $status
