#!/usr/bin/env bash
# CI for the Python client: a venv, the package as a user installs it, pytest against a real
# `collector serve` (and, in tests/test_lambda.py, the Lambda functions under cargo lambda watch).
#
#   clients/python/ci.sh [pytest args...]
#
# Env: COLLECTOR_BIN (default $CARGO_TARGET_DIR/release/collector, built if missing),
#      CARGO_TARGET_DIR (default ~/.cache/collector-target),
#      COLLECTOR_CLIENT_VENV (default ~/.cache/collector-client-venv),
#      COLLECTOR_CLIENT_LAMBDA=1 runs the Lambda test too (cheap once `cargo test --workspace`
#      has built the functions; it starts the moto emulator if it is down, never stops it).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/collector-target}"
export COLLECTOR_BIN="${COLLECTOR_BIN:-$CARGO_TARGET_DIR/release/collector}"
VENV="${COLLECTOR_CLIENT_VENV:-$HOME/.cache/collector-client-venv}"
PY="${PYTHON:-python3}"

if [ ! -x "$COLLECTOR_BIN" ]; then
  echo "ci.sh: building $COLLECTOR_BIN" >&2
  (cd "$ROOT" && cargo build --release -p collector-cli)
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$HERE" "pytest>=7,<10" "pytest-asyncio>=0.23,<2" "mypy>=1.8,<2"

cd "$HERE"
# The package is typed (py.typed): keep it so.
"$VENV/bin/python" -m mypy --strict --no-error-summary src/collector_client
set +e
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "ci.sh: pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
