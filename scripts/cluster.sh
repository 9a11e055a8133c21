#!/usr/bin/env bash
# Bookkeeping Desk as a local cluster: N server processes behind nginx, sharing PostgreSQL and Redis.
#
#   make cluster N=2                  (or: N=3 bash scripts/cluster.sh)
#
# What it starts, all in the foreground until Ctrl-C (which stops every part):
#   - N servers (run.py) on consecutive ports from BASE_PORT (default 5100), each with
#     DATABASE_URL, REDIS_URL and SOCKETIO_MESSAGE_QUEUE, one instance folder (one secret key and
#     one field-encryption key for all) and TRUSTED_PROXIES=1 (nginx sets X-Forwarded-*);
#     the first one applies the migrations and seeds the demo data, the others start after it;
#   - RQ_WORKERS RQ workers for the background PDF jobs (default 1; `python -m reports.worker rq`);
#   - nginx from Debian on PROXY_PORT (default 8080), installed with apt-get when missing: the
#     servers as one upstream with sticky sessions by client address (ip_hash: Socket.IO's
#     long-polling requests of one client must reach the process that holds its session) and the
#     WebSocket upgrade passed through.
#
# Settings (environment): N, BASE_PORT, PROXY_PORT, HOST (default 127.0.0.1), RQ_WORKERS,
# DATABASE_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/bookkeeping_cluster, created
# when missing), REDIS_URL (default redis://127.0.0.1:6379/0), CLUSTER_DIR (default
# instance/cluster: the instance folder, the nginx configuration and every process's log).
# docs/deploy.md explains the same set-up for a real deployment (TLS, a process manager, backups).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"

N="${N:-2}"
BASE_PORT="${BASE_PORT:-5100}"
PROXY_PORT="${PROXY_PORT:-8080}"
HOST="${HOST:-127.0.0.1}"
RQ_WORKERS="${RQ_WORKERS:-1}"
DATABASE_URL="${DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/bookkeeping_cluster}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
CLUSTER_DIR="${CLUSTER_DIR:-$ROOT/instance/cluster}"
START_SECONDS="${START_SECONDS:-120}"

say() { printf '==> %s\n' "$*"; }
die() { printf 'cluster: %s\n' "$*" >&2; exit 1; }

[[ "$N" =~ ^[1-9][0-9]?$ ]] || die "N must be a number of processes from 1 to 99 (got '$N')"
for port in "$BASE_PORT" "$PROXY_PORT"; do
    [[ "$port" =~ ^[0-9]+$ ]] && (( port > 0 && port < 65536 )) || die "not a port: '$port'"
done
(( BASE_PORT + N - 1 < 65536 )) || die "ports $BASE_PORT..$((BASE_PORT + N - 1)) do not fit"
(( PROXY_PORT < BASE_PORT || PROXY_PORT >= BASE_PORT + N )) || die "PROXY_PORT is one of the servers' ports"
[[ "$RQ_WORKERS" =~ ^[0-9]+$ ]] || die "RQ_WORKERS must be a number (got '$RQ_WORKERS')"
case "$DATABASE_URL" in
    postgresql*) ;;
    *) die "DATABASE_URL must be PostgreSQL: several processes share the database (got '${DATABASE_URL%%:*}:…')" ;;
esac

bash scripts/setup.sh
PY="$ROOT/.venv/bin/python"

if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
    command -v apt-get >/dev/null 2>&1 || die "nginx is missing and apt-get is not available to install it"
    SUDO=""
    [[ "$(id -u)" == 0 ]] || SUDO="sudo"
    say "apt-get install nginx"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

say "checking PostgreSQL and Redis"
"$PY" - "$DATABASE_URL" "$REDIS_URL" <<'PYEOF' || die "PostgreSQL or Redis is not reachable (see above)"
import sys

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

url = make_url(sys.argv[1])
admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
try:
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}):
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
            print(f"created the database {url.database}")
except Exception as exc:  # noqa: BLE001 - one line for the operator
    sys.exit(f"PostgreSQL at {url.host}:{url.port or 5432}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
try:
    redis.Redis.from_url(sys.argv[2], socket_connect_timeout=5).ping()
except Exception as exc:  # noqa: BLE001
    sys.exit(f"Redis at {sys.argv[2]}: {exc}")
PYEOF

mkdir -p "$CLUSTER_DIR/logs" "$CLUSTER_DIR/nginx"
PIDS=()
stop_all() {
    trap - EXIT INT TERM
    say "stopping the cluster"
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop_all EXIT
trap 'exit 130' INT TERM

export DATABASE_URL REDIS_URL SOCKETIO_MESSAGE_QUEUE="$REDIS_URL" INSTANCE_PATH="$CLUSTER_DIR/instance"
export TRUSTED_PROXIES=1 DESK_URL="${DESK_URL:-http://$HOST:$PROXY_PORT}"

wait_ready() {  # wait_ready URL PID LOG
    local deadline=$((SECONDS + START_SECONDS))
    until curl -fs -o /dev/null "$1/health"; do
        kill -0 "$2" 2>/dev/null || { tail -n 20 "$3" >&2; die "the process behind $1 stopped (log: $3)"; }
        (( SECONDS < deadline )) || die "$1 did not answer within $START_SECONDS s (log: $3)"
        sleep 0.2
    done
}

start_server() {  # start_server INDEX [run.py arguments...]
    local i="$1"; shift
    local port=$((BASE_PORT + i)) log="$CLUSTER_DIR/logs/server-$i.log"
    "$PY" run.py --host "$HOST" --port "$port" "$@" >"$log" 2>&1 &
    PIDS+=("$!")
    SERVER_PIDS[i]=$!
}

declare -a SERVER_PIDS
say "server 0 on port $BASE_PORT (migrations and demo data)"
start_server 0
wait_ready "http://$HOST:$BASE_PORT" "${SERVER_PIDS[0]}" "$CLUSTER_DIR/logs/server-0.log"
for ((i = 1; i < N; i++)); do
    say "server $i on port $((BASE_PORT + i))"
    DEMO_HOST_PORT=0 start_server "$i" --no-demo
done
for ((i = 1; i < N; i++)); do
    wait_ready "http://$HOST:$((BASE_PORT + i))" "${SERVER_PIDS[i]}" "$CLUSTER_DIR/logs/server-$i.log"
done

for ((i = 0; i < RQ_WORKERS; i++)); do
    "$PY" -m reports.worker rq >"$CLUSTER_DIR/logs/rq-$i.log" 2>&1 &
    PIDS+=("$!")
done

CONF="$CLUSTER_DIR/nginx/nginx.conf"
{
    cat <<EOF
# Written by scripts/cluster.sh: $N servers behind one address.
worker_processes 1;
pid $CLUSTER_DIR/nginx/nginx.pid;
error_log $CLUSTER_DIR/logs/nginx-error.log warn;
events { worker_connections 4096; }
http {
    log_format upstream '\$remote_addr [\$time_local] "\$request" \$status \$body_bytes_sent '
                        'upstream=\$upstream_addr \$upstream_response_time s';
    access_log $CLUSTER_DIR/logs/nginx-access.log upstream;
    client_body_temp_path $CLUSTER_DIR/nginx/body;
    proxy_temp_path $CLUSTER_DIR/nginx/proxy;
    fastcgi_temp_path $CLUSTER_DIR/nginx/fastcgi;
    uwsgi_temp_path $CLUSTER_DIR/nginx/uwsgi;
    scgi_temp_path $CLUSTER_DIR/nginx/scgi;
    client_max_body_size 25m;
    map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
    upstream desk {
        ip_hash;
EOF
    for ((i = 0; i < N; i++)); do
        echo "        server $HOST:$((BASE_PORT + i)) max_fails=1 fail_timeout=5s;"
    done
    cat <<EOF
    }
    server {
        listen $HOST:$PROXY_PORT;
        location / {
            proxy_pass http://desk;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_read_timeout 120s;
            proxy_buffering off;
        }
    }
}
EOF
} >"$CONF"
"$NGINX" -t -q -p "$CLUSTER_DIR/nginx" -c "$CONF" -g 'daemon off;' || die "nginx refused $CONF"
"$NGINX" -p "$CLUSTER_DIR/nginx" -c "$CONF" -g 'daemon off;' &
PIDS+=("$!")
deadline=$((SECONDS + 20))
until curl -fs -o /dev/null "http://$HOST:$PROXY_PORT/health"; do
    (( SECONDS < deadline )) || die "nginx did not answer on port $PROXY_PORT (log: $CLUSTER_DIR/logs/nginx-error.log)"
    sleep 0.2
done

echo
echo "Bookkeeping Desk cluster: $N servers, $RQ_WORKERS RQ worker(s), nginx in front"
echo "  through the proxy:  http://$HOST:$PROXY_PORT/   (health: http://$HOST:$PROXY_PORT/health)"
for ((i = 0; i < N; i++)); do
    echo "  server $i directly: http://$HOST:$((BASE_PORT + i))/"
done
echo "  demo logins and the demo website: see $CLUSTER_DIR/logs/server-0.log"
echo "  logs: $CLUSTER_DIR/logs/   Ctrl-C stops everything"
wait -n "${PIDS[@]}" || true
die "a process of the cluster stopped; see $CLUSTER_DIR/logs/"
