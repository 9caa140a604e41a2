//! The trace context policy, asserted on the exact segment documents the exporter sends.
//! Requests are Lattice V2 events (tests/fixtures) decoded by lambda_http, as in Lambda.

use lattice_xray::lambda_http::{Body, Request, Response};
use lattice_xray::testing::{fresh_root, lattice_request, with_lambda_trace_id, with_trace_header};
use lattice_xray::{
    annotate, handle_traced, keys, record_metadata, ApiError, Endpoint, MemorySink, Telemetry,
};
use serde_json::{json, Value};

const POST_JSON: &str = include_str!("fixtures/lattice-v2-post-json.json");

/// Annotates like a service would and answers with the status named in the path's query.
struct Recorder {
    status: u16,
}

impl Endpoint for Recorder {
    async fn handle(&self, _request: Request) -> Response<Body> {
        annotate(&keys::ORDER_ID, "ord-1");
        annotate(&keys::ORDER_TOTAL, 42.5);
        annotate(&keys::ITEM_COUNT, 2u32);
        record_metadata("payment", json!({"currency": "EUR", "amount": 42.5}));
        match self.status {
            200 => lattice_xray::json_response(http::StatusCode::OK, &json!({"ok": true})),
            status => ApiError::new(
                http::StatusCode::from_u16(status).unwrap(),
                "declined",
                "card declined by issuer",
            )
            .into_response(),
        }
    }
}

async fn run(request: Request, status: u16, ratio: f64) -> (Response<Body>, Vec<Value>) {
    let sink = MemorySink::default();
    let telemetry = Telemetry::with_sink("payment", sink.clone(), ratio);
    let response = handle_traced(&telemetry, &Recorder { status }, request).await;
    assert_eq!(
        telemetry.open_invocations().in_flight(),
        0,
        "no invocation's spans are held after it answered, sampled or not"
    );
    (response, sink.documents())
}

fn header(response: &Response<Body>) -> &str {
    response.headers()["x-amzn-trace-id"].to_str().unwrap()
}

fn assert_common_segment(doc: &Value) {
    assert_eq!(doc["name"], "payment");
    assert_eq!(doc["origin"], "AWS::Lambda::Function");
    assert!(doc.get("type").is_none(), "a segment has no type: {doc}");
    assert_eq!(doc["http"]["request"]["method"], "POST");
    assert_eq!(
        doc["http"]["request"]["url"],
        "https://payment-0a1b2c3d4e5f6a7b8.7d67968.vpc-lattice-svcs.ap-southeast-2.on.aws/payments"
    );
    assert_eq!(doc["http"]["request"]["client_ip"], "10.0.2.100");
    assert_eq!(doc["http"]["request"]["x_forwarded_for"], true);
    assert_eq!(doc["http"]["request"]["user_agent"], "order/0.1.0");
    assert_eq!(doc["annotations"]["order_id"], "ord-1");
    assert_eq!(doc["annotations"]["order_total"], 42.5);
    assert_eq!(doc["annotations"]["item_count"], 2);
    assert_eq!(
        doc["metadata"]["payment"],
        json!({"currency": "EUR", "amount": 42.5})
    );
    let id = doc["id"].as_str().unwrap();
    assert_eq!(id.len(), 16);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(doc["end_time"].as_f64().unwrap() >= doc["start_time"].as_f64().unwrap());
}

#[tokio::test]
async fn continues_upstream_trace_with_root_and_parent() {
    let root = fresh_root();
    let lambda_root = fresh_root();
    let request = with_trace_header(
        lattice_request(POST_JSON),
        &format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1|68fd508a:5"),
    );
    let lambda_id = format!("Root={lambda_root};Parent=1111111111111111;Sampled=1");
    let request = with_lambda_trace_id(request, &lambda_id);
    let (response, docs) = run(request, 200, 1.0).await;

    assert_eq!(docs.len(), 1, "{docs:?}");
    let doc = &docs[0];
    assert_common_segment(doc);
    assert_eq!(doc["trace_id"], root.to_string());
    assert_eq!(doc["parent_id"], "53995c3f42cd8ad8");
    assert_eq!(doc["http"]["response"]["status"], 200);
    assert_eq!(doc["http"]["response"]["content_length"], 11);
    assert_eq!(
        doc["metadata"]["xray_context"],
        json!({"source": "upstream"})
    );
    assert_eq!(doc["metadata"]["lambda"], json!({"trace_id": lambda_id}));
    assert!(doc.get("error").is_none() && doc.get("fault").is_none());
    assert_eq!(header(&response), format!("Root={root};Sampled=1"));
}

/// The SDK propagator alone would start a new trace here; the Root must survive.
#[tokio::test]
async fn keeps_root_when_header_has_no_parent() {
    let root = fresh_root();
    let request = with_trace_header(
        lattice_request(POST_JSON),
        &format!("Root={root};Sampled=1"),
    );
    let (response, docs) = run(request, 200, 1.0).await;

    assert_eq!(docs.len(), 1);
    let doc = &docs[0];
    assert_common_segment(doc);
    assert_eq!(doc["trace_id"], root.to_string());
    assert!(
        doc.get("parent_id").is_none(),
        "root segment of that trace: {doc}"
    );
    assert_eq!(
        doc["metadata"]["xray_context"],
        json!({"source": "upstream_root"})
    );
    assert_eq!(header(&response), format!("Root={root};Sampled=1"));
}

#[tokio::test]
async fn parents_under_lambda_function_segment_without_header() {
    let lambda_root = fresh_root();
    let lambda_id = format!("Root={lambda_root};Parent=7c4b2a0f9e8d1c3b;Sampled=1");
    let request = with_lambda_trace_id(lattice_request(POST_JSON), &lambda_id);
    let (_, docs) = run(request, 200, 1.0).await;

    let doc = &docs[0];
    assert_common_segment(doc);
    assert_eq!(doc["trace_id"], lambda_root.to_string());
    assert_eq!(doc["parent_id"], "7c4b2a0f9e8d1c3b");
    assert_eq!(
        doc["metadata"]["xray_context"],
        json!({"source": "lambda_function"})
    );
    assert!(doc["metadata"].get("lambda").is_none());
}

#[tokio::test]
async fn starts_new_trace_when_nothing_arrives() {
    let (response, docs) = run(lattice_request(POST_JSON), 200, 1.0).await;
    let doc = &docs[0];
    assert_common_segment(doc);
    let trace_id = doc["trace_id"].as_str().unwrap();
    let parsed: lattice_xray::header::XrayTraceId = trace_id.parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    assert!(
        now - parsed.epoch_seconds() < 60,
        "X-Ray ids carry the start time"
    );
    assert!(doc.get("parent_id").is_none());
    assert_eq!(header(&response), format!("Root={trace_id};Sampled=1"));
}

#[tokio::test]
async fn garbage_header_falls_back_to_lambda_and_says_why() {
    let lambda_root = fresh_root();
    let lambda_id = format!("Root={lambda_root};Parent=7c4b2a0f9e8d1c3b;Sampled=1");
    let request = with_trace_header(lattice_request(POST_JSON), "Root=banana;Parent=xyz");
    let request = with_lambda_trace_id(request, &lambda_id);
    let (_, docs) = run(request, 200, 1.0).await;
    let doc = &docs[0];
    assert_eq!(doc["trace_id"], lambda_root.to_string());
    assert_eq!(
        doc["metadata"]["xray_context"],
        json!({"source": "lambda_function", "rejected_header": "invalid trace header: malformed Root \"banana\""})
    );
}

#[tokio::test]
async fn honours_sampled_zero() {
    let root = fresh_root();
    let request = with_trace_header(
        lattice_request(POST_JSON),
        &format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=0"),
    );
    let (response, docs) = run(request, 200, 1.0).await;
    assert!(docs.is_empty(), "nothing is sent for Sampled=0: {docs:?}");
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response), format!("Root={root};Sampled=0"));
}

#[tokio::test]
async fn answers_requested_sampling_decision() {
    let root = fresh_root();
    let ask = format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=?");
    let (response, docs) = run(
        with_trace_header(lattice_request(POST_JSON), &ask),
        200,
        0.0,
    )
    .await;
    assert!(docs.is_empty());
    assert_eq!(header(&response), format!("Root={root};Sampled=0"));

    let (response, docs) = run(
        with_trace_header(lattice_request(POST_JSON), &ask),
        200,
        1.0,
    )
    .await;
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["parent_id"], "53995c3f42cd8ad8");
    assert_eq!(header(&response), format!("Root={root};Sampled=1"));
}

#[tokio::test]
async fn flags_follow_status_and_cause_is_recorded() {
    // (status, error, throttle, fault)
    let table = [
        (402, true, false, false),
        (429, true, true, false),
        (503, false, false, true),
    ];
    for (status, error, throttle, fault) in table {
        let (response, docs) = run(lattice_request(POST_JSON), status, 1.0).await;
        assert_eq!(response.status().as_u16(), status);
        let doc = &docs[0];
        assert_eq!(doc["http"]["response"]["status"], status);
        assert_eq!(
            doc.get("error").and_then(Value::as_bool).unwrap_or(false),
            error,
            "{status}: {doc}"
        );
        assert_eq!(
            doc.get("throttle")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            throttle,
            "{status}"
        );
        assert_eq!(
            doc.get("fault").and_then(Value::as_bool).unwrap_or(false),
            fault,
            "{status}"
        );
        let exception = &doc["cause"]["exceptions"][0];
        assert_eq!(exception["message"], "card declined by issuer", "{doc}");
        assert_eq!(exception["type"], "declined");
    }
}

#[tokio::test]
async fn datagrams_carry_the_daemon_header_and_fit_in_one_packet() {
    let sink = MemorySink::default();
    let telemetry = Telemetry::with_sink("payment", sink.clone(), 1.0);
    handle_traced(
        &telemetry,
        &Recorder { status: 200 },
        lattice_request(POST_JSON),
    )
    .await;
    let datagrams = sink.datagrams();
    assert_eq!(datagrams.len(), 1);
    assert!(datagrams[0].starts_with(b"{\"format\": \"json\", \"version\": 1}\n"));
    assert!(datagrams[0].len() < 64 * 1024);
}

/// A key X-Ray would refuse never reaches the document; it is counted instead.
struct BadKeys;

impl Endpoint for BadKeys {
    async fn handle(&self, _request: Request) -> Response<Body> {
        lattice_xray::annotate_dynamic("order-id", "x");
        lattice_xray::annotate_dynamic("", 1i64);
        lattice_xray::annotate_dynamic("fine_key", true);
        lattice_xray::json_response(http::StatusCode::OK, &json!({}))
    }
}

#[tokio::test]
async fn rejected_annotation_keys_are_counted_not_sent() {
    let before = lattice_xray::annotation::rejected_annotations();
    let sink = MemorySink::default();
    let telemetry = Telemetry::with_sink("payment", sink.clone(), 1.0);
    handle_traced(&telemetry, &BadKeys, lattice_request(POST_JSON)).await;
    let doc = &sink.documents()[0];
    assert_eq!(doc["annotations"], json!({"fine_key": true}));
    assert_eq!(lattice_xray::annotation::rejected_annotations() - before, 2);
}

#[tokio::test]
async fn a_root_x_ray_would_refuse_is_not_continued() {
    // Valid syntax, but from 2016 (X-Ray keeps 30 days) or from the far future: every document
    // in such a trace would be dropped, so the request gets Lambda's trace instead, and says why.
    for stale in [
        "1-5759e988-bd862e3fe1be46a994272793",
        "1-ffffffff-bd862e3fe1be46a994272793",
    ] {
        let lambda_root = fresh_root();
        let lambda_id = format!("Root={lambda_root};Parent=7c4b2a0f9e8d1c3b;Sampled=1");
        let request = with_trace_header(
            lattice_request(POST_JSON),
            &format!("Root={stale};Parent=53995c3f42cd8ad8;Sampled=1"),
        );
        let request = with_lambda_trace_id(request, &lambda_id);
        let (response, docs) = run(request, 200, 1.0).await;
        assert_eq!(response.status(), 200);
        assert_eq!(docs.len(), 1, "{stale}");
        assert_eq!(docs[0]["trace_id"], lambda_root.to_string());
        assert_eq!(docs[0]["parent_id"], "7c4b2a0f9e8d1c3b");
        assert_eq!(
            docs[0]["metadata"]["xray_context"],
            json!({"source": "lambda_function", "rejected_header": format!("Root {stale} is outside the time X-Ray accepts (older than 30 days or more than 5 minutes ahead)")})
        );
    }
}
