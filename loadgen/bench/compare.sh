#!/usr/bin/env bash
# loadgen against wrk and hey on a trivial local endpoint, in one run:
#   requests/s of wrk, hey and loadgen (closed loop, same connections): loadgen unsigned and
#   SigV4-signed, every order traced and 5 % traced (--sample-rate 0.05, X-Ray's default rule);
#   each the median of RUNS runs, with the client's own CPU time per request (user + system, from
#   /usr/bin/time), which is what decides throughput when client and endpoint share the CPUs.
#   Then loadgen's open-loop rate accuracy at 5,000/s and its peak RSS over 10M requests.
#   Prints one table. Installs wrk, hey and time from Debian if missing.
#
#   bash loadgen/bench/compare.sh   # DURATION=10s CONNECTIONS=64 RUNS=3 REQUESTS_FOR_RSS=10000000
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
RUNS=${RUNS:-3}
REQUESTS_FOR_RSS=${REQUESTS_FOR_RSS:-10000000}
ADDR=127.0.0.1:18080
URL=http://$ADDR

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need hey || ! need /usr/bin/time; then
  apt-get update -qq && apt-get install -y -qq wrk hey time >/dev/null
fi

cargo build --release -q -p loadgen --bin loadgen --example trivial_endpoint
LOADGEN=target/release/loadgen
target/release/examples/trivial_endpoint "$ADDR" >/dev/null &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
sleep 0.5

# loadgen signs with the standard AWS chain and sends its segments to a daemon address nobody
# listens on (the kernel still builds and loops back every datagram; the refusals are counted):
# its full per-request work, no AWS needed.
export AWS_ACCESS_KEY_ID=AKIDLOADGENBENCH AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export AWS_XRAY_DAEMON_ADDRESS=127.0.0.1:2999
BODY='{"order_id":"b-1","customer_id":"c-1","items":[{"sku":"SKU-0001","quantity":1,"unit_price":9.5}]}'
WORK=$(mktemp -d)
cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
LUA

# One run of a tool: prints "<requests> <elapsed s> <cpu s>".
timed() { /usr/bin/time -o "$WORK/time" -f "%e %U %S" "$@" > "$WORK/out" 2>&1; }
cpu_of() { awk '{print $1, $2 + $3}' "$WORK/time"; }
run_wrk() {
  timed wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s "$WORK/post.lua" "$URL/orders"
  echo "$(awk '/requests in/ {print $1}' "$WORK/out") $(cpu_of)"
}
run_hey() {
  timed hey -z "$DURATION" -c "$CONNECTIONS" -m POST -T application/json -d "$BODY" "$URL/orders"
  echo "$(awk '/responses/ {n += $2} END {print n}' "$WORK/out") $(cpu_of)"
}
run_loadgen() {
  timed "$LOADGEN" --url "$URL" --concurrency "$CONNECTIONS" --duration "$DURATION" \
    --no-inspect --quiet --json "$WORK/report.json" "$@"
  echo "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['requests']['sent'])" "$WORK/report.json") $(cpu_of)"
}

# Median over RUNS of requests/s, and the CPU µs per request of that median run.
median() {
  local runner=$1; shift
  for _ in $(seq "$RUNS"); do "$runner" "$@"; done | python3 -c "
import sys
runs = sorted((int(n) / float(t), float(c) * 1e6 / int(n)) for n, t, c in (l.split() for l in sys.stdin))
rps, cpu = runs[len(runs) // 2]
print(round(rps), round(cpu, 1))"
}

read -r wrk_rps wrk_cpu < <(median run_wrk)
read -r hey_rps hey_cpu < <(median run_hey)
read -r lu_rps lu_cpu < <(median run_loadgen --unsigned)
read -r lu5_rps lu5_cpu < <(median run_loadgen --unsigned --sample-rate 0.05)
read -r ls_rps ls_cpu < <(median run_loadgen)
read -r ls5_rps ls5_cpu < <(median run_loadgen --sample-rate 0.05)

$LOADGEN --url "$URL" --unsigned --rate 5000 --duration 20s --warmup 2s --no-inspect --quiet --json "$WORK/report.json" >/dev/null
read -r open_dispatched open_done open_late open_dropped < <(python3 -c "
import json,sys; r=json.load(open(sys.argv[1]))
print(round(r['dispatched_rps'] or 0,1), round(r['throughput_rps'],1), r['requests']['late'], r['requests']['dropped'])" "$WORK/report.json")
rate_error=$(python3 -c "print(round(abs($open_done-5000)/5000*100,2))")
rss_kb=$(/usr/bin/time -v "$LOADGEN" --url "$URL" --unsigned --concurrency "$CONNECTIONS" --orders "$REQUESTS_FOR_RSS" \
  --no-inspect --quiet 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {print $2}')
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
row() { echo "| $1 | $2 | $(ratio "$2" "$wrk_rps") | $(ratio "$2" "$hey_rps") | $3 |"; }

cat <<TABLE
$(nproc) vCPU, $(uname -m); $CONNECTIONS connections, $DURATION each, median of $RUNS; client and endpoint share the machine
| tool | requests/s | vs wrk | vs hey | client CPU µs/request |
|---|---|---|---|---|
$(row "wrk (-t2)" "$wrk_rps" "$wrk_cpu")
$(row "hey" "$hey_rps" "$hey_cpu")
$(row "loadgen, unsigned, every order traced" "$lu_rps" "$lu_cpu")
$(row "loadgen, unsigned, 5 % traced" "$lu5_rps" "$lu5_cpu")
$(row "loadgen, SigV4-signed, every order traced" "$ls_rps" "$ls_cpu")
$(row "loadgen, SigV4-signed, 5 % traced" "$ls5_rps" "$ls5_cpu")
open loop at 5,000/s for 20 s: dispatched $open_dispatched/s, completed $open_done/s (error $rate_error %), late $open_late, dropped $open_dropped
peak RSS over $REQUESTS_FOR_RSS requests: $((rss_kb / 1024)) MiB
TABLE
rm -rf "$WORK"
