#!/usr/bin/env bash
# The services the shared-backend tests use, on 127.0.0.1 only:
#   - PostgreSQL: a dedicated cluster `fmhubtest` on port 55432 (Debian's pg_createcluster /
#     pg_ctlcluster; fsync off: test data only), a role `fmhub` (password `fmhub`, CREATEDB) and a
#     database `fmhub`;
#   - an S3-compatible server: `moto_server` on port 55433 (moto[server]), its pid file and log
#     under test-output/;
#   - a Ray head (`ray start --head`, extra fmhub[ray]) on 127.0.0.1:56379: every Ray process on
#     the loopback address, token authentication on (a fresh token in /tmp/fmhub-ray-<port>.token;
#     `env` exports RAY_AUTH_MODE and RAY_AUTH_TOKEN_PATH for its clients), no dashboard, a 100 MB
#     object store, 4 logical CPUs, its files under /tmp/fmhub-ray-<port> (stop ends the processes
#     of that folder only).
#
# Usage: scripts/test-services.sh start|stop|env|status
#   start   create the cluster once, start both services, wait until they answer (bounded waits)
#   stop    stop both
#   env     print the `export ...` lines the tests read (eval "$(scripts/test-services.sh env)")
#
# PostgreSQL is installed with apt-get when missing and we are root (log: test-output/apt.log).
# Settings (environment): FMHUB_TEST_PG_PORT (55432), FMHUB_TEST_S3_PORT (55433), FMHUB_TEST_RAY_PORT (56379),
# FMHUB_TEST_PYTHON (the Python that has moto; default .venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."

PG_PORT=${FMHUB_TEST_PG_PORT:-55432}
S3_PORT=${FMHUB_TEST_S3_PORT:-55433}
RAY_PORT=${FMHUB_TEST_RAY_PORT:-56379}
RAY_DIR=/tmp/fmhub-ray-$RAY_PORT
RAY_ADDRESS_=127.0.0.1:$RAY_PORT
RAY_TOKEN=$RAY_DIR.token
CLUSTER=fmhubtest
OUT=test-output
MOTO_PID=$OUT/moto.pid
MOTO_LOG=$OUT/moto.log
PG_URL="postgresql+psycopg://fmhub:fmhub@127.0.0.1:$PG_PORT/fmhub"
S3_URL="http://127.0.0.1:$S3_PORT"

if [ -n "${FMHUB_TEST_PYTHON:-}" ]; then PY=$FMHUB_TEST_PYTHON
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3; fi

say() { echo "test-services: $*" >&2; }
die() { say "$*"; exit 1; }

pg_version() {
  # The newest PostgreSQL installed (Debian layout: /usr/lib/postgresql/<major>/bin).
  local v
  v=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
  [ -n "$v" ] && [ -x "/usr/lib/postgresql/$v/bin/postgres" ] && echo "$v"
}

install_postgres() {
  [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed; install Debian's 'postgresql' package (as root: apt-get install postgresql)"
  mkdir -p "$OUT"
  say "installing PostgreSQL (apt-get; log: $OUT/apt.log)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } \
    >> "$OUT/apt.log" 2>&1 || die "apt-get install postgresql failed: see $OUT/apt.log"
}

as_postgres() {
  # Run a command as the cluster owner: root switches user; the postgres user runs it directly.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"
  elif [ "$(id -un)" = postgres ]; then "$@"
  else sudo -n -u postgres -- "$@"; fi
}

cluster_exists() { pg_lsclusters -h 2>/dev/null | awk -v v="$1" -v c="$CLUSTER" '$1==v && $2==c {f=1} END {exit !f}'; }

wait_pg() {
  local bin=$1 i
  for i in $(seq 1 60); do
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && return 0
    sleep 0.5
  done
  die "PostgreSQL did not answer on 127.0.0.1:$PG_PORT within 30 s (see /var/log/postgresql/postgresql-*-$CLUSTER.log)"
}

psql_admin() {
  local bin=$1; shift
  as_postgres "$bin/psql" -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres "$@"
}

start_pg() {
  command -v pg_createcluster >/dev/null 2>&1 && [ -n "$(pg_version)" ] || install_postgres
  local v bin
  v=$(pg_version) || die "no PostgreSQL server found under /usr/lib/postgresql"
  bin=/usr/lib/postgresql/$v/bin
  if ! cluster_exists "$v"; then
    say "creating PostgreSQL $v cluster '$CLUSTER' on port $PG_PORT"
    pg_createcluster "$v" "$CLUSTER" -p "$PG_PORT" --start-conf=manual \
      -o fsync=off -o synchronous_commit=off -o full_page_writes=off -o max_connections=200 >/dev/null \
      || die "pg_createcluster failed (run as root, or as the postgres user)"
    # 127.0.0.1 only (pg_createcluster's -o would write the address unquoted: a syntax error).
    echo "listen_addresses = '127.0.0.1'" | as_postgres tee "/etc/postgresql/$v/$CLUSTER/conf.d/listen.conf" >/dev/null
  fi
  if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
    pg_ctlcluster "$v" "$CLUSTER" start || die "pg_ctlcluster $v $CLUSTER start failed"
  fi
  wait_pg "$bin"
  psql_admin "$bin" <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fmhub') THEN
    CREATE ROLE fmhub LOGIN CREATEDB PASSWORD 'fmhub';
  END IF;
END $$;
SQL
  if [ -z "$(psql_admin "$bin" -tAc "SELECT 1 FROM pg_database WHERE datname = 'fmhub'")" ]; then
    psql_admin "$bin" -c "CREATE DATABASE fmhub OWNER fmhub"
  fi
  say "PostgreSQL $v ready: $PG_URL"
}

moto_answers() {
  "$PY" - "$S3_URL" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=2).read()
PY
}

start_moto() {
  mkdir -p "$OUT"
  if moto_answers; then say "S3 (moto) already answers at $S3_URL"; return 0; fi
  "$PY" -c "import moto.server" 2>/dev/null \
    || die "moto is not installed for $PY: pip install 'moto[server]' (or set FMHUB_TEST_PYTHON)"
  nohup "$PY" -m moto.server -H 127.0.0.1 -p "$S3_PORT" >> "$MOTO_LOG" 2>&1 < /dev/null &
  echo $! > "$MOTO_PID"
  local i
  for i in $(seq 1 60); do
    moto_answers && { say "S3 (moto) ready: $S3_URL (pid $(cat "$MOTO_PID"), log $MOTO_LOG)"; return 0; }
    kill -0 "$(cat "$MOTO_PID")" 2>/dev/null || die "moto_server exited: see $MOTO_LOG"
    sleep 0.5
  done
  die "moto_server did not answer on $S3_URL within 30 s: see $MOTO_LOG"
}

stop_pg() {
  local v
  v=$(pg_version) || return 0
  if cluster_exists "$v"; then
    pg_ctlcluster "$v" "$CLUSTER" stop -m fast 2>/dev/null || true
    say "PostgreSQL cluster '$CLUSTER' stopped"
  fi
}

stop_moto() {
  [ -f "$MOTO_PID" ] || return 0
  local pid i
  pid=$(cat "$MOTO_PID")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$MOTO_PID"
  say "S3 (moto) stopped"
}

ray_bin() {
  local d
  d=$(dirname "$PY")
  if [ -x "$d/ray" ]; then echo "$d/ray"; else command -v ray; fi
}

ray_answers() {
  "$PY" - "$RAY_PORT" <<'PY' >/dev/null 2>&1
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()
PY
}

start_ray() {
  if ray_answers; then say "Ray head already answers at $RAY_ADDRESS_"; return 0; fi
  local ray
  ray=$(ray_bin) || die "ray is not installed for $PY: pip install 'fmhub[ray]'"
  mkdir -p "$OUT"
  (umask 077; "$PY" -c "import secrets; print(secrets.token_hex(32))" > "$RAY_TOKEN")
  # Loopback only: Ray binds to the machine's address unless told otherwise. Token authentication:
  # every client needs the token. No dashboard, no job-submission API. A small object store: the
  # tests move little data.
  # Its processes reach the test S3 server with their own credentials (as every node of a cluster must).
  AWS_ENDPOINT_URL=$S3_URL AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 \
  RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$RAY_TOKEN RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 "$ray" start --head --node-ip-address=127.0.0.1 --port="$RAY_PORT" \
    --include-dashboard=false --num-cpus=4 --object-store-memory=100000000 --disable-usage-stats \
    --ray-client-server-port=$((RAY_PORT + 1)) --temp-dir="$RAY_DIR" >> "$OUT/ray.log" 2>&1 || die "ray start failed: see $OUT/ray.log"
  local i
  for i in $(seq 1 60); do
    ray_answers && { say "Ray head ready: $RAY_ADDRESS_ (log $OUT/ray.log)"; return 0; }
    sleep 0.5
  done
  die "the Ray head did not answer on $RAY_ADDRESS_ within 30 s: see $OUT/ray.log"
}

stop_ray() {
  # The processes of this head only (their command lines name its folder or its address); workers
  # end with them.
  local mine="$RAY_DIR/|--address=$RAY_ADDRESS_ "
  pgrep -f -- "$mine" >/dev/null 2>&1 || return 0
  pkill -TERM -f -- "$mine" 2>/dev/null || true
  local i
  for i in $(seq 1 20); do pgrep -f -- "$mine" >/dev/null 2>&1 || break; sleep 0.5; done
  pkill -KILL -f -- "$mine" 2>/dev/null || true
  rm -f "$RAY_TOKEN"
  say "Ray head stopped"
}

print_env() {
  echo "export FMHUB_TEST_POSTGRES_URL=$PG_URL"
  echo "export FMHUB_TEST_S3_ENDPOINT_URL=$S3_URL"
  echo "export FMHUB_TEST_RAY_ADDRESS=$RAY_ADDRESS_ RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$RAY_TOKEN FMHUB_TEST_RAY_S3=1"
}

case "${1:-}" in
  start) start_pg; start_moto; start_ray ;;
  stop) stop_ray; stop_moto; stop_pg ;;
  env) print_env ;;
  status)
    v=$(pg_version || true)
    if [ -n "$v" ] && "/usr/lib/postgresql/$v/bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
      echo "postgres: up ($PG_URL)"; else echo "postgres: down"; fi
    if moto_answers; then echo "s3: up ($S3_URL)"; else echo "s3: down"; fi
    if ray_answers; then echo "ray: up ($RAY_ADDRESS_)"; else echo "ray: down"; fi ;;
  *) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
