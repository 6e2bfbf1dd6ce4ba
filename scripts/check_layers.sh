#!/usr/bin/env bash
# Fails when a source file breaks the layering of design.md ("Layers"):
#  - a layer includes a header of a layer above it ("core" including "api/...");
#  - an adapter folder includes another port's folder: a port folder may use adapters/common/
#    and adapters/s3/ only (s3/ itself only common/), and metadata/{sqlite,postgres}/ the shared
#    SQL in metadata/ (not each other);
#  - domain, ports or core include a library header (<boost/...>, <curl/curl.h>, <sqlite3.h>):
#    those layers are plain C++ over the standard library, so anything with a '/' or a '.h'
#    inside <...> is refused there;
#  - core reads the real clock, sleeps or draws real randomness (steady_clock, system_clock,
#    random_device, sleep_for, ...): time and randomness reach it through its ports.
# Run by the build (target layer_check), so a violation fails `cmake --build`; tests plant one
# violation of each kind in a copy of the tree and expect this script to refuse it.
set -euo pipefail
src=${1:-$(dirname "$0")/../src}
declare -A allowed=(
  [domain]="domain"
  [ports]="domain ports"
  [core]="domain ports core"
  [adapters]="domain ports adapters"
  [api]="domain ports core api"
  [http]="domain ports core api http"
  [client]="domain ports adapters client"
  [app]="domain ports core adapters api http client app"
)
# Adapter sub-layers: which adapters/<folder> each adapters/<folder> may include.
adapter_allowed() {
  case $1 in
    common) echo "common" ;;
    s3) echo "common s3" ;;
    metadata) echo "common s3 metadata" ;;
    metadata/sqlite) echo "common s3 metadata metadata/sqlite" ;;
    metadata/postgres) echo "common s3 metadata metadata/postgres" ;;
    *) echo "common s3 $1" ;;
  esac
}
# The folder of an adapters/ path that names a sub-layer: "metadata/sqlite/x.hpp" ->
# "metadata/sqlite", "metadata/x.hpp" -> "metadata", "blobs/x.hpp" -> "blobs".
adapter_folder() {
  local rest=$1
  case $rest in
    metadata/sqlite/*) echo metadata/sqlite ;;
    metadata/postgres/*) echo metadata/postgres ;;
    */*) echo "${rest%%/*}" ;;
    *) echo "" ;;
  esac
}
status=0
fail() {
  echo "layer violation: $1" >&2
  status=1
}
for layer in "${!allowed[@]}"; do
  [ -d "$src/$layer" ] || continue
  while IFS= read -r file; do
    rel=${file#"$src/"}
    while IFS= read -r line; do
      if [[ $line =~ ^#include\ \"([a-z_]+)/([^\"]*)\" ]]; then
        inc=${BASH_REMATCH[1]}
        path=${BASH_REMATCH[2]}
        if [[ " ${allowed[$layer]} " != *" $inc "* ]]; then
          fail "$rel includes a '$inc' header; '$layer' may use: ${allowed[$layer]}"
          continue
        fi
        if [ "$layer" = adapters ] && [ "$inc" = adapters ]; then
          own=$(adapter_folder "${rel#adapters/}")
          target=$(adapter_folder "$path")
          if [ -z "$own" ] || [ -z "$target" ]; then
            fail "$rel includes adapters/$path; adapters live in port folders"
          elif [[ " $(adapter_allowed "$own") " != *" $target "* ]]; then
            fail "$rel includes adapters/$path; adapters/$own may use: $(adapter_allowed "$own")"
          fi
        fi
      elif [[ $line =~ ^#include\ \<([^\>]*)\> ]]; then
        header=${BASH_REMATCH[1]}
        case $layer in
          domain | ports | core)
            if [[ $header == */* || $header == *.h ]]; then
              fail "$rel includes the library header <$header>; '$layer' uses the standard library only"
            fi
            ;;
        esac
      fi
    done < <(grep -E '^#include ' "$file" || true)
  done < <(find "$src/$layer" -type f \( -name '*.cpp' -o -name '*.hpp' \))
done
if [ -d "$src/core" ]; then
  real_time='(steady_clock|system_clock|high_resolution_clock|random_device|sleep_for|sleep_until|std::time\(|wait_for\(|wait_until\()'
  while IFS= read -r hit; do
    fail "${hit#"$src/"}: core uses the real clock or randomness; take them from its ports"
  done < <(grep -rnE "$real_time" "$src/core" --include='*.cpp' --include='*.hpp' | grep -vE ':[0-9]+:\s*//' || true)
fi
exit $status
