#!/usr/bin/env bash
# Nothing lost: RATE orders/s (default 1,000) for DURATION (default 60s) through the local stack,
# open loop, tracing on, simulation off; then every order's trace, every Lattice access-log line
# and every segment document is accounted for. Prints one table; exits 1 if anything is missing
# or counted twice, or if any order was refused or went unanswered.
#
# The load ramps up first (RAMP=1: 10 %, 25 %, 50 % of RATE for 5 s each), as one ramps a real
# Lambda: every execution environment starts cold, and a full-rate step from zero spends its first
# seconds starting them (the local stack throttles past its concurrency with 503, as Lambda does).
# The ramp's orders are accounted for like the rest. RAMP=0 steps straight to RATE.
#
#   bash bench/nothing_lost.sh                   # RATE=1000 DURATION=60s RAMP=1
#   RATE=500 bash bench/nothing_lost.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-1000}
DURATION=${DURATION:-60s}
RAMP=${RAMP:-1}
RUN_ID=nothing-lost-$(date +%s)
if [ "$RAMP" = 1 ]; then
  LOAD=(--stages "$(python3 -c "r=float('$RATE'); print(f'{r*0.1:g}/s:5s,{r*0.25:g}/s:5s,{r*0.5:g}/s:5s,{r:g}/s:$DURATION')")")
else
  LOAD=(--rate "$RATE" --duration "$DURATION")
fi
REPORT=$(mktemp --suffix=.json)

cargo build --release -q -p loadgen --bin loadgen
# Every trace is checked (--check-limit), and X-Ray waits long enough for all of them.
target/release/loadgen --local --no-simulation "${LOAD[@]}" \
  --max-inflight 4096 --run-id "$RUN_ID" --raw-documents --check-limit 1000000 --wait 300s \
  --quiet --json "$REPORT" >/dev/null
python3 bench/nothing_lost.py "$REPORT" "${TMPDIR:-/tmp}/loadgen-$RUN_ID" "$RATE" "$DURATION"
