#!/usr/bin/env bash
# What the telemetry extension costs, on the local stack (release binaries), in one run:
#   the same load four times: without the extension, with it shipping to the local search
#   engine, with its backend down (a port nobody listens on) and with a backend that accepts
#   connections and never answers (slow past every timeout); first at a fixed open-loop
#   rate below saturation (the latency a request sees: RATE orders/s), then closed loop (the
#   saturation throughput: CONCURRENCY workers, which on 2 vCPU also measures the CPU the
#   extension, the Telemetry API delivery and the co-located search engine take from the
#   functions). For each: order's p50/p99 as loadgen measured it (corrected), the statuses, and
#   from the telemetry check the time the extension kept an environment busy after each response
#   (p50/p99) and whether every invocation's platform.report arrived. Also the extension
#   processes' peak RSS (VmHWM), sampled while the load runs.
#
#   bash extensions/telemetry/bench/measure.sh    # ORDERS=1500 RATE=40 WARMUP=5s CONCURRENCY=8 MODELS='rate closed' PROFILE=release|debug
set -euo pipefail
cd "$(dirname "$0")/../../.."

ORDERS=${ORDERS:-1500}
CONCURRENCY=${CONCURRENCY:-8}
RATE=${RATE:-40}
# Excluded from the statistics: the cold starts (an extension lengthens init; measured apart).
WARMUP=${WARMUP:-5s}
MODELS=${MODELS:-rate closed}
OUT=${OUT:-target/telemetry-measure}
PROFILE=${PROFILE:-release}
mkdir -p "$OUT"

flag=$([ "$PROFILE" = release ] && echo --release || true)
cargo build $flag -q -p loadgen -p order -p payment -p inventory@0.1.0 -p access-log-transform -p opensearch-telemetry
DEAD_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# A backend that accepts every connection and never answers: it prints its port, then holds.
python3 -u -c '
import socket
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1024)
print(server.getsockname()[1])
held = []
while True:
    held.append(server.accept()[0])
' > "$OUT/silent-port" &
SILENT_PID=$!
trap 'kill $SILENT_PID 2>/dev/null || true' EXIT
until [ -s "$OUT/silent-port" ]; do sleep 0.1; done
SILENT_PORT=$(cat "$OUT/silent-port")

# The highest VmHWM among running opensearch-telemetry processes, until told to stop.
sample_rss() {
  local peak=0
  while [ ! -e "$OUT/stop" ]; do
    for status in /proc/[0-9]*/status; do
      if grep -q '^Name:.*opensearch-tele' "$status" 2>/dev/null; then
        kb=$(awk '/^VmHWM:/ {print $2}' "$status" 2>/dev/null || echo 0)
        [ "${kb:-0}" -gt "$peak" ] && peak=$kb
      fi
    done
    sleep 0.2
  done
  echo "$peak" > "$OUT/rss-kb"
}

run() {
  local name=$1
  shift
  rm -f "$OUT/stop" "$OUT/rss-kb"
  sample_rss &
  local sampler=$!
  "target/$PROFILE/loadgen" --local --no-build --quiet --no-simulation --no-analytics \
    --orders "$ORDERS" --warmup "$WARMUP" --run-id "measure-$name" \
    --json "$OUT/$name.json" "$@" > "$OUT/$name.txt"
  touch "$OUT/stop"
  wait "$sampler"
  python3 - "$OUT/$name.json" "$name" "$(cat "$OUT/rss-kb")" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
name, rss_kb = sys.argv[2], int(sys.argv[3])
latency = report["latency"]["corrected"]
telemetry = (report.get("local") or {}).get("telemetry")
line = f"{name:<20} {report['throughput_rps']:7.1f} orders/s  p50 {latency['p50_ms']:7.2f} ms  p99 {latency['p99_ms']:7.2f} ms  statuses {report['statuses']}"
if telemetry:
    fmt = lambda v: "-" if v is None else f"{v:.2f}"
    reports = sum(telemetry["reports"].values())
    invocations = sum(telemetry["invocations"].values())
    line += (f"  | extension after the response p50 {fmt(telemetry['extension_ms_p50'])} ms"
             f" p99 {fmt(telemetry['extension_ms_p99'])} ms, reports {reports}/{invocations}, "
             f"peak RSS {rss_kb / 1024:.1f} MB")
print(line)
EOF
}

echo "== $ORDERS orders ($WARMUP warm-up excluded), $PROFILE build, $(nproc) CPUs, $(date -u +%F)"
# One model, three ways: measure LABEL TAG LOADGEN-ARGS...
measure() {
  local label=$1 tag=$2
  shift 2
  echo "-- $label"
  run "without-$tag" "$@"
  run "extension-$tag" "$@" --telemetry
  run "down-$tag" "$@" --telemetry --telemetry-url "http://127.0.0.1:$DEAD_PORT"
  run "silent-$tag" "$@" --telemetry --telemetry-url "http://127.0.0.1:$SILENT_PORT"
}
for model in $MODELS; do
  case $model in
    rate) measure "open loop at $RATE orders/s" rate --rate "$RATE" ;;
    closed) measure "closed loop, $CONCURRENCY workers" closed --concurrency "$CONCURRENCY" ;;
    *) echo "unknown model $model (rate, closed)" >&2 && exit 2 ;;
  esac
done
