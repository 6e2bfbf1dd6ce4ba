#!/usr/bin/env bash
# A single-node OpenStack Swift with the s3api and tempauth middlewares on 127.0.0.1, for the
# integration tests: an S3-compatible server that really verifies AWS SigV4 signatures.
#   scripts/swift_s3.sh start DIR   installs Swift if missing, writes config, rings, data and
#                                   logs under DIR (nothing in /etc), starts memcached and the
#                                   four servers on free ports, waits for them, and prints the S3
#                                   endpoint (http://127.0.0.1:PORT). Credentials: access key
#                                   test:tester, secret testing, region us-east-1.
#   scripts/swift_s3.sh stop DIR    stops what `start DIR` started, by the PIDs it recorded.
#   scripts/swift_s3.sh proxy-down DIR / proxy-up DIR
#                                   stops / restarts only the S3 endpoint (same port, same data):
#                                   an outage of the bucket, for the tests.
set -euo pipefail

usage() { echo "usage: $0 start|stop|proxy-down|proxy-up DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
etc=$dir/etc
pids=$dir/pids

install_if_missing() {
  local tool missing=0
  for tool in swift-proxy-server swift-account-server swift-container-server \
              swift-object-server swift-ring-builder memcached; do
    command -v "$tool" >/dev/null || missing=1
  done
  [ $missing -eq 0 ] && return
  echo "swift_s3: installing Swift" >&2
  local sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  # The packages would start system-wide services; the tests run their own.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [ ! -e $policy ]; then
    "${sudo_cmd[@]}" sh -c "printf '#!/bin/sh\\nexit 101\\n' > $policy && chmod +x $policy"
    own_policy=1
  fi
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends swift swift-proxy swift-object \
    swift-account swift-container python3-swift memcached >/dev/null
  [ $own_policy -eq 1 ] && "${sudo_cmd[@]}" rm -f $policy
  return 0
}

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# The settings every Swift server shares; $1 is the port.
server_defaults() {
  cat <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $1
swift_dir = $etc
devices = $dir/srv
mount_check = false
disable_fallocate = true
user = $(id -un)
workers = 1
log_level = WARNING
EOF
}

# A storage server's config: $1 is account, container or object, $2 its port.
write_storage_conf() {
  {
    server_defaults "$2"
    cat <<EOF

[pipeline:main]
pipeline = healthcheck $1-server

[app:$1-server]
use = egg:swift#$1

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
  } >"$etc/$1-server.conf"
}

write_proxy_conf() {
  {
    server_defaults "$1"
    cat <<EOF

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$2

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
EOF
  } >"$etc/proxy-server.conf"
}

build_ring() {  # $1 ring name, $2 port
  local builder=$etc/$1.builder
  swift-ring-builder "$builder" create 8 1 1 >/dev/null
  swift-ring-builder "$builder" add "r1z1-127.0.0.1:$2/d1" 100 >/dev/null
  # Exit status 1 means "rebalanced with warnings" (one device cannot be balanced better).
  swift-ring-builder "$builder" rebalance >/dev/null || [ $? -eq 1 ]
}

# Runs a command in its own session (so stop can signal its whole process group) and records
# its PID under $pids/$1.
launch() {
  local name=$1
  shift
  setsid "$@" >"$dir/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$pids/$name"
}

wait_healthy() {  # $1 name, $2 port
  local deadline=$((SECONDS + 30))
  until curl -fsS -o /dev/null "http://127.0.0.1:$2/healthcheck" 2>/dev/null; do
    if ! kill -0 "$(cat "$pids/$1")" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
      echo "swift_s3: $1 did not start; its log:" >&2
      cat "$dir/logs/$1.log" >&2
      return 1
    fi
    sleep 0.1
  done
}

stop() {
  [ -d "$pids" ] || return 0
  for file in "$pids"/*; do
    stop_one "$file"
  done
}

stop_one() {  # $1 a PID file
  local file=$1
  [ -f "$file" ] || return 0
  local pid
  pid=$(cat "$file")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$file"
}

proxy_up() {
  launch proxy swift-proxy-server "$etc/proxy-server.conf"
  wait_healthy proxy "$(sed -n 's/^bind_port = //p' "$etc/proxy-server.conf" | head -n 1)"
}

start() {
  install_if_missing
  stop  # a previous run's leftovers in the same directory
  rm -rf "$etc" "$dir/srv" "$dir/logs"
  mkdir -p "$etc" "$dir/srv/d1" "$dir/logs" "$pids"
  local account container object proxy memcache
  account=$(free_port) container=$(free_port) object=$(free_port) proxy=$(free_port)
  memcache=$(free_port)
  cat >"$etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_prefix = dlipkg-test
swift_hash_path_suffix = dlipkg-test

[storage-policy:0]
name = Policy-0
default = yes
EOF
  write_storage_conf account "$account"
  write_storage_conf container "$container"
  write_storage_conf object "$object"
  write_proxy_conf "$proxy" "$memcache"
  build_ring account "$account"
  build_ring container "$container"
  build_ring object "$object"

  # tempauth keeps its tokens in memcache, so the proxy needs one.
  launch memcached memcached -l 127.0.0.1 -p "$memcache" -U 0 -u "$(id -un)" -m 16
  launch account swift-account-server "$etc/account-server.conf"
  launch container swift-container-server "$etc/container-server.conf"
  launch object swift-object-server "$etc/object-server.conf"
  launch proxy swift-proxy-server "$etc/proxy-server.conf"
  wait_healthy account "$account"
  wait_healthy container "$container"
  wait_healthy object "$object"
  wait_healthy proxy "$proxy"
  echo "http://127.0.0.1:$proxy"
}

case $action in
  start) start ;;
  stop) stop ;;
  proxy-down) stop_one "$pids/proxy" ;;
  proxy-up) proxy_up ;;
  *) usage ;;
esac
