#!/usr/bin/env python3
"""The same segment work as `cargo bench -p lattice-xray --bench tracing_overhead`'s "traced"
case, done by AWS's X-Ray SDK for Python: a segment continuing an upstream header, six
annotations, one metadata namespace, two remote subsegments with their outgoing trace headers and
HTTP fields, sent to a daemon socket on loopback when the segment ends. Prints µs per request for
the handler's own work alone and with the SDK's tracing.

Usage: python_xray_sdk.py [REQUESTS]   (the project venv: target/ci-tools/venv/bin/python)
"""
import json
import socket
import sys
import threading
import time

from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.core.models.trace_header import TraceHeader

REQUESTS = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
ITEMS = [
    {"sku": "SKU-0001", "quantity": 2, "unit_price": 19.99},
    {"sku": "SKU-0002", "quantity": 1, "unit_price": 5.5},
]


def handler_work(order_id):
    return json.dumps({"order_id": order_id, "status": "created", "payment_id": "pay_7",
                       "total": 45.48, "currency": "USD", "item_count": 2})


def traced_request(upstream):
    segment = xray_recorder.begin_segment(
        "order", traceid=upstream.root, parent_id=upstream.parent, sampling=1)
    segment.put_annotation("order_id", "ord-1")
    segment.put_annotation("customer_id", "cust-42")
    segment.put_annotation("item_count", 2)
    segment.put_annotation("order_total", 45.48)
    segment.put_metadata("items", ITEMS, "order")
    for service, url in (("inventory", "https://inventory.example/reservations"),
                         ("payment", "https://payment.example/payments")):
        call = xray_recorder.begin_subsegment(service, namespace="remote")
        call.put_http_meta("method", "POST")
        call.put_http_meta("url", url)
        TraceHeader(root=segment.trace_id, parent=call.id, sampled=1).to_header_str()
        call.put_http_meta("status", 200)
        xray_recorder.end_subsegment()
    segment.put_annotation("inventory_status", "reserved")
    segment.put_annotation("payment_status", "approved")
    body = handler_work("ord-1")
    segment.put_http_meta("status", 201)
    xray_recorder.end_segment()
    return body


def per_request_us(work, n):
    for _ in range(min(n, 2000)):
        work()
    started = time.perf_counter()
    for _ in range(n):
        work()
    return (time.perf_counter() - started) / n * 1e6


def main():
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    received = [0]

    def drain():
        while True:
            daemon.recv(65536)
            received[0] += 1

    threading.Thread(target=drain, daemon=True).start()
    host, port = daemon.getsockname()
    xray_recorder.configure(daemon_address=f"{host}:{port}", sampling=False,
                            context_missing="LOG_ERROR", streaming_threshold=1000)
    upstream = TraceHeader.from_header_str(
        f"Root=1-{int(time.time()):08x}-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    untraced = per_request_us(lambda: handler_work("ord-1"), REQUESTS)
    traced = per_request_us(lambda: traced_request(upstream), REQUESTS)
    time.sleep(0.2)
    print(f"python aws-xray-sdk, {REQUESTS} requests: handler untraced {untraced:.2f} us, "
          f"traced (UDP to loopback) {traced:.2f} us; datagrams received {received[0]}")


if __name__ == "__main__":
    main()
