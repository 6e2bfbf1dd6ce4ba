#!/usr/bin/env bash
# Installs the Debian packages dlipkg needs to build (and, with --test, to run its tests, plus
# the official Node.js SDK core under tests/node that the auth tests sign requests with).
# Idempotent and fast when everything is present: apt and npm only run for what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs=(g++ cmake ninja-build pkg-config libboost1.81-dev libboost-json1.81-dev
  libboost-url1.81-dev libcurl4-openssl-dev libssl-dev libsqlite3-dev libspdlog-dev
  libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev libpq-dev prometheus-cpp-dev
  libtomlplusplus-dev libjemalloc-dev libicu-dev libxxhash-dev)
test_pkgs=(nginx-light python3 python3-pytest python3-requests curl procps postgresql)
# XXH3-128 in Python, to check the upload checksum the server answers with.
test_pkgs+=(python3-xxhash)
# A JVM for the client tests that class-load a JAR over a presigned URL.
test_pkgs+=(default-jdk-headless)
# A real Prometheus text parser for the /metrics tests; systemd-analyze for the unit file.
test_pkgs+=(python3-prometheus-client systemd)
# An S3-compatible server that verifies SigV4, for the object-store tests.
test_pkgs+=(swift swift-proxy swift-object swift-account swift-container python3-swift memcached)
# The web console's tests: Debian's headless Chromium, its driver, and Selenium to drive it
# (nothing that downloads a browser of its own).
test_pkgs+=(chromium chromium-driver python3-selenium)

# libFuzzer and the sanitizers with a clang that reads libstdc++ 12's <expected> (scripts/fuzz.sh).
fuzz_pkgs=(clang-16 libclang-rt-16-dev)

testing=false
fuzzing=false
[ "${1:-}" = "--test" ] && testing=true
[ "${1:-}" = "--fuzz" ] && fuzzing=true
pkgs=("${build_pkgs[@]}")
$testing && pkgs+=("${test_pkgs[@]}")
$fuzzing && pkgs+=("${fuzz_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from another package that bundles npm: only ask apt when a tool is absent.
if $testing && ! { command -v node && command -v npm; } >/dev/null; then
  missing+=(nodejs npm)
fi
# A JVM and javac for the test that loads a class from a presigned JAR URL; any JDK will do.
if $testing && ! { command -v java && command -v javac && command -v jar; } >/dev/null; then
  missing+=(default-jdk-headless)
fi

# The Node.js SDK core, pinned by tests/node/package-lock.json; reinstalled only when the
# package files are newer than the last install.
install_node_sdk() {
  local dir=tests/node stamp=tests/node/node_modules/.dlipkg-installed
  if [ -f "$stamp" ] && [ "$stamp" -nt "$dir/package.json" ] && [ "$stamp" -nt "$dir/package-lock.json" ]; then
    return 0
  fi
  echo "setup: installing the Node.js SDK core into $dir/node_modules" >&2
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$stamp"
}

if [ ${#missing[@]} -eq 0 ]; then
  $testing && install_node_sdk
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
# nginx's and postgresql's packages would start system servers; the tests run their own.
"${sudo_cmd[@]}" sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
"${sudo_cmd[@]}" rm -f /usr/sbin/policy-rc.d
$testing && install_node_sdk
exit 0
