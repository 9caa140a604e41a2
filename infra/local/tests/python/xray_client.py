#!/usr/bin/env python3
"""Places one order through the local Lattice the way an instrumented Python caller would.

AWS's X-Ray SDK for Python begins a segment; its `requests` patch records the call as a remote
subsegment and adds the SDK's own `X-Amzn-Trace-Id` to it; botocore signs the request with SigV4
for `vpc-lattice-svcs` with `UNSIGNED-PAYLOAD`, as Lattice's IAM auth requires. The segment goes
to the daemon when it ends. Prints one JSON line: status, trace id, segment id.

Usage: xray_client.py URL ACCESS_KEY SECRET_KEY REGION DAEMON_HOST:PORT ORDER_JSON
"""
import json
import sys

from aws_xray_sdk.core import patch, xray_recorder
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


class LatticeSigV4Auth(SigV4Auth):
    """SigV4 with the payload left unsigned (Lattice does not support payload signing)."""

    def payload(self, request):
        return UNSIGNED_PAYLOAD


def signed_headers(url, body, access_key, secret_key, region):
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"content-type": "application/json", "x-amz-content-sha256": UNSIGNED_PAYLOAD},
    )
    LatticeSigV4Auth(Credentials(access_key, secret_key), "vpc-lattice-svcs", region).add_auth(request)
    return dict(request.headers.items())


def main():
    url, access_key, secret_key, region, daemon, body = sys.argv[1:7]
    xray_recorder.configure(
        service="python-client",
        daemon_address=daemon,
        sampling=False,
        context_missing="RUNTIME_ERROR",
        streaming_threshold=1000,
    )
    patch(["requests"])
    import requests  # patched: every call is a subsegment carrying the SDK's trace header

    segment = xray_recorder.begin_segment("python-client")
    segment.put_annotation("client", "aws-xray-sdk")
    response = requests.post(url, data=body, headers=signed_headers(url, body, access_key, secret_key, region))
    xray_recorder.end_segment()
    print(json.dumps({
        "status": response.status_code,
        "trace_id": segment.trace_id,
        "segment_id": segment.id,
        "answered_trace_header": response.headers.get("x-amzn-trace-id"),
    }))


if __name__ == "__main__":
    main()
