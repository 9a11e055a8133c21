#!/usr/bin/env bash
# Bookkeeping Desk: lint and the whole test suite, twice.
#
#   1. ruff check .
#   2. pytest on SQLite
#   3. pytest on PostgreSQL + Redis (TEST_DATABASE_URL, TEST_REDIS_URL; defaults below)
#
# Steps 2 and 3 use separate databases and run side by side, each in TEST_WORKERS pytest-xdist
# workers (default 2; 1 runs it in one process), whole test files to a worker; each one's output is
# shown when it ends.
# Step 3 needs both servers. When one is unreachable the run is skipped with a message, except
# when CI is set: then it is an error. Every step runs; the script fails if any of them failed.
# Extra arguments go to both pytest runs (e.g. `scripts/test.sh -k contracts -x`). Warnings are
# counted on the summary line but not listed; run pytest directly to see them. Each run lists its
# slowest tests (up to 15 over 5 s each), where the suite's time goes.
# Run scripts/setup.sh --test first (`make test` does).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PG_URL="${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
REDIS_URL_T="${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"
PY=.venv/bin/python
WORKERS="${TEST_WORKERS:-2}"
[ -x "$PY" ] || { echo "test: .venv is missing; run scripts/setup.sh --test (or make test)" >&2; exit 1; }

is_ci() { case "${CI:-}" in ""|0|false|False|FALSE|no) return 1 ;; *) return 0 ;; esac; }

LOG_DIR=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; rm -rf "$LOG_DIR"' EXIT
FAILED=()
PASSED_TOTAL=0
FAILED_TOTAL=0
SKIPPED_TOTAL=0

banner() { printf '\n==> %s\n' "$*"; }

# count WORD FILE: the number before WORD on pytest's last summary line (0 when absent).
count() {
    local line
    line=$(grep -E '[0-9]+ (passed|failed|errors?|skipped|deselected)' "$2" | tail -n 1)
    printf '%s' "$line" | grep -oE "[0-9]+ $1" | head -n 1 | cut -d' ' -f1 | grep . || echo 0
}

# start_pytest NAME [ENV=VALUE...] -- [pytest args...]: start a pytest run in the background,
# its output going to $LOG_DIR/NAME.log (the runs are independent, so they overlap in time).
NAMES=()
start_pytest() {
    local name=$1; shift
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    # Each run gets a temp folder of its own: pytest's default one keeps only the newest three
    # runs of the user, so runs side by side (or another suite) could delete each other's.
    local parallel=()
    if [ "$WORKERS" -gt 1 ] 2>/dev/null; then parallel=(-n "$WORKERS" --dist loadfile); fi
    env -u TEST_DATABASE_URL -u TEST_REDIS_URL ASYNC_MODE=threading "${envs[@]}" \
        "$PY" -m pytest tests -q --disable-warnings --durations=15 --durations-min=5 \
        --basetemp="$LOG_DIR/$name-tmp" "${parallel[@]}" "$@" \
        > "$LOG_DIR/$name.log" 2>&1 &
    PIDS+=($!)
    NAMES+=("$name")
    echo "started pytest on $name (output follows when it ends)"
}

# finish_pytest INDEX: wait for a run, show its output and count its results.
finish_pytest() {
    local name=${NAMES[$1]} rc=0
    wait "${PIDS[$1]}" || rc=$?
    local log="$LOG_DIR/$name.log"
    banner "pytest on $name"
    cat "$log"
    local passed failed errors skipped
    passed=$(count passed "$log"); failed=$(count failed "$log")
    errors=$(count 'errors?' "$log"); skipped=$(count skipped "$log")
    PASSED_TOTAL=$((PASSED_TOTAL + passed))
    FAILED_TOTAL=$((FAILED_TOTAL + failed + errors))
    SKIPPED_TOTAL=$((SKIPPED_TOTAL + skipped))
    if [ "$rc" -eq 5 ]; then
        echo "test: $name: pytest collected no tests" >&2
        FAILED+=("$name (no tests)")
    elif [ "$rc" -ne 0 ]; then
        FAILED+=("$name (pytest exit $rc)")
    fi
}

# --- 1. lint ---------------------------------------------------------------------------------
banner "ruff check ."
if .venv/bin/ruff check .; then :; else FAILED+=("ruff"); fi

# --- 2. SQLite -------------------------------------------------------------------------------
banner "pytest on SQLite and on PostgreSQL + Redis, side by side"
start_pytest sqlite -- "$@"

# --- 3. PostgreSQL + Redis ---------------------------------------------------------------------
if problem=$(PG_URL="$PG_URL" REDIS_URL_T="$REDIS_URL_T" "$PY" - <<'EOF' 2>&1
import os
import sys

problems = []
try:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(os.environ["PG_URL"]).set(drivername="postgresql")
    psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=3).close()
except Exception as exc:  # noqa: BLE001
    problems.append(f"PostgreSQL at {os.environ['PG_URL']} unreachable ({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})")
try:
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL_T"], socket_connect_timeout=3, socket_timeout=3).ping()
except Exception as exc:  # noqa: BLE001
    problems.append(f"Redis at {os.environ['REDIS_URL_T']} unreachable ({exc})")
print("; ".join(problems))
sys.exit(1 if problems else 0)
EOF
); then
    echo "PostgreSQL at $PG_URL, Redis at $REDIS_URL_T"
    start_pytest postgres "TEST_DATABASE_URL=$PG_URL" "TEST_REDIS_URL=$REDIS_URL_T" -- "$@"
elif is_ci; then
    echo "test: CI requires the PostgreSQL + Redis run, but: $problem" >&2
    echo "test: start both servers or point TEST_DATABASE_URL / TEST_REDIS_URL at reachable ones" >&2
    FAILED+=("postgres (unreachable)")
else
    echo "skipping PostgreSQL+Redis run: $problem"
    echo "(set TEST_DATABASE_URL / TEST_REDIS_URL to use other servers; in CI this run is mandatory)"
fi

for index in "${!PIDS[@]}"; do
    finish_pytest "$index"
done

# --- summary -----------------------------------------------------------------------------------
echo
if [ "${#FAILED[@]}" -gt 0 ]; then
    echo "FAILED: ${FAILED[*]}"
    echo "total: $PASSED_TOTAL passed, $FAILED_TOTAL failed, $SKIPPED_TOTAL skipped"
    exit 1
fi
echo "all checks passed"
echo "total: $PASSED_TOTAL passed, $FAILED_TOTAL failed, $SKIPPED_TOTAL skipped"
