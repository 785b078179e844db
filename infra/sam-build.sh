#!/usr/bin/env bash
# `sam build` as a deployer runs it (docs/DEPLOY.md, "Build"), then checks what it made.
#
#   bash infra/sam-build.sh [sam build options]
#
# SAM builds each function of template.yaml with cargo lambda (`BuildMethod: rust-cargolambda`,
# opted into by samconfig.toml's beta_features): `cargo lambda build --release --arm64 --bin NAME`
# in the function's crate, cross-compiled with zig (both from infra/tools.sh), into the shared
# target folder; then it copies each `bootstrap` to .aws-sam/build/LOGICAL_ID/ and writes
# .aws-sam/build/template.yaml for `sam deploy`. The check: every function of the template has
# a bootstrap there, an arm64 (aarch64) ELF executable, at most 10 MiB (docs/AWS.md).
#
# Slow: 25-75 minutes cold on 2 cores (ten fat-LTO release links), a few minutes warm. Not
# part of .ci/run (CI builds and tests the same code natively); run it before a deploy or after
# a change to the build setup. Docker is not needed (no --use-container).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$(bash infra/tools.sh):$PATH"
export SAM_CLI_TELEMETRY=0
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/collector-target}"

START=$(date +%s)
sam build "$@"
echo "sam build: $(( $(date +%s) - START )) s"

python3 - <<'PY'
import os, re, sys

template = open("template.yaml").read()
# Logical ids of the functions: a resource line followed by its Serverless::Function type.
functions = re.findall(r"^  (\w+):\n    Type: AWS::Serverless::Function$", template, re.M)
limit = 10 * 1024 * 1024
bad = 0
for logical in functions:
    path = os.path.join(".aws-sam", "build", logical, "bootstrap")
    if not os.path.isfile(path):
        print(f"FAIL  {logical}: no {path}")
        bad += 1
        continue
    with open(path, "rb") as f:
        head = f.read(20)
    size = os.path.getsize(path)
    # ELF, 64-bit, little-endian, e_machine 0xB7 (AArch64) at offset 18.
    arm64 = head[:4] == b"\x7fELF" and head[4] == 2 and head[5] == 1 and int.from_bytes(head[18:20], "little") == 0xB7
    ok = arm64 and size <= limit and os.access(path, os.X_OK)
    bad += not ok
    print(f"{'ok   ' if ok else 'FAIL '} {logical}: {size:,} bytes ({size / 1048576:.2f} MiB), "
          f"{'aarch64' if arm64 else 'NOT aarch64'}{'' if os.access(path, os.X_OK) else ', not executable'}")
if not functions:
    print("FAIL  no AWS::Serverless::Function found in template.yaml")
    bad += 1
if not os.path.isfile(os.path.join(".aws-sam", "build", "template.yaml")):
    print("FAIL  no .aws-sam/build/template.yaml")
    bad += 1
print(f"sam-build: {len(functions) + 1 - bad} passed, {bad} failed")
sys.exit(1 if bad else 0)
PY
