#!/usr/bin/env python3
"""A scripted Lambda extension for the local Lambda service's tests (standard library only).

It speaks the Extensions and Telemetry APIs as the Lambda developer guide gives them, and writes
what it saw, one JSON object per line, to SCRIPT_OUT:
  {"event": "register", "status": ..., "body": ...}
  {"event": "subscribe", "status": ..., "body": ...}       (when SCRIPT_LISTEN_PORT is set)
  {"event": "INVOKE"|"SHUTDOWN", "at_ms": <epoch ms>, "payload": {...}}
  {"event": "telemetry", "at_ms": ..., "records": [...]}   (each POST to its listener)
Knobs (the function's environment, which extensions share):
  SCRIPT_EVENTS           events to register for (default INVOKE,SHUTDOWN)
  SCRIPT_INVOKE_DELAY_MS  work after each INVOKE before calling next again
  SCRIPT_IGNORE_SHUTDOWN  "1": never exit on SHUTDOWN (the service must kill it)
  SCRIPT_LISTEN_PORT      subscribe to the Telemetry API with a listener on this port
  SCRIPT_TYPES            telemetry types (default platform,function)
  SCRIPT_TIMEOUT_MS       buffering timeoutMs (default 25)
"""

import http.server
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"]
NAME = os.path.basename(sys.argv[0])
OUT = os.environ["SCRIPT_OUT"]
LOCK = threading.Lock()


def now_ms():
    return int(time.time() * 1000)


def write(entry):
    with LOCK, open(OUT, "a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")


def call(method, path, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(API + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


class Listener(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        write({"event": "telemetry", "at_ms": now_ms(), "records": json.loads(body)})
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def subscribe(identifier, port):
    host = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")[0]
    server = http.server.ThreadingHTTPServer((host, port), Listener)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    types = os.environ.get("SCRIPT_TYPES", "platform,function").split(",")
    body = {
        "schemaVersion": "2022-12-13",
        "types": types,
        "buffering": {
            "maxItems": 1000,
            "maxBytes": 262144,
            "timeoutMs": int(os.environ.get("SCRIPT_TIMEOUT_MS", "25")),
        },
        "destination": {"protocol": "HTTP", "URI": f"http://sandbox.localdomain:{port}"},
    }
    status, _, answer = call(
        "PUT", "/2022-07-01/telemetry", body, {"Lambda-Extension-Identifier": identifier}
    )
    write({"event": "subscribe", "status": status, "body": answer})


def main():
    events = os.environ.get("SCRIPT_EVENTS", "INVOKE,SHUTDOWN").split(",")
    status, headers, answer = call(
        "POST", "/2020-01-01/extension/register", {"events": events}, {"Lambda-Extension-Name": NAME}
    )
    write({"event": "register", "status": status, "body": answer})
    identifier = headers.get("Lambda-Extension-Identifier")
    if status != 200 or identifier is None:
        return
    if os.environ.get("SCRIPT_LISTEN_PORT"):
        subscribe(identifier, int(os.environ["SCRIPT_LISTEN_PORT"]))
    delay = int(os.environ.get("SCRIPT_INVOKE_DELAY_MS", "0")) / 1000
    while True:
        status, _, answer = call(
            "GET", "/2020-01-01/extension/event/next", None, {"Lambda-Extension-Identifier": identifier}
        )
        if status != 200:
            write({"event": "next-failed", "status": status, "body": answer})
            return
        event = json.loads(answer)
        write({"event": event["eventType"], "at_ms": now_ms(), "payload": event})
        print(f"{NAME} got {event['eventType']}", flush=True)
        if event["eventType"] == "SHUTDOWN":
            if os.environ.get("SCRIPT_IGNORE_SHUTDOWN") == "1":
                time.sleep(60)
            return
        time.sleep(delay)


if __name__ == "__main__":
    main()
