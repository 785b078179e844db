#!/usr/bin/env bash
# Measures the SQL of the SQLite archive commit in several table layouts, outside the collector.
#   infra/sqlite-layouts/run.sh STORE_DIR [RUNS] [LAYOUT...]
# STORE_DIR holds a collector.sqlite3 filled by the bench (FIGURES_ONLY=archive
# FIGURES_ARCHIVE_RECORDS=60000 FIGURES_ARCHIVE_KEEP=DIR: the store is DIR/seed). Each run
# copies it, applies the layout, then archives every record in one transaction per day and
# prints the CPU-seconds of those transactions (layouts.py lists the layouts). Not run in CI.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
store="$1/collector.sqlite3"; runs="${2:-2}"; shift $(( $# >= 2 ? 2 : 1 ))
layouts=("$@"); [ ${#layouts[@]} -gt 0 ] || layouts=(base no-by-time no-by-time+no-fk archived-without-rowid slim slim+mmap+cache16 mmap+cache16 merged merged-bodies)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sqlite-layouts-target}"
cargo build --release --offline --quiet --manifest-path "$here/Cargo.toml"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
for layout in "${layouts[@]}"; do
  for _ in $(seq "$runs"); do
    python3 "$here/layouts.py" "$layout" > "$work/steps.sql"
    rm -f "$work"/c.db*; cp "$store" "$work/c.db"; sync
    total=$("$CARGO_TARGET_DIR/release/sqlite-layouts" "$work/c.db" "$work/steps.sql" | grep TOTAL)
    records=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM chunk').fetchone()[0])" "$work/c.db")
    echo "$layout: $total ($records records)"
  done
done
