#!/usr/bin/env bash
# What the telemetry extension costs, on the local stack (release binaries), in one run:
#   the same closed-loop load three times: without the extension, with it shipping to the local
#   search engine, and with its backend down (a port nobody listens on). For each: order's
#   p50/p99 as loadgen measured it (corrected), the statuses, and from the telemetry check the
#   time the extension kept an environment busy after each response (p50/p99) and whether every
#   invocation's platform.report arrived. Also the extension processes' peak RSS (VmHWM), sampled
#   while the load runs.
#
#   bash extensions/telemetry/bench/measure.sh    # ORDERS=1500 CONCURRENCY=8 PROFILE=release|debug
set -euo pipefail
cd "$(dirname "$0")/../../.."

ORDERS=${ORDERS:-1500}
CONCURRENCY=${CONCURRENCY:-8}
OUT=${OUT:-target/telemetry-measure}
PROFILE=${PROFILE:-release}
mkdir -p "$OUT"

flag=$([ "$PROFILE" = release ] && echo --release || true)
cargo build $flag -q -p loadgen -p order -p payment -p inventory@0.1.0 -p access-log-transform -p opensearch-telemetry
DEAD_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

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
    --orders "$ORDERS" --concurrency "$CONCURRENCY" --run-id "measure-$name" \
    --json "$OUT/$name.json" "$@" > "$OUT/$name.txt"
  touch "$OUT/stop"
  wait "$sampler"
  python3 - "$OUT/$name.json" "$name" "$(cat "$OUT/rss-kb")" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
name, rss_kb = sys.argv[2], int(sys.argv[3])
latency = report["latency"]["corrected"]
telemetry = (report.get("local") or {}).get("telemetry")
line = f"{name:<16} {report['throughput_rps']:7.1f} orders/s  p50 {latency['p50_ms']:7.2f} ms  p99 {latency['p99_ms']:7.2f} ms  statuses {report['statuses']}"
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

echo "== $ORDERS orders, $CONCURRENCY concurrent, $PROFILE build, $(nproc) CPUs, $(date -u +%F)"
run without
run extension --telemetry
run backend-down --telemetry --telemetry-url "http://127.0.0.1:$DEAD_PORT"
