#!/usr/bin/env bash
# What one feature set for the workspace (the workspace-hack crate) does to what we ship: the
# Lambda binaries' size and the traced request cost, before and after, in one run.
#
# For each of two checkouts (BEFORE, AFTER: e.g. a worktree of the commit before the
# workspace-hack, and one with it): the five functions built the way `cargo lambda build` builds
# them (one release invocation, native target) and their sizes, and the criterion bench
# `cargo bench -p lattice-xray --bench tracing_overhead` built (its "traced" figure is one order
# request's tracing, exported over UDP to loopback). Then the two bench executables run in turns,
# ROUNDS times (default 3), so that both sides see the same machine; the script prints each round's
# figures and each side's median per benchmark.
#
# Usage: BEFORE=DIR AFTER=DIR bash bench/feature_sets.sh
# Optional per side: BEFORE_CARGO_HOME, BEFORE_TARGET_DIR, AFTER_CARGO_HOME, AFTER_TARGET_DIR (to
# reuse a build that side already has).
set -euo pipefail
functions=(order payment inventory access-log-transform opensearch-telemetry)
rounds=${ROUNDS:-3}
results=$(mktemp)
trap 'rm -f "$results"' EXIT

# build SIDE DIR CARGO_HOME TARGET_DIR: the functions and their sizes, then the bench executable,
# whose path is printed last.
build() {
  local side=$1 dir=$2 home=$3 target=$4
  local packages=()
  for f in "${functions[@]}"; do
    # crates.io has an `inventory` too (typetag's): name ours by version.
    [ "$f" = inventory ] && packages+=(-p inventory@0.1.0) || packages+=(-p "$f")
  done
  echo "== $side: $(git -C "$dir" log -1 --format='%h %s' | cut -c1-90)" >&2
  local start=$SECONDS
  (cd "$dir" && CARGO_HOME=$home CARGO_TARGET_DIR=$target cargo build --release --locked --quiet "${packages[@]}")
  echo "   functions built in $((SECONDS - start)) s" >&2
  for f in "${functions[@]}"; do
    printf '   %-22s %10d bytes\n' "$f" "$(stat -c %s "$target/release/$f")" >&2
  done
  (cd "$dir" && CARGO_HOME=$home CARGO_TARGET_DIR=$target \
    cargo bench --locked --quiet --no-run --message-format=json -p lattice-xray --bench tracing_overhead) |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "tracing_overhead" in m["target"]["name"]:
        print(m["executable"])'
}

before_bench=$(build before "$BEFORE" "${BEFORE_CARGO_HOME:-${CARGO_HOME:-$HOME/.cargo}}" "${BEFORE_TARGET_DIR:-$BEFORE/target}")
after_bench=$(build after "$AFTER" "${AFTER_CARGO_HOME:-${CARGO_HOME:-$HOME/.cargo}}" "${AFTER_TARGET_DIR:-$AFTER/target}")

# One criterion run: "side round benchmark estimate unit" per benchmark (the middle of criterion's
# [low estimate high] interval).
run_bench() {
  local side=$1 round=$2 exe=$3
  "$exe" --bench --noplot 2>/dev/null | awk -v side="$side" -v round="$round" '
    /^order_request\// { name = $1; sub(/^order_request\//, "", name) }
    /time:/ {
      gsub(/[\[\]]/, "")
      for (i = 1; i <= NF; i++) if ($i == "time:") print side, round, name, $(i + 3), $(i + 4)
    }'
}

for round in $(seq 1 "$rounds"); do
  run_bench before "$round" "$before_bench" | tee -a "$results"
  run_bench after "$round" "$after_bench" | tee -a "$results"
done

echo "== medians over $rounds rounds (µs)"
python3 - "$results" <<'EOF'
import statistics, sys
scale = {"ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3}
figures = {}
for line in open(sys.argv[1]):
    side, _round, name, value, unit = line.split()
    figures.setdefault(name, {}).setdefault(side, []).append(float(value) * scale[unit])
for name, sides in figures.items():
    before = statistics.median(sides.get("before", [float("nan")]))
    after = statistics.median(sides.get("after", [float("nan")]))
    print(f"   {name:20} before {before:8.2f}   after {after:8.2f}   ({after / before - 1:+.1%})")
EOF
