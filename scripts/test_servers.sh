# Sourced by scripts/test.sh and scripts/sanitize.sh: throw-away servers for the store tests,
# unless the caller brought its own: PostgreSQL for the PostgreSQL store, Swift + s3api for the
# S3 blob store (without it the S3 cases fail, unless DLIPKG_TEST_NO_S3=1, for developers
# without Swift). Both are stopped when the sourcing script exits.
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
