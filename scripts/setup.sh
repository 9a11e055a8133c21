#!/usr/bin/env bash
# Bookkeeping Desk: everything a fresh Debian machine needs before `run.py` or the tests.
#
#   scripts/setup.sh          system packages, .venv, the package with its dev extras,
#                             compiled translations
#   scripts/setup.sh --test   the same, plus the Debian packages the test suite uses
#
# Every step checks first and does nothing when it is already done, so a second run takes
# a second or two. Environment: PYTHON (interpreter used to create .venv; default python3.11,
# else python3 when that is 3.11).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

FOR_TESTS=0
for arg in "$@"; do
    case "$arg" in
        --test) FOR_TESTS=1 ;;
        *) echo "usage: scripts/setup.sh [--test]" >&2; exit 2 ;;
    esac
done

VENV=.venv
STAMP="$VENV/.installed-pyproject.sha256"

say() { printf '==> %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

# --- Debian packages ---------------------------------------------------------------------
APT_UPDATED=0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 && SUDO="sudo"
fi

deb_installed() { dpkg -s "$1" >/dev/null 2>&1; }

# apt_install PKG...: install the given Debian packages (callers check what is missing first).
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "missing $*, and apt-get is not available to install it"
    export DEBIAN_FRONTEND=noninteractive
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        $SUDO apt-get update -qq
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

is_py311() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' >/dev/null 2>&1; }

find_python() {
    local candidate
    for candidate in ${PYTHON:-} python3.11 python3 /usr/bin/python3.11 /usr/bin/python3; do
        if command -v "$candidate" >/dev/null 2>&1 && is_py311 "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# --- Python 3.11 and venv support ----------------------------------------------------------
if [ ! -x "$VENV/bin/python" ] || ! is_py311 "$VENV/bin/python"; then
    if ! PY=$(find_python); then
        # Debian 12 (bookworm) ships Python 3.11 as python3.
        apt_install python3 python3-venv
        PY=$(find_python) || die "Python 3.11 is required (Debian 12's python3, or set PYTHON=/path/to/python3.11)"
    fi
    if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        case "$PY" in
            /usr/bin/*) apt_install python3-venv python3.11-venv ;;
            *) die "$PY cannot create virtual environments (no ensurepip)" ;;
        esac
    fi
    if [ -d "$VENV" ]; then
        say "removing $VENV (not a Python 3.11 environment)"
        rm -rf "$VENV"
    fi
    say "creating $VENV with $PY ($("$PY" --version 2>&1))"
    "$PY" -m venv "$VENV"
fi

# --- the package and its dev extras (again only when pyproject.toml changed) ---------------
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
have=$(cat "$STAMP" 2>/dev/null || true)
if [ "$want" != "$have" ] \
    || ! "$VENV/bin/python" -c 'import importlib.metadata as m; m.version("bookkeeping-desk")' >/dev/null 2>&1; then
    say "installing the package with its dev extras into $VENV (pip install -e '.[dev]')"
    # (the filter drops pip's notes about configured package folders that do not exist)
    set +e
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -e '.[dev]' 2>&1 \
        | { grep -v -E "^WARNING: Location '.*' is ignored: it is neither a file nor a directory\.$" || true; }
    rc=${PIPESTATUS[0]}
    set -e
    [ "$rc" -eq 0 ] || die "pip install -e '.[dev]' failed (exit $rc)"
    printf '%s\n' "$want" > "$STAMP"
else
    say "$VENV is up to date with pyproject.toml"
fi

# --- WeasyPrint's runtime libraries (the PDF reports): Pango and its FreeType backend --------
pdf_packages=()
for pkg in libpango-1.0-0 libpangoft2-1.0-0; do
    deb_installed "$pkg" || pdf_packages+=("$pkg")
done
if [ "${#pdf_packages[@]}" -gt 0 ]; then
    apt_install "${pdf_packages[@]}"
fi

# --- the test suite's Debian packages ------------------------------------------------------
if [ "$FOR_TESTS" -eq 1 ]; then
    # pg_dump / pg_restore: the PostgreSQL backup and restore tests.
    if ! command -v pg_dump >/dev/null 2>&1 || ! command -v pg_restore >/dev/null 2>&1; then
        apt_install postgresql-client
    fi
    # Debian's Chromium for the browser tests (tests/e2e drive /usr/bin/chromium; nothing is
    # downloaded by playwright), and the Noto CJK fonts so Chinese text renders (also what the PDFs use).
    browser_packages=()
    [ -x /usr/bin/chromium ] || browser_packages+=(chromium)
    deb_installed fonts-noto-cjk || browser_packages+=(fonts-noto-cjk)
    if [ "${#browser_packages[@]}" -gt 0 ]; then
        apt_install "${browser_packages[@]}"
    fi
    # pdftoppm (poppler-utils): the PDF tests render every document to PNG; wkhtmltopdf: the
    # comparison renderer of benchmarks/pdf_bench.py.
    test_tools=()
    command -v pdftoppm >/dev/null 2>&1 || test_tools+=(poppler-utils)
    command -v wkhtmltopdf >/dev/null 2>&1 || test_tools+=(wkhtmltopdf)
    # nginx: the cluster test puts two servers behind it (scripts/cluster.sh, tests/test_cluster.py).
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || test_tools+=(nginx)
    if [ "${#test_tools[@]}" -gt 0 ]; then
        apt_install "${test_tools[@]}"
    fi
fi

# --- front end -------------------------------------------------------------------------------
# NPM HOOK (chat widget): the widget's Socket.IO client comes from npm (package.json,
# package-lock.json); `npm ci` runs when node_modules is missing or older than the lock file.
if [ -f package-lock.json ]; then
    if ! command -v npm >/dev/null 2>&1; then
        apt_install nodejs npm
    fi
    if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        say "npm ci (the chat widget's Socket.IO client)"
        npm ci --no-audit --no-fund --loglevel=error
    else
        say "node_modules is up to date with package-lock.json"
    fi
fi

# --- translations ------------------------------------------------------------------------------
"$VENV/bin/python" -c "from app.services.i18n import ensure_compiled; ensure_compiled()"

# --- bytecode ------------------------------------------------------------------------------------
# The server's own modules compiled ahead (only those changed since): otherwise every start where
# PYTHONDONTWRITEBYTECODE is set compiles them again, a sixth of a second of CPU.
"$VENV/bin/python" -m compileall -q app reports migrations run.py >/dev/null \
    || say "bytecode not written (read-only checkout?); the server compiles its modules at each start"
say "set-up complete"
