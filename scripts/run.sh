#!/usr/bin/env bash
# Bookkeeping Desk: set up (scripts/setup.sh), then start the server in the foreground.
#
#   HOST=0.0.0.0 PORT=8000 ARGS=--no-demo scripts/run.sh
#
# run.py applies the migrations, seeds the demo data on first start and prints the URLs and
# the demo logins. Extra arguments are passed to run.py as well.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

# shellcheck disable=SC2086  # ARGS is a list of words on purpose
exec .venv/bin/python run.py --host "${HOST:-127.0.0.1}" --port "${PORT:-5000}" ${ARGS:-} "$@"
