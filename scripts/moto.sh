#!/usr/bin/env bash
# Installs the pinned moto[server] into .venv/ and starts it where
# AWS_ENDPOINT_URL points (default http://127.0.0.1:4566, the port LocalStack
# uses) unless something already answers there. It starts one only on a
# local address: any other endpoint must already be up.
#   scripts/moto.sh start   install if needed, start, wait until it answers
#   scripts/moto.sh stop    stop the server this script started on that port
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_VERSION="5.2.5"
ENDPOINT="${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}"
hostport="${ENDPOINT#*://}"
hostport="${hostport%%/*}"
HOST="${hostport%%:*}"
PORT="${hostport##*:}"
if [ "$PORT" = "$hostport" ]; then PORT=80; fi
VENV=.venv
PIDFILE=".venv/moto-$PORT.pid"

up() { curl -fsS -o /dev/null "http://$HOST:$PORT/moto-api/" 2>/dev/null; }

case "${1:-start}" in
start)
  if up; then echo "moto: already answering on $HOST:$PORT"; exit 0; fi
  case "$HOST" in
  127.0.0.1|localhost) ;;
  *) echo "moto: nothing answers at AWS_ENDPOINT_URL=$ENDPOINT, and it is not local: start the emulator there yourself" >&2; exit 1 ;;
  esac
  if ! "$VENV/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    echo "moto: installing moto[server]==$MOTO_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  fi
  nohup "$VENV/bin/moto_server" -H "$HOST" -p "$PORT" > "$VENV/moto-$PORT.log" 2>&1 &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 100); do
    if up; then echo "moto: $MOTO_VERSION listening on $HOST:$PORT (pid $(cat "$PIDFILE"), log $VENV/moto-$PORT.log)"; exit 0; fi
    sleep 0.2
  done
  echo "moto: did not start; see $VENV/moto-$PORT.log" >&2
  tail -20 "$VENV/moto-$PORT.log" >&2 || true
  exit 1
  ;;
stop)
  if [ -f "$PIDFILE" ]; then kill "$(cat "$PIDFILE")" 2>/dev/null || true; rm -f "$PIDFILE"; echo "moto: stopped"; fi
  ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
