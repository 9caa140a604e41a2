#!/usr/bin/env bash
# A newcomer's first run, timed: a clean clone of this checkout's HEAD (or REV) with an empty
# CARGO_HOME (so every crate is downloaded and built), then the README's two commands:
#   1. cargo run --release -p loadgen -- --local     (the demo: builds loadgen and the functions)
#   2. the same again                                (the second run: nothing to build)
#   3. cargo test --workspace                        (the README's test command)
# Prints each step's wall time and exit code. Usage: bench/first_run.sh [WORKDIR] [REV]
# (WORKDIR default /tmp/first-run; it is emptied first). The toolchain (rustup) is the machine's.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/first-run}
rev=${2:-HEAD}
rm -rf "$work"
mkdir -p "$work"
git clone -q "$repo" "$work/repo"
git -C "$work/repo" checkout -q "$rev"
export CARGO_HOME="$work/cargo-home"
mkdir -p "$CARGO_HOME"
export CARGO_TERM_COLOR=never
cd "$work/repo"
echo "first run of $(git rev-parse --short HEAD) on $(nproc) CPUs, CARGO_HOME=$CARGO_HOME (empty)"

timed() {
  local name=$1
  shift
  local start=$SECONDS
  "$@" >"$work/$name.out" 2>"$work/$name.err"
  local rc=$?
  local took=$((SECONDS - start))
  printf '%-28s %4d s (%dm%02ds)  exit %d\n' "$name" "$took" $((took / 60)) $((took % 60)) "$rc"
}

began=$(date +%s)
timed "first --local" cargo run --release --locked -p loadgen -- --local --quiet
# Its parts, from the binaries' modification times: loadgen's build, then the functions' build.
built_at() { stat -c %Y "target/release/$1"; }
loadgen_done=$(built_at loadgen)
functions_done=$loadgen_done
for f in order payment inventory access-log-transform opensearch-telemetry; do
  # Only the functions the demo runs are built.
  [ -e "target/release/$f" ] && [ "$(built_at "$f")" -gt "$functions_done" ] && functions_done=$(built_at "$f")
done
printf '  %-26s %4d s\n' "loadgen built" $((loadgen_done - began)) "functions built" $((functions_done - loadgen_done))
timed "second --local" cargo run --release --locked -p loadgen -- --local --quiet
timed "cargo test --workspace" cargo test --workspace --locked
grep -E '^test result|FAILED|panicked' "$work/cargo test --workspace.out" | sort | uniq -c | sort -rn | head -5
