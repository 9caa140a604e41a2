#!/usr/bin/env bash
# Fuzzes the three parsers that take input from outside the process: the X-Amzn-Trace-Id header
# (lattice-xray), X-Ray filter expressions and the daemon's datagrams (local-stack). Each target
# runs RUNS executions (default 10,000,000) from the seeds in fuzz/seeds/<target>, keeping its
# corpus in fuzz/corpus/<target>; a crash stops the script with the input in fuzz/artifacts/.
#
#   bash fuzz/run.sh                 # 10M executions per target (minutes per target)
#   RUNS=20000 bash fuzz/run.sh      # the short pass CI runs
#
# cargo-fuzz needs nightly-only rustc flags; RUSTC_BOOTSTRAP=1 enables them on the stable
# toolchain this project pins, so no second toolchain is fetched.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-10000000}
TARGETS=${TARGETS:-"trace_header filter_expression daemon_datagram"}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --version 0.13.2

BUILD_FLAGS=${BUILD_FLAGS:--O}
cargo fuzz build $BUILD_FLAGS
for target in $TARGETS; do
  mkdir -p "fuzz/corpus/$target"
  started=$(date +%s.%N)
  log=$(mktemp)
  if ! cargo fuzz run $BUILD_FLAGS "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
      -runs="$RUNS" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    echo "FAIL $target (input saved under fuzz/artifacts/$target)"
    exit 1
  fi
  seconds=$(python3 -c "import time; print(round(time.time() - $started, 1))")
  execs=$(awk '/stat::number_of_executed_units/ {print $NF}' "$log")
  rate=$(awk '/stat::average_exec_per_sec/ {print $NF}' "$log")
  edges=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  echo "ok   $target: ${execs:-?} executions in ${seconds}s (${rate:-?}/s), coverage $edges edges, corpus $(ls "fuzz/corpus/$target" | wc -l) inputs"
  rm -f "$log"
done
