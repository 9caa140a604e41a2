#!/usr/bin/env bash
# What one feature set for the workspace (the workspace-hack crate) does to what we ship: the
# Lambda binaries' size and the traced request cost, before and after, in one run.
#
# For each of two checkouts (BEFORE, AFTER: e.g. a worktree of the commit before the
# workspace-hack, and one with it): the five functions built the way `cargo lambda build` builds
# them (one release invocation, native target), their sizes, then
# `cargo bench -p lattice-xray --bench tracing_overhead` (criterion; its "traced" figure is one
# order request's tracing, exported over UDP to loopback).
#
# Usage: BEFORE=DIR AFTER=DIR bash bench/feature_sets.sh
# Optional per side: BEFORE_CARGO_HOME, BEFORE_TARGET_DIR, AFTER_CARGO_HOME, AFTER_TARGET_DIR (to
# reuse a build that side already has); ONLY=before or ONLY=after measures one side.
set -euo pipefail
functions=(order payment inventory access-log-transform opensearch-telemetry)

measure() {
  local side=$1 dir=$2 home=$3 target=$4
  local packages=()
  for f in "${functions[@]}"; do
    # crates.io has an `inventory` too (typetag's): name ours by version.
    [ "$f" = inventory ] && packages+=(-p inventory@0.1.0) || packages+=(-p "$f")
  done
  echo "== $side: $(git -C "$dir" log -1 --format='%h %s' | cut -c1-90)"
  local start=$SECONDS
  (cd "$dir" && CARGO_HOME=$home CARGO_TARGET_DIR=$target cargo build --release --locked --quiet "${packages[@]}")
  echo "   functions built in $((SECONDS - start)) s"
  for f in "${functions[@]}"; do
    printf '   %-22s %10d bytes\n' "$f" "$(stat -c %s "$target/release/$f")"
  done
  (cd "$dir" && CARGO_HOME=$home CARGO_TARGET_DIR=$target \
    cargo bench --locked --quiet -p lattice-xray --bench tracing_overhead -- --noplot 2>/dev/null) |
    grep -E '^order_request/|time:' | sed -E 's/ +/ /g; s/^/   /'
}

if [ "${ONLY:-before}" = before ]; then
  measure before "$BEFORE" "${BEFORE_CARGO_HOME:-${CARGO_HOME:-$HOME/.cargo}}" "${BEFORE_TARGET_DIR:-$BEFORE/target}"
fi
if [ "${ONLY:-after}" = after ]; then
  measure after "$AFTER" "${AFTER_CARGO_HOME:-${CARGO_HOME:-$HOME/.cargo}}" "${AFTER_TARGET_DIR:-$AFTER/target}"
fi
