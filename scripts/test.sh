#!/usr/bin/env bash
# The README's second command: install what is missing, build, run the whole test suite
# (unit and contract tests through ctest, integration tests through pytest against the real
# server, nginx and SQLite on loopback). Exits non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/build.sh
status=0
(cd build && ctest --output-on-failure -j2) || status=1
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration "$@" || status=1
exit $status
