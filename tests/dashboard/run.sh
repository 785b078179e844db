#!/usr/bin/env bash
# The admin dashboard (`GET /admin`, docs/DASHBOARD.md) in headless Chromium: seeds a store with
# `collector demo`, starts `collector serve` on a free port with a temp data folder and a random
# JWT secret, mints an admin token (and a plain user's, for the 403 message), and runs
# tests/dashboard/test_dashboard.py (selenium driving Debian's chromium through
# /usr/bin/chromedriver; nothing downloads a browser). Screenshots: target/dashboard-screenshots/.
#
# Needs the binary: COLLECTOR_BIN, default $CARGO_TARGET_DIR/release/collector (CARGO_TARGET_DIR
# defaults to ~/.cache/collector-target; build it with `cargo build --release -p collector-cli`).
# Installs what is missing: the apt packages chromium and chromium-driver, and a venv
# (~/.cache/collector-dashboard-venv) with tests/dashboard/requirements.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/collector-target}
BIN=${COLLECTOR_BIN:-$CARGO_TARGET_DIR/release/collector}
if [ ! -x "$BIN" ]; then
    echo "dashboard: no collector binary at $BIN (cargo build --release -p collector-cli, or set COLLECTOR_BIN)" >&2
    exit 1
fi

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "dashboard: installing ${missing[*]} (apt)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

VENV=${DASHBOARD_VENV:-$HOME/.cache/collector-dashboard-venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
if ! "$VENV/bin/python" -c 'import selenium, pytest' 2>/dev/null; then
    "$VENV/bin/pip" install -q -r "$ROOT/tests/dashboard/requirements.txt"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/collector-dashboard.XXXXXX")
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

export COLLECTOR_DATA_DIR="$WORK/data"
COLLECTOR_JWT_SECRET=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(32))')
export COLLECTOR_JWT_SECRET
"$BIN" demo --count 200 >"$WORK/demo.log" 2>&1 || { cat "$WORK/demo.log" >&2; exit 1; }

PORT=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
"$BIN" serve --addr "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    if "$VENV/bin/python" -c "import urllib.request, sys; urllib.request.urlopen('$BASE/api/health', timeout=1)" 2>/dev/null; then
        break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "dashboard: collector serve exited" >&2; cat "$WORK/serve.log" >&2; exit 1; }
    sleep 0.2
done

export DASHBOARD_BASE_URL="$BASE"
DASHBOARD_ADMIN_TOKEN=$("$BIN" token --sub dash-admin --group admin --ttl 1h)
DASHBOARD_USER_TOKEN=$("$BIN" token --sub dash-user --ttl 1h)
export DASHBOARD_ADMIN_TOKEN DASHBOARD_USER_TOKEN
export DASHBOARD_SCREENSHOTS="${DASHBOARD_SCREENSHOTS:-$ROOT/target/dashboard-screenshots}"
export DASHBOARD_DOWNLOADS="$WORK/downloads"
mkdir -p "$DASHBOARD_SCREENSHOTS" "$DASHBOARD_DOWNLOADS"
# Selenium Manager stays offline: the driver and browser paths are given explicitly.
export SE_OFFLINE=true

set +e
"$VENV/bin/python" -m pytest -v -p no:cacheprovider "$ROOT/tests/dashboard/test_dashboard.py" "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "dashboard: pytest collected no tests" >&2
    status=1
fi
if [ "$status" -ne 0 ]; then
    echo "--- collector serve log (tail)" >&2
    tail -n 40 "$WORK/serve.log" >&2 || true
fi
echo "dashboard: screenshots in $DASHBOARD_SCREENSHOTS"
exit "$status"
