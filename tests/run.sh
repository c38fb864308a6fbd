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

# The image recipe's tests (tests/images/) run shellcheck over every script under images/ and check
# the terminal's firewall with nft's own parser.
if ! command -v shellcheck >/dev/null 2>&1 || { ! command -v nft >/dev/null 2>&1 && [ ! -x /usr/sbin/nft ]; }; then
    step "installing shellcheck and nftables with apt-get"
    if ! as_root true; then
        echo "shellcheck or nft is missing and this user cannot install them: run 'apt-get install shellcheck nftables' as root" >&2
        exit 1
    fi
    quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends shellcheck nftables
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

# Install hymy and its test tools into a venv; again only when pyproject.toml changed since the last
# install, to keep repeated runs quick.
install_into() {
    local venv="$1" stamp="$1/.hymy-test-install" want
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
        step "installing hymy and its test tools into $venv"
        quiet "$venv/bin/python" -m pip install -e '.[test]'
        echo "$want" >"$stamp"
    fi
}
install_into .venv

# The suite runs on Python 3.13 too (Raspberry Pi OS Trixie's), in .venv-3.13, when this machine has a
# python3.13 that runs (a pyenv shim may exist without one); HYMY_TEST_PY313=0 leaves it out.
find_python313() {
    local candidate
    for candidate in python3.13 /usr/bin/python3.13 /usr/local/bin/python3.13 "${PYENV_ROOT:-${HOME:-/root}/.pyenv}"/versions/3.13*/bin/python3.13; do
        if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}
py313=""
if [ "${HYMY_TEST_PY313:-1}" != 0 ] && py313="$(find_python313)"; then
    if [ ! -x .venv-3.13/bin/python ]; then
        step "creating .venv-3.13 with $py313"
        "$py313" -m venv .venv-3.13
    fi
    install_into .venv-3.13
fi

version() { "$1" -c 'import platform; print(platform.python_version())'; }

# The 3.13 pass runs the whole suite beside everything below: the suite mostly waits (on brokers,
# processes, a browser), about half a core of two, so the two passes together take little longer
# than one. Its output, kept in a file, follows the 3.11 pass's; its pytest cache is its own.
pid313=""
if [ -n "$py313" ]; then
    log313="$(mktemp)"
    .venv-3.13/bin/python -m pytest -o cache_dir=.pytest_cache-3.13 "$@" </dev/null >"$log313" 2>&1 &
    pid313=$!
    trap 'kill "$pid313" 2>/dev/null || true; rm -f "$log313"' EXIT
    step "pytest on Python $(version .venv-3.13/bin/python) started in the background (.venv-3.13)"
fi

failed=()
step "ruff check"
.venv/bin/ruff check . || failed+=("ruff check")
step "ruff format --check"
.venv/bin/ruff format --check . || failed+=("ruff format")
step "mypy"
.venv/bin/mypy || failed+=("mypy")

step "pytest on Python $(version .venv/bin/python) (.venv)"
pytest_rc=0
.venv/bin/python -m pytest "$@" || pytest_rc=$?

if [ -n "$pid313" ]; then
    rc313=0
    wait "$pid313" || rc313=$?
    step "pytest on Python $(version .venv-3.13/bin/python) (.venv-3.13), run beside the pass above"
    cat "$log313"
    [ "$pytest_rc" -eq 0 ] && pytest_rc=$rc313
fi

if [ "${#failed[@]}" -gt 0 ]; then
    printf '\nFailed: %s\n' "${failed[*]}" >&2
    [ "$pytest_rc" -ne 0 ] && exit "$pytest_rc"
    exit 1
fi
exit "$pytest_rc"
