#!/usr/bin/env python3
"""Accounts for a local run (bench/nothing_lost.sh): loadgen's report, the local stack's access
log and the raw segment documents its daemon accepted. Prints a table; exit 1 on any loss.

Exit 1 also when orders were refused (503) or unanswered: nothing lost, but not all served.

Usage: nothing_lost.py REPORT.json STACK_DIR RATE DURATION
"""
import json
import pathlib
import sys


def walk(node):
    """A document and every nested subsegment."""
    yield node
    for child in node.get("subsegments", []):
        yield from walk(child)


def main():
    report = json.loads(pathlib.Path(sys.argv[1]).read_text())
    stack_dir = pathlib.Path(sys.argv[2])
    rate, duration = sys.argv[3], sys.argv[4]
    requests, local, inspection = report["requests"], report["local"], report["inspection"]

    received = {"loadgen": 0, "order": 0, "inventory": 0, "payment": 0, "facade": 0}
    calls = {"inventory": 0, "payment": 0}
    documents = (stack_dir / "xray-documents.ndjson").read_text().splitlines()
    for line in documents:
        document = json.loads(line)
        name = document.get("name")
        if name == "loadgen":
            received["loadgen"] += 1
        elif "xray" in document.get("aws", {}):
            received[name] += 1
            if name == "order":
                for node in walk(document):
                    if node.get("namespace") == "remote" and node.get("name") in calls:
                        calls[node["name"]] += 1
        else:
            received["facade"] += 1

    lines = {service: log["requests"] for service, log in local["access_log"].items()}
    # Lines Lattice answered without running the function (throttled, no target, auth denied),
    # by service (the services' paths: /orders, /reservations, /payments).
    service_of = {"orders": "order", "reservations": "inventory", "payments": "payment"}
    not_invoked = {service: 0 for service in service_of.values()}
    for text in (stack_dir / "access-log.jsonl").read_text().splitlines():
        line = json.loads(text)
        if line["failureReason"] in ("LambdaThrottled", "NoTarget") or line["authDeniedReason"] != "-":
            not_invoked[service_of[line["requestPath"].split("/")[1]]] += 1
    invocations = {s: lines.get(s, 0) - not_invoked[s] for s in not_invoked}
    answered = sum(report["statuses"].values())
    unanswered = requests["sent"] - answered
    loadgen_sent = requests["sent"] - report["segments_not_sent"]
    rows = [
        # (what, expected, measured)
        ("traces found / expected", inspection["traces_expected"], inspection["traces_found"]),
        # An order Lattice refused has no order segment to find: its trace is whole as it is.
        ("traces complete / checked, less orders Lattice refused", inspection["traces_checked"] - not_invoked["order"],
         inspection["traces_complete"]),
        ("order access-log lines / orders sent", requests["sent"], lines.get("order", 0)),
        ("inventory access-log lines / order's calls (traces)", calls["inventory"], lines.get("inventory", 0)),
        ("payment access-log lines / order's calls (traces)", calls["payment"], lines.get("payment", 0)),
        ("loadgen documents received / sent", loadgen_sent, received["loadgen"]),
        ("order documents received / invocations", invocations["order"], received["order"]),
        ("inventory documents received / invocations", invocations["inventory"], received["inventory"]),
        ("payment documents received / invocations", invocations["payment"], received["payment"]),
        ("facade documents received / sent", local["facade_documents_sent"], received["facade"]),
        ("documents in the raw log / accepted", local["accepted_documents"], len(documents)),
        ("documents refused by the daemon", 0, local["rejected_documents"]),
        ("traces evicted", 0, local["evicted_traces"]),
    ]
    print(f"{rate}/s for {duration}: dispatched {report['dispatched_rps'] or 0:.1f}/s, "
          f"answered {report['throughput_rps']:.1f}/s, late {requests['late']}, dropped {requests['dropped']}, "
          f"p99 {report['latency']['corrected']['p99_ms']:.1f} ms (corrected)")
    print(f"statuses {dict(report['statuses'])}, no answer {unanswered}; "
          f"order access-log statuses {dict(local['access_log'].get('order', {}).get('statuses', {}))}")
    print(f"{'check':<56} {'expected':>10} {'measured':>10}")
    # Served, not a loss: an order loadgen stopped waiting for still ran and was recorded.
    print(f"{'orders answered / sent':<56} {requests['sent']:>10} {answered:>10}  "
          f"{'ok' if answered == requests['sent'] else 'NOT SERVED'}")
    lost = False
    for what, expected, measured in rows:
        ok = expected == measured
        lost |= not ok
        print(f"{what:<56} {expected:>10} {measured:>10}  {'ok' if ok else 'MISMATCH'}")
    refused = sum(not_invoked.values())
    if refused or unanswered:
        print(f"refused by Lattice without running the function: {not_invoked}; "
              f"orders with no answer: {unanswered} (past this machine's capacity at {rate}/s)")
    if lost:
        print("SOMETHING WAS LOST OR COUNTED TWICE")
    elif refused or unanswered:
        print("nothing lost, but not every order was served")
    else:
        print("nothing lost, every order served")
    sys.exit(1 if lost or refused or unanswered else 0)


if __name__ == "__main__":
    main()
