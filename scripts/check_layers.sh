#!/usr/bin/env bash
# Fails when a layer includes a header of a layer above it (design.md, "Layers").
# Run by the build (target layer_check), so an upward include fails `cmake --build`.
set -euo pipefail
src=${1:-$(dirname "$0")/../src}
declare -A allowed=(
  [domain]="domain"
  [ports]="domain ports"
  [core]="domain ports core"
  [adapters]="domain ports adapters"
  [api]="domain ports core api"
  [http]="domain ports core api http"
  [app]="domain ports core adapters api http app"
)
status=0
for layer in "${!allowed[@]}"; do
  [ -d "$src/$layer" ] || continue
  while IFS= read -r line; do
    file=${line%%:*}
    inc=$(sed -E 's/.*#include "([a-z_]+)\/.*/\1/' <<<"$line")
    if [[ " ${allowed[$layer]} " != *" $inc "* ]]; then
      echo "layer violation: $file includes a '$inc' header; '$layer' may use: ${allowed[$layer]}" >&2
      status=1
    fi
  done < <(grep -HE '^#include "[a-z_]+/' "$src/$layer"/*.[ch]pp 2>/dev/null || true)
done
exit $status
