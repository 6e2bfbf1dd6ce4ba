#!/usr/bin/env bash
# The README's first command: install what is missing, build, start the server on the embedded
# default (SQLite + ./dlipkg-data, 127.0.0.1:8080). Extra arguments go to `dlipkg serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh --target dlipkg
exec build/dlipkg serve "$@"
