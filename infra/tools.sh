#!/usr/bin/env bash
# Installs the local stand-ins and deploy tools into one virtualenv (idempotent):
#   moto[server]  the DynamoDB/S3 API emulator the AWS adapters are tested against
#   cargo-lambda  builds the functions for Lambda and runs them locally (brings zig)
#   cfn-lint      checks template.yaml
# Prints the venv's bin folder on stdout; put it first on PATH.
set -euo pipefail
VENV="${COLLECTOR_VENV:-$HOME/.cache/collector-venv}"
PACKAGES=("moto[server]==5.2.5" "cargo-lambda==1.9.2" "cfn-lint==1.51.0")
if [ ! -x "$VENV/bin/python3" ]; then
  python3 -m venv "$VENV" >&2
fi
STAMP="$VENV/.collector-tools"
WANT="${PACKAGES[*]}"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  "$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check "${PACKAGES[@]}" >&2
  echo "$WANT" > "$STAMP"
fi
echo "$VENV/bin"
