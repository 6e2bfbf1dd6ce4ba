#!/usr/bin/env bash
# A throw-away PostgreSQL for tests: `postgres.sh start DIR` installs the server if missing,
# creates (once) a cluster in DIR listening on 127.0.0.1 only, on a free port, with trust auth
# and its socket inside DIR, starts it, creates the database and prints the connection URL.
# `start` again on the same DIR restarts the same cluster on the same port (the restart tests
# rely on that); `stop DIR` stops it (fast shutdown); `url DIR` prints the URL again.
# As root, the server runs as the system user dlipkg-test (initdb refuses root).
set -euo pipefail

usage() { echo "usage: $0 start|stop|url DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1
dir=$2
run_user=dlipkg-test
database=dlipkg_test

install_if_missing() {
  dpkg-query -W -f='${Status}' postgresql 2>/dev/null | grep -q "install ok installed" && return
  echo "postgres.sh: installing postgresql" >&2
  local sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  # The package would start the system cluster on 5432; ours is started by hand below.
  "${sudo_cmd[@]}" sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  "${sudo_cmd[@]}" rm -f /usr/sbin/policy-rc.d
}

bin_dir() {
  local newest
  newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$newest" ] || { echo "postgres.sh: no PostgreSQL server binaries found" >&2; exit 1; }
  echo "$newest"
}

# Runs a command as the cluster's owner: ourselves, or dlipkg-test when we are root.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$run_user" -- "$@"
  else
    "$@"
  fi
}

ensure_run_user() {
  [ "$(id -u)" -eq 0 ] || return 0
  id "$run_user" >/dev/null 2>&1 ||
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$run_user"
  chown -R "$run_user" "$dir"
  if ! runuser -u "$run_user" -- test -w "$dir"; then
    echo "postgres.sh: $run_user cannot write $dir (a parent directory is not traversable);" \
      "use a directory under /tmp" >&2
    exit 1
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

url() { echo "postgresql://postgres@127.0.0.1:$(cat "$dir/port")/$database"; }

start() {
  install_if_missing
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  ensure_run_user
  local bin
  bin=$(bin_dir)
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 \
      --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    mkdir -p "$dir/socket"
    [ "$(id -u)" -eq 0 ] && chown "$run_user" "$dir/socket"
    # A port picked now may be taken before the server binds it: try a few.
    for _ in 1 2 3; do
      free_port >"$dir/port"
      if launch "$bin"; then
        as_owner "$bin/createdb" -h "$dir/socket" -p "$(cat "$dir/port")" -U postgres "$database"
        url
        return
      fi
    done
    echo "postgres.sh: the server did not start; see $dir/server.log" >&2
    exit 1
  fi
  if ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    launch "$bin" || { echo "postgres.sh: the server did not start; see $dir/server.log" >&2; exit 1; }
  fi
  url
}

# Test settings: durability is not what these tests measure, speed is.
launch() {
  # pg_ctl runs the options through a shell line: they must stay on one line.
  local options="-k $dir/socket -p $(cat "$dir/port") -c listen_addresses=127.0.0.1"
  options+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
  as_owner "$1/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 -o "$options" start >/dev/null
}

stop() {
  [ -f "$dir/data/PG_VERSION" ] || return 0
  as_owner "$(bin_dir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

case "$action" in
  start) start ;;
  stop) stop ;;
  url) url ;;
  *) usage ;;
esac
