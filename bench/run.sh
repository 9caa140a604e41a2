#!/usr/bin/env bash
# Every performance figure of the README, measured side by side in one run on this machine:
#   1. tracing cost per request: the traced handler against the same handler untraced (criterion),
#      and AWS's X-Ray SDK for Python doing the same segment work;
#   2. loadgen against wrk and hey on a trivial endpoint, open-loop accuracy, RSS over 10M requests;
#   3. the local stack's orders/s end to end, with the X-Ray daemon up and down.
# Installs what it needs (Debian: wrk, hey, time; PyPI: aws-xray-sdk into target/ci-tools/venv).
#
#   bash bench/run.sh                    # about 10 minutes after the builds
set -euo pipefail
cd "$(dirname "$0")/.."

echo "# $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr), $(rustc --version)"

venv=target/ci-tools/venv
if ! "$venv/bin/python" -c "import aws_xray_sdk" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r infra/local/tests/python/requirements.txt
fi

echo "## 1. tracing cost per request"
cargo bench -q -p lattice-xray --bench tracing_overhead -- --noplot 2>/dev/null \
  | awk '/^order_request\// {name=$1} /time:/ {print "  rust " name ": " $4 " " $5}'
echo "  $("$venv/bin/python" bench/python_xray_sdk.py 20000)"

echo "## 2. loadgen against wrk and hey"
bash loadgen/bench/compare.sh

echo "## 3. the local stack end to end (32 clients, 20 s)"
cargo bench -q -p local-stack --bench stack_throughput 2>/dev/null | sed 's/^/  /'
DAEMON=down cargo bench -q -p local-stack --bench stack_throughput 2>/dev/null | sed 's/^/  /' | head -3
