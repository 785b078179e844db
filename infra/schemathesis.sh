#!/usr/bin/env bash
# schemathesis (an OpenAPI fuzzer, installed by infra/tools.sh) against `collector serve`: it
# reads /openapi.json and checks that the API answers as documented (every check, every
# phase: the documents' examples, boundary values, random fuzzing and stateful sequences
# that follow the responses' ids), once with an admin token and once with a user's.
# Each role gets its own server on a free port and a fresh data folder. Exits non-zero on any
# failure; the reports (JUnit, and the server logs) are left in the printed folder.
#
#   bash infra/schemathesis.sh [path/to/collector]   # default: the release binary
#
# Bounded: SCHEMATHESIS_MAX_EXAMPLES cases per operation and phase (default 25), and each role's
# run is stopped (and fails) past SCHEMATHESIS_TIMEOUT seconds (default 150). SCHEMATHESIS_MAX_TIME
# instead fuzzes for that many seconds per role, cycling the phases until it is spent (a longer
# local hunt). SCHEMATHESIS_SEED replays a run (default: a fixed seed, so CI is repeatable;
# `random` for a new one each time).
# The few checks that the contract overrules for one operation are in infra/schemathesis.toml,
# each with its reason.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/collector-target}/release/collector}"
[ -x "$BIN" ] || { echo "no collector binary at $BIN (cargo build --release -p collector-cli)" >&2; exit 1; }
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
VENV_BIN="$(bash infra/tools.sh)"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-25}"
MAX_TIME="${SCHEMATHESIS_MAX_TIME:-}"
TIMEOUT="${SCHEMATHESIS_TIMEOUT:-150}"
SEED="${SCHEMATHESIS_SEED:-20261201}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/collector-schemathesis.XXXXXX")"
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# One role's run: its own server, data folder and token.
run_as() {
  local role="$1" group="$2"
  local dir="$WORK/$role" port
  mkdir -p "$dir"
  port="$(free_port)"
  # MAX_PLATFORMS equal to the configured PLATFORMS: the fuzzer cannot add platforms, so the
  # document's list of known platforms (KnownPlatform) stays exactly what the server accepts.
  # (Adding one is covered by tests/platforms.rs; here POST /api/platforms answers 200 or 409.)
  export COLLECTOR_DATA_DIR="$dir/data" COLLECTOR_JWT_SECRET="schemathesis-$RANDOM-$RANDOM-$$" \
    COLLECTOR_ARCHIVE_AT=off PLATFORMS=n8n,zapier,make MAX_PLATFORMS=3 RUST_LOG=warn
  "$BIN" serve --addr "127.0.0.1:$port" >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  local base="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    curl -fsS "$base/api/health" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "collector serve exited; its log:" >&2; cat "$dir/server.log" >&2; exit 1; }
    sleep 0.1
  done
  local token
  if [ -n "$group" ]; then
    token="$("$BIN" token --sub "schemathesis-$role" --group "$group" --ttl 1h)"
  else
    token="$("$BIN" token --sub "schemathesis-$role" --ttl 1h)"
  fi
  local extra=()
  [ "$SEED" = random ] || extra+=(--seed "$SEED")
  [ -z "$MAX_TIME" ] || extra+=(--max-time "$MAX_TIME")
  echo "== schemathesis as $role ($base; at most $MAX_EXAMPLES examples per operation and phase)"
  local rc
  set +e
  # From the role's folder: schemathesis keeps a cache (.schemathesis/) where it runs.
  (cd "$dir" && timeout "$((TIMEOUT + ${MAX_TIME:-0}))" "$VENV_BIN/schemathesis" --no-color --config-file "$ROOT/infra/schemathesis.toml" \
    run "$base/openapi.json" \
    -H "Authorization: Bearer $token" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$MAX_EXAMPLES" \
    --workers 2 \
    --request-timeout 30 \
    --report junit --report-dir "$dir/report" \
    "${extra[@]}") 2>&1 | tee "$dir/schemathesis.log"
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" -ne 124 ] || echo "schemathesis as $role: stopped after ${TIMEOUT}s" >&2
  # The server must still be up, and must not have logged a panic.
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "collector serve died during the $role run; its log: $dir/server.log" >&2
    rc=1
  elif grep -q "panicked" "$dir/server.log"; then
    echo "collector serve logged a panic during the $role run: $dir/server.log" >&2
    rc=1
  fi
  stop_server
  return "$rc"
}

# Whether a role's failed run only hit errors of the tool itself (schemathesis reports them under
# ERRORS as "Runtime Error": e.g. CPython 3.11's "AST constructor recursion depth mismatch" inside
# hypothesis, or a KeyError in its lambda-source cache), with no failed check: that says nothing
# about the API, so the role runs again, on a fresh server and folder, up to TOOL_ERROR_RUNS times
# in all (two runs in a row have hit such errors). A failed check (FAILURES) is never retried.
TOOL_ERROR_RUNS=3
tool_errors_only() {
  local log="$WORK/$1/schemathesis.log"
  grep -q "= ERRORS =" "$log" && grep -q "Runtime Error" "$log" && ! grep -q "= FAILURES =" "$log"
}
run_role() {
  local role="$1" group="$2" name="$1" attempt=1
  until run_as "$name" "$group"; do
    tool_errors_only "$name" || return 1
    [ "$attempt" -lt "$TOOL_ERROR_RUNS" ] || return 1
    attempt=$((attempt + 1))
    echo "schemathesis as $role: only errors of the tool itself (no failed check); run $attempt of $TOOL_ERROR_RUNS" >&2
    name="$role-run$attempt"
  done
}

failed=0
run_role admin admin || failed=1
run_role user "" || failed=1
if [ "$failed" -ne 0 ]; then
  echo "schemathesis: failures (reports and server logs in $WORK)" >&2
  exit 1
fi
echo "schemathesis: admin and user runs passed (reports in $WORK)"
