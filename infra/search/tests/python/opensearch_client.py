"""Drives the local search engine with opensearch-py, as an analytics user's script would.

Usage: opensearch_client.py URL [sigv4 ACCESS_KEY SECRET]

Creates an index template, bulk-indexes Lattice access-log entries with the client's bulk helper
(one of them with "-" in a numeric field, which must fail alone), searches and aggregates, and
prints one JSON object with what came back, for the Rust test to assert.
"""
import json
import sys

from opensearchpy import AWSV4SignerAuth, OpenSearch, RequestsHttpConnection, helpers
from opensearchpy.exceptions import NotFoundError


def client(url, args):
    if args and args[0] == "sigv4":
        import botocore.credentials

        credentials = botocore.credentials.Credentials(args[1], args[2])
        auth = AWSV4SignerAuth(credentials, "us-east-1", "es")
        return OpenSearch(hosts=[url], http_auth=auth, connection_class=RequestsHttpConnection)
    return OpenSearch(hosts=[url])


def main():
    url, rest = sys.argv[1], sys.argv[2:]
    os = client(url, rest)
    out = {"info": os.info()["version"]["distribution"]}
    os.indices.put_index_template(
        name="lattice-access",
        body={
            "index_patterns": ["lattice-access-*"],
            "template": {
                "settings": {"number_of_replicas": 0},
                "mappings": {
                    "properties": {
                        "serviceName": {"type": "keyword"},
                        "responseCode": {"type": "integer"},
                        "duration": {"type": "long"},
                        "startTime": {"type": "date"},
                    }
                },
            },
        },
    )
    entries = [
        ("order", 200, 20, "2026-12-01T10:00:05Z"),
        ("order", 200, 40, "2026-12-01T10:00:35Z"),
        ("order", 503, 90, "2026-12-01T10:01:10Z"),
        ("payment", 200, 7, "2026-12-01T10:01:20Z"),
        ("payment", 200, "-", "2026-12-01T10:01:30Z"),
    ]
    actions = [
        {
            "_index": "lattice-access-2026.12.01",
            "_id": f"e{i}",
            "_source": {"serviceName": s, "responseCode": c, "duration": d, "startTime": t},
        }
        for i, (s, c, d, t) in enumerate(entries)
    ]
    indexed, errors = helpers.bulk(os, actions, raise_on_error=False, refresh=True)
    out["indexed"] = indexed
    out["errors"] = [
        {"id": e["index"]["_id"], "status": e["index"]["status"], "type": e["index"]["error"]["type"]}
        for e in errors
    ]
    result = os.search(
        index="lattice-access-*",
        body={
            "size": 3,
            "query": {"range": {"duration": {"gte": 10}}},
            "sort": [{"startTime": "asc"}],
            "aggs": {
                "per_minute": {
                    "date_histogram": {"field": "startTime", "fixed_interval": "1m"},
                    "aggs": {"services": {"terms": {"field": "serviceName"}}},
                },
                "stats": {"stats": {"field": "duration"}},
            },
        },
    )
    out["total"] = result["hits"]["total"]
    out["ids"] = [h["_id"] for h in result["hits"]["hits"]]
    out["per_minute"] = [
        {
            "key": b["key_as_string"],
            "count": b["doc_count"],
            "services": {s["key"]: s["doc_count"] for s in b["services"]["buckets"]},
        }
        for b in result["aggregations"]["per_minute"]["buckets"]
    ]
    out["stats"] = result["aggregations"]["stats"]
    out["count"] = os.count(index="lattice-access-2026.12.01", body={"query": {"term": {"serviceName": "payment"}}})["count"]
    try:
        os.get(index="lattice-access-2026.12.01", id="e4")
        out["missing"] = "found"
    except NotFoundError as error:
        out["missing"] = error.status_code
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
