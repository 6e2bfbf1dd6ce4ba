#!/usr/bin/env bash
# Proves scripts/check_layers.sh can fail: it must pass on the real tree, then refuse a copy of
# the tree with one planted violation of each kind (an upward include, an adapter folder using
# another port's folder, a library header in domain/ports/core, a nested file breaking a rule).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
check=$root/scripts/check_layers.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

bash "$check" "$root/src" || { echo "FAIL: the real tree is refused"; exit 1; }

# plant FILE LINE: copies src/, appends LINE to FILE there, expects the check to refuse it
# with a message naming FILE.
plant() {
  local file=$1 line=$2
  rm -rf "$work/src"
  cp -r "$root/src" "$work/src"
  mkdir -p "$(dirname "$work/src/$file")"
  printf '%s\n' "$line" >>"$work/src/$file"
  local out
  if out=$(bash "$check" "$work/src" 2>&1); then
    echo "FAIL: not refused: $file: $line"
    failures=$((failures + 1))
  elif ! grep -q "$file" <<<"$out"; then
    echo "FAIL: refused without naming $file: $out"
    failures=$((failures + 1))
  else
    echo "ok: refused $file: $line"
  fi
}

plant core/package_service.cpp '#include "api/error_table.hpp"'
plant domain/names.cpp '#include "core/package_service.hpp"'
plant ports/clock.hpp '#include "adapters/common/sha256.hpp"'
plant api/json_codec.cpp '#include "http/server.hpp"'
plant core/job_runner.cpp '#include <boost/json.hpp>'
plant domain/names.hpp '#include <sqlite3.h>'
plant ports/blob_store.hpp '#include <curl/curl.h>'
plant adapters/blobs/fs_blob_store.cpp '#include "adapters/auth/credential_store.hpp"'
plant adapters/common/sha256.cpp '#include "adapters/s3/s3_request.hpp"'
plant adapters/s3/object_stores.cpp '#include "adapters/sources/source_policy.hpp"'
plant adapters/metadata/sqlite/sqlite_db.cpp '#include "adapters/metadata/postgres/postgres_db.hpp"'
plant adapters/sources/nested/new_file.cpp '#include "api/routes.hpp"'
plant core/sub/new_file.hpp '#include <spdlog/spdlog.h>'
plant client/cli.cpp '#include "api/error_table.hpp"'
plant adapters/auth/sdk_hmac_signature.cpp '#include "client/cli.hpp"'
plant core/job_runner.cpp 'auto t = std::chrono::steady_clock::now();'
plant core/worker_pool.cpp 'void Nap() { std::this_thread::sleep_for(std::chrono::milliseconds(1)); }'
plant core/blob_keeper.cpp 'std::random_device seed;'

if [ "$failures" -ne 0 ]; then
  echo "$failures planted violation(s) were not refused"
  exit 1
fi
echo "all planted violations refused"
