#!/usr/bin/env bash
# Side by side with River (make bench-peer): installs PostgreSQL from
# Debian's packages if no server binaries are there, starts a throw-away
# cluster of its own in a temporary directory (Unix socket only, fsync=on,
# synchronous_commit=on), builds internal/embedded's test binary, and runs
# bench/peer — its own Go module, which brings River from the module proxy
# — to run the lag, burst and insert workloads against both and print the
# ratio table. The cluster is stopped and removed on exit.
#   scripts/bench-peer.sh [bench/peer flags, e.g. -runs 1 -poll 0]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PORT="${PEER_PG_PORT:-55432}" # names the socket file only: the server listens on no TCP port

pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
if [ -z "$(pgbin)" ] || [ ! -x "$(pgbin)/initdb" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bench-peer: PostgreSQL's server is not installed; run as root, or: apt-get install -y postgresql" >&2
    exit 1
  fi
  echo "bench-peer: installing PostgreSQL from Debian's packages" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
BIN=$(pgbin)

TMP=$(mktemp -d /tmp/bench-peer.XXXXXX)
# initdb and postgres refuse to run as root: as root, the cluster belongs to
# the postgres user the Debian package made.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" = 0 ]; then chown postgres "$TMP"; fi
chmod 755 "$TMP"
cleanup() {
  as_pg "$BIN/pg_ctl" -D "$TMP/pg" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

as_pg "$BIN/initdb" -D "$TMP/pg" -U postgres -A trust --no-sync >/dev/null
as_pg "$BIN/pg_ctl" -D "$TMP/pg" -l "$TMP/pg.log" -w start \
  -o "-c listen_addresses='' -k $TMP -p $PORT -c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_connections=100" >/dev/null
echo "bench-peer: $("$BIN/postgres" --version), cluster in $TMP/pg (fsync=on, synchronous_commit=on)" >&2

go test -c -o "$TMP/embedded.test" ./internal/embedded/
cd bench/peer
go run . -dsn "host=$TMP port=$PORT user=postgres dbname=postgres pool_max_conns=64" \
  -pgdata "$TMP/pg" -embedded-test "$TMP/embedded.test" -embedded-dir "$ROOT/internal/embedded" "$@"
