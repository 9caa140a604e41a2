#!/usr/bin/env bash
# loadgen against wrk and hey on a trivial local endpoint, in one run:
#   requests/s of wrk, hey, loadgen unsigned and loadgen SigV4-signed (closed loop, same
#   connections); loadgen's open-loop rate accuracy at 5,000/s; loadgen's peak RSS over 10M
#   requests. Prints one table. Installs wrk and hey from Debian if missing.
#
#   bash loadgen/bench/compare.sh            # DURATION=10s CONNECTIONS=64 REQUESTS_FOR_RSS=10000000
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
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
# listens on (the sends fail fast and are counted): its full per-request work, no AWS needed.
export AWS_ACCESS_KEY_ID=AKIDLOADGENBENCH AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export AWS_XRAY_DAEMON_ADDRESS=127.0.0.1:2999
BODY='{"order_id":"b-1","customer_id":"c-1","items":[{"sku":"SKU-0001","quantity":1,"unit_price":9.5}]}'
LUA=$(mktemp --suffix=.lua)
JSON=$(mktemp --suffix=.json)
cat > "$LUA" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
LUA

wrk_rps=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s "$LUA" "$URL/orders" | awk '/Requests\/sec/ {print $2}')
hey_rps=$(hey -z "$DURATION" -c "$CONNECTIONS" -m POST -T application/json -d "$BODY" "$URL/orders" | awk '/Requests\/sec/ {print $2}')
rps_of() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['throughput_rps'],1))" "$JSON"; }
$LOADGEN --url "$URL" --unsigned --concurrency "$CONNECTIONS" --duration "$DURATION" --no-inspect --quiet --json "$JSON" >/dev/null
lg_rps=$(rps_of)
$LOADGEN --url "$URL" --concurrency "$CONNECTIONS" --duration "$DURATION" --no-inspect --quiet --json "$JSON" >/dev/null
lg_signed_rps=$(rps_of)
$LOADGEN --url "$URL" --unsigned --rate 5000 --duration 20s --warmup 2s --no-inspect --quiet --json "$JSON" >/dev/null
read -r open_dispatched open_done open_late open_dropped < <(python3 -c "
import json,sys; r=json.load(open(sys.argv[1]))
print(round(r['dispatched_rps'] or 0,1), round(r['throughput_rps'],1), r['requests']['late'], r['requests']['dropped'])" "$JSON")
rate_error=$(python3 -c "print(round(abs($open_done-5000)/5000*100,2))")
rss_kb=$(/usr/bin/time -v "$LOADGEN" --url "$URL" --unsigned --concurrency "$CONNECTIONS" --orders "$REQUESTS_FOR_RSS" \
  --no-inspect --quiet 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {print $2}')
ratio() { python3 -c "print(round($1/$2,2))"; }

cat <<TABLE
$(nproc) vCPU, $(uname -m); $CONNECTIONS connections, $DURATION each; client and endpoint share the machine
| tool | requests/s | vs wrk | vs hey |
|---|---|---|---|
| wrk (-t2) | $wrk_rps | 1.00 | $(ratio "$wrk_rps" "$hey_rps") |
| hey | $hey_rps | $(ratio "$hey_rps" "$wrk_rps") | 1.00 |
| loadgen, unsigned | $lg_rps | $(ratio "$lg_rps" "$wrk_rps") | $(ratio "$lg_rps" "$hey_rps") |
| loadgen, SigV4-signed | $lg_signed_rps | $(ratio "$lg_signed_rps" "$wrk_rps") | $(ratio "$lg_signed_rps" "$hey_rps") |
open loop at 5,000/s for 20 s: dispatched $open_dispatched/s, completed $open_done/s (error $rate_error %), late $open_late, dropped $open_dropped
peak RSS over $REQUESTS_FOR_RSS requests: $((rss_kb / 1024)) MiB
TABLE
rm -f "$LUA" "$JSON"
