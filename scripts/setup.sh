#!/usr/bin/env bash
# Installs the Debian packages dlipkg needs to build (and, with --test, to run its tests).
# Idempotent and fast when everything is present: apt is only called for what is missing.
set -euo pipefail

build_pkgs=(g++ cmake ninja-build pkg-config libboost1.81-dev libboost-json1.81-dev
  libboost-url1.81-dev libcurl4-openssl-dev libssl-dev libsqlite3-dev libspdlog-dev
  libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev libpqxx-dev)
test_pkgs=(nginx-light python3 python3-pytest python3-requests curl procps postgresql)

pkgs=("${build_pkgs[@]}")
[ "${1:-}" = "--test" ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
# nginx's and postgresql's packages would start system servers; the tests run their own.
"${sudo_cmd[@]}" sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
"${sudo_cmd[@]}" rm -f /usr/sbin/policy-rc.d
