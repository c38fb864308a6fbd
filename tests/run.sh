#!/usr/bin/env bash
# The one test command (README, CI): installs what the tests need, then lints, type-checks and tests.
# Usage: bash tests/run.sh [pytest arguments...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export PIP_DISABLE_PIP_VERSION_CHECK=1
step() { printf '\n==> %s\n' "$*"; }

# Run a command as root: directly when we are root, else through sudo if it works without a password.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

# Run quietly, but show everything the command said if it fails.
quiet() {
    local out
    out="$(mktemp)"
    if ! "$@" >"$out" 2>&1; then
        cat "$out" >&2
        rm -f "$out"
        return 1
    fi
    rm -f "$out"
}

# The tests start their own mosquitto processes; they need only the binary, not the system service.
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
    step "installing mosquitto with apt-get"
    if ! as_root true; then
        echo "mosquitto is missing and this user cannot install it: run 'apt-get install mosquitto' as root" >&2
        exit 1
    fi
    quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mosquitto
fi

# The fleet web's browser tests drive Debian's headless Chromium through its chromedriver (nothing is
# downloaded at run time).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    step "installing chromium and chromium-driver with apt-get"
    if ! as_root true; then
        echo "chromium is missing and this user cannot install it: run 'apt-get install chromium chromium-driver' as root" >&2
        exit 1
    fi
    quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver
fi

# The fleet store's tests run on SQLite and on a real PostgreSQL: the server at 127.0.0.1:5432 if one
# answers (or $HYMY_TEST_PG), else a throw-away cluster they start from the installed binaries.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "${HYMY_TEST_PG:-}" ]; then
    step "installing postgresql with apt-get"
    if ! as_root true; then
        echo "PostgreSQL is missing and this user cannot install it: run 'apt-get install postgresql' as root" >&2
        exit 1
    fi
    quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
fi

if [ ! -x .venv/bin/python ]; then
    step "creating .venv"
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
        echo "Python 3.11 or newer is needed; python3 is $(python3 --version 2>&1)" >&2
        exit 1
    }
    python3 -m venv .venv
fi

# Reinstall only when pyproject.toml changed since the last install, to keep repeated runs quick.
stamp=.venv/.hymy-test-install
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    step "installing hymy and its test tools into .venv"
    quiet .venv/bin/python -m pip install -e '.[test]'
    echo "$want" >"$stamp"
fi

failed=()
step "ruff check"
.venv/bin/ruff check . || failed+=("ruff check")
step "ruff format --check"
.venv/bin/ruff format --check . || failed+=("ruff format")
step "mypy"
.venv/bin/mypy || failed+=("mypy")

step "pytest"
pytest_rc=0
.venv/bin/python -m pytest "$@" || pytest_rc=$?

if [ "${#failed[@]}" -gt 0 ]; then
    printf '\nFailed: %s\n' "${failed[*]}" >&2
    [ "$pytest_rc" -ne 0 ] && exit "$pytest_rc"
    exit 1
fi
exit "$pytest_rc"
