//! Every kind of document this crate emits validates against AWS's X-Ray segment document schema
//! v1.0.0 (tests/fixtures/xray-segmentdocument-schema-v1.0.0.json, provenance in its README).

use std::time::Duration;

use aws_credential_types::Credentials;
use bytes::Bytes;
use lattice_xray::lambda_http::{Body, Request, Response};
use lattice_xray::testing::{
    fresh_root, lattice_request, with_lambda_trace_id, with_trace_header, FakePeer, ScriptedAnswer,
};
use lattice_xray::{
    annotate, handle_traced, keys, record_metadata, ApiError, Endpoint, LatticeClient, MemorySink,
    Telemetry, Timeouts,
};
use serde_json::{json, Value};

const SCHEMA: &str = include_str!("fixtures/xray-segmentdocument-schema-v1.0.0.json");
const POST_JSON: &str = include_str!("fixtures/lattice-v2-post-json.json");

/// Calls three peers (ok, 503, too slow), annotates, records metadata, and fails with 502.
struct Caller {
    client: LatticeClient,
    urls: [String; 3],
    huge_metadata: bool,
}

impl Endpoint for Caller {
    async fn handle(&self, _request: Request) -> Response<Body> {
        annotate(&keys::ORDER_ID, "ord-1");
        annotate(&keys::ORDER_TOTAL, 12.5);
        annotate(&keys::ITEM_COUNT, 3u32);
        annotate(&keys::PAYMENT_STATUS, "fault");
        record_metadata(
            "order",
            json!({"items": [{"sku": "SKU-0001"}], "note": null}),
        );
        record_metadata("scalar", json!(7));
        if self.huge_metadata {
            record_metadata("blob", json!({"data": "x".repeat(70_000)}));
        }
        for (service, url) in ["inventory", "payment", "slow"].iter().zip(&self.urls) {
            let _ = self
                .client
                .post_json(service, url, Bytes::from_static(b"{}"))
                .await;
        }
        ApiError::new(
            http::StatusCode::BAD_GATEWAY,
            "downstream_fault",
            "payment failed",
        )
        .into_response()
    }
}

#[tokio::test]
async fn every_document_validates() {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::draft4::new(&schema).expect("schema compiles");

    let ok = FakePeer::start(ScriptedAnswer::new(200, "{}")).await;
    let fault = FakePeer::start(ScriptedAnswer::new(503, "{}")).await;
    let slow =
        FakePeer::start(ScriptedAnswer::new(200, "{}").delayed(Duration::from_secs(1))).await;
    let sink = MemorySink::default();
    let telemetry = Telemetry::with_sink("order", sink.clone(), 1.0);
    let timeouts = Timeouts {
        connect: Duration::from_millis(200),
        request: Duration::from_millis(100),
    };
    let client = LatticeClient::new(
        telemetry.tracer().clone(),
        Credentials::new("AKID", "secret", None, None, "test"),
        "us-east-1",
        timeouts,
    )
    .unwrap();
    let mut caller = Caller {
        client,
        urls: [ok.url("/a"), fault.url("/b"), slow.url("/c")],
        huge_metadata: false,
    };

    let root = fresh_root();
    let requests = [
        with_trace_header(
            lattice_request(POST_JSON),
            &format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1"),
        ),
        with_trace_header(
            lattice_request(POST_JSON),
            &format!("Root={};Sampled=1", fresh_root()),
        ),
        with_lambda_trace_id(
            lattice_request(POST_JSON),
            &format!("Root={};Parent=53995c3f42cd8ad8;Sampled=1", fresh_root()),
        ),
        lattice_request(POST_JSON),
    ];
    for request in requests {
        handle_traced(&telemetry, &caller, request).await;
    }
    let docs = sink.documents();
    assert_eq!(docs.len(), 4, "one datagram per request");
    assert!(docs
        .iter()
        .all(|d| d["subsegments"].as_array().map(Vec::len) == Some(3)));

    // Too big to nest: subsegments go out as independent documents, the segment is dropped and counted.
    caller.huge_metadata = true;
    sink.clear();
    handle_traced(&telemetry, &caller, lattice_request(POST_JSON)).await;
    let independent = sink.documents();
    assert_eq!(independent.len(), 3, "{independent:#?}");
    assert!(independent
        .iter()
        .all(|d| d["type"] == "subsegment" && d.get("parent_id").is_some()));
    assert_eq!(
        telemetry
            .stats()
            .oversized
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    for doc in docs.iter().chain(&independent) {
        let errors: Vec<String> = validator
            .iter_errors(doc)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{doc:#}\n{errors:#?}");
    }
    let segment = docs.iter().find(|d| d.get("type").is_none()).unwrap();
    assert_eq!(
        segment["metadata"]["scalar"],
        json!({"value": 7}),
        "namespaces are always objects"
    );

    // The shape the translator alone would write (flat scalar metadata) is what the schema refuses.
    let mut flat = segment.clone();
    flat["metadata"] = json!({"order_id": "ord-1"});
    assert!(
        !validator.is_valid(&flat),
        "the validator catches flat metadata"
    );
}
