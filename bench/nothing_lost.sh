#!/usr/bin/env bash
# Nothing lost: RATE orders/s (default 1,000) for DURATION (default 60s) through the local stack,
# open loop, tracing on, simulation off; then every order's trace, every Lattice access-log line
# and every segment document is accounted for. Prints one table; exits 1 if anything is missing
# or counted twice.
#
#   bash bench/nothing_lost.sh                   # RATE=1000 DURATION=60s
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-1000}
DURATION=${DURATION:-60s}
RUN_ID=nothing-lost-$(date +%s)
REPORT=$(mktemp --suffix=.json)

cargo build --release -q -p loadgen --bin loadgen
# Every trace is checked (--check-limit), and X-Ray waits long enough for all of them.
target/release/loadgen --local --no-simulation --rate "$RATE" --duration "$DURATION" \
  --max-inflight 4096 --run-id "$RUN_ID" --raw-documents --check-limit 1000000 --wait 300s \
  --quiet --json "$REPORT" >/dev/null
python3 bench/nothing_lost.py "$REPORT" "${TMPDIR:-/tmp}/loadgen-$RUN_ID" "$RATE" "$DURATION"
