#!/usr/bin/env bash
# Installs the local stand-ins and deploy tools into one virtualenv (idempotent):
#   moto[server]  the DynamoDB/S3 API emulator the AWS adapters are tested against
#   cargo-lambda  builds the functions for Lambda and runs them locally (brings zig)
#   cfn-lint      checks template.yaml
#   aws-sam-cli   `sam validate --lint`, `sam build` (infra/sam-build.sh), `sam deploy`; in a venv of
#                 its own (it pins other cfn-lint and boto versions than moto's), linked into
#                 this one as `sam`
#   schemathesis  fuzzes collector serve from its /openapi.json (infra/schemathesis.sh); its
#                 dependencies resolve alongside moto's without changing any pinned version
# Prints the venv's bin folder on stdout; put it first on PATH.
set -euo pipefail
VENV="${COLLECTOR_VENV:-$HOME/.cache/collector-venv}"
PACKAGES=("moto[server]==5.2.5" "cargo-lambda==1.9.2" "cfn-lint==1.51.0" "schemathesis==4.32.5")
if [ ! -x "$VENV/bin/python3" ]; then
  python3 -m venv "$VENV" >&2
fi
STAMP="$VENV/.collector-tools"
WANT="${PACKAGES[*]}"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  "$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check "${PACKAGES[@]}" >&2
  echo "$WANT" > "$STAMP"
fi
SAM_VENV="${COLLECTOR_SAM_VENV:-$HOME/.cache/collector-sam-venv}"
SAM_PACKAGE="aws-sam-cli==1.170.0"
if [ "$(cat "$SAM_VENV/.collector-tools" 2>/dev/null)" != "$SAM_PACKAGE" ]; then
  [ -x "$SAM_VENV/bin/python3" ] || python3 -m venv "$SAM_VENV" >&2
  "$SAM_VENV/bin/python3" -m pip install --quiet --disable-pip-version-check "$SAM_PACKAGE" >&2
  echo "$SAM_PACKAGE" > "$SAM_VENV/.collector-tools"
fi
ln -sf "$SAM_VENV/bin/sam" "$VENV/bin/sam"
echo "$VENV/bin"
