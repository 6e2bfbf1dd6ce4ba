#!/usr/bin/env bash
# The README's second command: install what is missing, build, run the whole test suite
# (unit and contract tests through ctest, integration tests through pytest against the real
# server, nginx and SQLite on loopback). Exits non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/build.sh
# The blob contract suite's S3 backend runs against a Swift + s3api of its own; without it the S3
# cases fail, unless DLIPKG_TEST_NO_S3=1 (developers without Swift).
if [ "${DLIPKG_TEST_NO_S3:-}" != 1 ]; then
  swift_dir=$(mktemp -d)
  trap 'scripts/swift_s3.sh stop "$swift_dir" >/dev/null; rm -rf "$swift_dir"' EXIT
  DLIPKG_TEST_S3_ENDPOINT=$(scripts/swift_s3.sh start "$swift_dir" | tail -n 1)
  export DLIPKG_TEST_S3_ENDPOINT DLIPKG_TEST_S3_ACCESS_KEY=test:tester
  export DLIPKG_TEST_S3_SECRET_KEY=testing
fi
status=0
(cd build && ctest --output-on-failure -j2) || status=1
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration "$@" || status=1
exit $status
