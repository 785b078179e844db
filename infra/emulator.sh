#!/usr/bin/env bash
# The local AWS stand-in: moto's server (DynamoDB + S3 APIs over HTTP) on 127.0.0.1.
#
#   infra/emulator.sh start      install moto if needed (infra/tools.sh), start it, wait until it answers
#   infra/emulator.sh provision  create the tables and bucket of template.yaml under the names in
#                                TABLE_NAME / ARCHIVE_TABLE_NAME / S3_BUCKET_NAME (defaults below)
#   infra/emulator.sh env        print the exports that point the SDK, the CLI and the functions at it
#   infra/emulator.sh stop
#
# Tests create their own uniquely named tables and bucket (from the same template.yaml), so they
# need only `start`. Port: MOTO_PORT (default 5055).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PORT="${MOTO_PORT:-5055}"
ENDPOINT="http://127.0.0.1:$PORT"
STATE="${XDG_RUNTIME_DIR:-$HOME/.cache}/collector-moto-$PORT"
mkdir -p "$(dirname "$STATE")"

up() { python3 - "$ENDPOINT" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=1)
except Exception:
    sys.exit(1)
PY
}

case "${1:-}" in
  start)
    if up; then echo "moto already answering at $ENDPOINT" >&2; exit 0; fi
    BIN="$("$ROOT/infra/tools.sh")"
    nohup "$BIN/python3" "$ROOT/infra/moto_locked.py" "$PORT" >"$STATE.log" 2>&1 &
    echo $! >"$STATE.pid"
    for _ in $(seq 1 100); do
      if up; then echo "moto started at $ENDPOINT (pid $(cat "$STATE.pid"), log $STATE.log)" >&2; exit 0; fi
      sleep 0.2
    done
    echo "moto did not start; see $STATE.log" >&2
    tail -20 "$STATE.log" >&2 || true
    exit 1
    ;;
  stop)
    if [ -f "$STATE.pid" ]; then kill "$(cat "$STATE.pid")" 2>/dev/null || true; rm -f "$STATE.pid"; fi
    # Wait until the port is free, so that a `start` right after starts a fresh emulator.
    for _ in $(seq 1 50); do
      if ! up; then exit 0; fi
      sleep 0.2
    done
    ;;
  provision)
    BIN="$("$ROOT/infra/tools.sh")"
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 \
      "$BIN/python3" "$ROOT/infra/provision.py" --endpoint "$ENDPOINT" --template "$ROOT/template.yaml" \
      --table "${TABLE_NAME:-collector-hot}" --archive-table "${ARCHIVE_TABLE_NAME:-collector-archive}" \
      --bucket "${S3_BUCKET_NAME:-collector-archive}"
    ;;
  env)
    cat <<ENV
export COLLECTOR_BACKEND=aws
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export DYNAMODB_ENDPOINT=$ENDPOINT S3_ENDPOINT=$ENDPOINT S3_REGION=us-east-1
export S3_ACCESS_KEY=test S3_SECRET_KEY=test
export TABLE_NAME=${TABLE_NAME:-collector-hot} ARCHIVE_TABLE_NAME=${ARCHIVE_TABLE_NAME:-collector-archive} S3_BUCKET_NAME=${S3_BUCKET_NAME:-collector-archive}
ENV
    ;;
  *)
    echo "usage: $0 start|stop|provision|env" >&2; exit 2 ;;
esac
