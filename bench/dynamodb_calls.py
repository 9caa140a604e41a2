#!/usr/bin/env python3
"""DynamoDB calls, capacity units and latency per order, from a run's segment documents.

Reads the documents the local X-Ray daemon accepted (`loadgen --local --raw-documents` writes them
to `target/local-stack/xray-documents.ndjson`, or the state directory's) and prints, per order
(one trace with a loadgen segment):
  - DynamoDB calls by service and operation (the `aws` subsegments),
  - the capacity units those calls consume by DynamoDB's documented rules, for items under 1 KB
    (every item here is): a standard write 1 WCU, a transactional write 2 WCU per item (prepare +
    commit), a strongly consistent read 1 RCU; a write whose condition fails still consumes its
    units. Items per transaction come from the inventory segment's `reservation` metadata
    (distinct SKUs + the reservation row);
  - each operation's duration (p50/p99 ms), and the share of each stateful segment's time spent in
    DynamoDB.
Split by the order's outcome (201 or not), since failed orders add a release.

    python3 bench/dynamodb_calls.py target/local-stack/xray-documents.ndjson
"""

import collections
import json
import statistics
import sys


def walk(node, owner, out):
    """Yield (owner segment, subsegment) for every subsegment under node."""
    for child in node.get("subsegments", []):
        out.append((owner, child))
        walk(child, owner, out)


def percentile(values, q):
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(q * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def main(path):
    traces = collections.defaultdict(list)
    with open(path) as lines:
        for line in lines:
            document = json.loads(line)
            traces[document["trace_id"]].append(document)

    per_outcome = collections.defaultdict(lambda: {"orders": 0, "calls": collections.Counter(), "wcu": 0, "rcu": 0})
    durations = collections.defaultdict(list)
    share = collections.defaultdict(list)
    for documents in traces.values():
        loadgen = [d for d in documents if d.get("name") == "loadgen" and d.get("type") != "subsegment"]
        order = [d for d in documents if d.get("name") == "order" and d.get("origin") == "AWS::Lambda::Function"]
        if not loadgen or not order:
            continue
        status = order[0].get("http", {}).get("response", {}).get("status")
        outcome = "created (201)" if status == 201 else f"not created ({status})"
        bucket = per_outcome[outcome]
        bucket["orders"] += 1
        # The reserve's SKUs; a release touches the same rows.
        skus = 0
        for segment in documents:
            items = segment.get("metadata", {}).get("reservation", {}).get("items", [])
            skus = max(skus, len({item["sku"] for item in items}))
        for segment in documents:
            name = segment.get("name")
            if segment.get("type") == "subsegment" or name not in ("inventory", "payment"):
                continue
            if segment.get("origin") != "AWS::Lambda::Function":
                continue
            calls = []
            walk(segment, name, calls)
            spent = 0.0
            for _, sub in calls:
                if sub.get("namespace") != "aws" or sub.get("name") != "DynamoDB":
                    continue
                operation = sub.get("aws", {}).get("operation", "?")
                took = (sub["end_time"] - sub["start_time"]) * 1000
                spent += took
                durations[(name, operation)].append(took)
                bucket["calls"][(name, operation)] += 1
                if operation == "TransactWriteItems":
                    # A reserve writes each SKU and the reservation; a release the same.
                    bucket["wcu"] += 2 * (skus + 1)
                elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
                    bucket["wcu"] += 1
                elif operation == "GetItem":
                    bucket["rcu"] += 1
            total = (segment["end_time"] - segment["start_time"]) * 1000
            if total > 0:
                share[name].append(spent / total)

    print(f"orders: {sum(b['orders'] for b in per_outcome.values())} (from {path})")
    for outcome, bucket in sorted(per_outcome.items()):
        n = bucket["orders"]
        print(f"{outcome}: {n} orders")
        for (service, operation), count in sorted(bucket["calls"].items()):
            print(f"  {service:<10} {operation:<20} {count / n:5.2f} calls/order")
        calls = sum(bucket["calls"].values())
        print(f"  all: {calls / n:.2f} calls, {bucket['wcu'] / n:.2f} WCU, {bucket['rcu'] / n:.2f} RCU per order")
    print("latency of each call (ms)")
    for (service, operation), values in sorted(durations.items()):
        print(f"  {service:<10} {operation:<20} n={len(values):<6} p50 {percentile(values, 0.50):7.2f}  p99 {percentile(values, 0.99):7.2f}")
    for service, values in sorted(share.items()):
        print(f"  {service}: DynamoDB is {statistics.median(values) * 100:.0f} % of its segment's time (median)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "target/local-stack/xray-documents.ndjson")
