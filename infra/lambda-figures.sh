#!/usr/bin/env bash
# The Lambda functions' figures (issue 3's goals), printed:
#   1. the size of each function's arm64 release binary, built as it is deployed
#      (`cargo lambda build --release --arm64`; goal <= 10 MiB each);
#   2. the time from process start to the first event, against a local Lambda runtime API
#      (infra/coldstart.py; goal <= 20 ms). This machine runs x86_64, so it times native release
#      builds of the same code, each with its own event, against the emulator (infra/emulator.sh).
#
#   bash infra/lambda-figures.sh                    # both
#   FIGURES_SKIP_ARM64=1 bash infra/lambda-figures.sh   # only the cold start
#   FIGURES_RUNS=50 ...                              # runs per function (default 20)
# The arm64 build is long on 2 cores (a cold build of the SDK with fat LTO: 20-30 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
PATH="$(bash infra/tools.sh):$PATH"
export PATH
TARGET="${CARGO_TARGET_DIR:-$(pwd)/target}"
RUNS="${FIGURES_RUNS:-20}"

packages=()
functions=()
for dir in functions/*/; do
  name=$(basename "$dir")
  packages+=(-p "fn-$name")
  functions+=("$name")
done

if [ -z "${FIGURES_SKIP_ARM64:-}" ]; then
  echo "== arm64 release binaries (cargo lambda build --release --arm64)"
  cargo lambda build --release --arm64 "${packages[@]}" >&2
  limit=$((10 * 1024 * 1024))
  printf '%-14s %12s %8s  %s\n' function bytes MiB "<= 10 MiB"
  for name in "${functions[@]}"; do
    bytes=$(stat -c %s "$TARGET/lambda/$name/bootstrap")
    verdict=yes; [ "$bytes" -le "$limit" ] || verdict=NO
    printf '%-14s %12d %8.2f  %s\n' "$name" "$bytes" "$(awk -v b="$bytes" 'BEGIN { print b / 1048576 }')" "$verdict"
  done
fi

echo "== process start -> first event (native $(uname -m) release build, local runtime API)"
cargo build --release "${packages[@]}" >&2
started=$(bash infra/emulator.sh start 2>&1)
echo "$started" >&2
# Stop it afterwards only if this script started it.
case "$started" in *"already answering"*) ;; *) trap 'bash infra/emulator.sh stop >&2' EXIT ;; esac
bash infra/emulator.sh provision >&2
eval "$(bash infra/emulator.sh env)"
runs=()
for name in "${functions[@]}"; do
  if [ "$name" = archiver ]; then
    event=events/archiver/schedule.json
  else
    event=$(ls "events/http/$name"/*.json | head -1)
  fi
  runs+=("$TARGET/release/$name=$event")
done
python3 infra/coldstart.py --runs "$RUNS" "${runs[@]}"
