//! The payment service fed Lattice V2 events, with exact responses and segment fields.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use lattice_xray::lambda_http::{Body, Request, Response};
use lattice_xray::simulation::LatencyRange;
use lattice_xray::testing::{fresh_root, lattice_request, with_trace_header};
use lattice_xray::{handle_traced, MemorySink, Telemetry};
use payment::charge::{ChargeOutcome, ChargeRequest};
use payment::gateway::{Gateway, GatewayBehaviour, SimulatedGateway};
use payment::ledger::MemoryLedger;
use payment::PaymentEndpoint;
use serde_json::{json, Value};

const EVENT: &str = include_str!("fixtures/lattice-v2-post-payment.json");

/// Answers from a script and counts calls.
#[derive(Clone)]
struct ScriptedGateway {
    outcome: ChargeOutcome,
    calls: Arc<AtomicUsize>,
}

impl Gateway for ScriptedGateway {
    async fn charge(&self, _request: &ChargeRequest) -> ChargeOutcome {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.outcome.clone()
    }
}

fn scripted(
    outcome: ChargeOutcome,
) -> (
    PaymentEndpoint<ScriptedGateway, MemoryLedger>,
    Arc<AtomicUsize>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    (
        PaymentEndpoint::new(
            ScriptedGateway {
                outcome,
                calls: Arc::clone(&calls),
            },
            MemoryLedger::default(),
        ),
        calls,
    )
}

fn event_with_body(body: &str) -> Request {
    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["body"] = Value::String(body.to_owned());
    lattice_request(&event.to_string())
}

async fn call<G: Gateway>(
    endpoint: &PaymentEndpoint<G, MemoryLedger>,
    request: Request,
) -> (u16, Value, Vec<Value>) {
    let sink = MemorySink::default();
    let telemetry = Telemetry::with_sink("payment", sink.clone(), 1.0);
    let response: Response<Body> = handle_traced(&telemetry, endpoint, request).await;
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("unexpected body {other:?}"),
    };
    assert_eq!(response.headers()["content-type"], "application/json");
    (response.status().as_u16(), body, sink.documents())
}

#[tokio::test]
async fn approves_and_annotates() {
    let (endpoint, _) = scripted(ChargeOutcome::Approved {
        payment_id: "pay_1".into(),
    });
    let root = fresh_root();
    let request = with_trace_header(
        lattice_request(EVENT),
        &format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1"),
    );
    let (status, body, docs) = call(&endpoint, request).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"payment_id": "pay_1", "order_id": "ord-1", "status": "approved", "amount": 42.5, "currency": "EUR"})
    );
    let segment = &docs[0];
    assert_eq!(segment["trace_id"], root.to_string());
    assert_eq!(segment["parent_id"], "53995c3f42cd8ad8");
    assert_eq!(segment["name"], "payment");
    assert_eq!(
        segment["annotations"],
        json!({"order_id": "ord-1", "payment_status": "approved", "idempotent_replay": false})
    );
    assert_eq!(
        segment["metadata"]["payment"],
        json!({"order_id": "ord-1", "amount": 42.5, "currency": "EUR"})
    );
}

#[tokio::test]
async fn retried_charge_returns_first_answer_and_never_charges_twice() {
    let (endpoint, calls) = scripted(ChargeOutcome::Approved {
        payment_id: "pay_1".into(),
    });
    let (_, first, _) = call(&endpoint, lattice_request(EVENT)).await;
    let (status, second, docs) = call(&endpoint, lattice_request(EVENT)).await;
    assert_eq!(status, 200);
    assert_eq!(first, second);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(docs[0]["annotations"]["idempotent_replay"], true);
}

#[tokio::test]
async fn declines_with_402_and_remembers_the_decline() {
    let (endpoint, calls) = scripted(ChargeOutcome::Declined {
        reason: "card declined by issuer".into(),
    });
    let (status, body, docs) = call(&endpoint, lattice_request(EVENT)).await;
    assert_eq!(status, 402);
    assert_eq!(
        body,
        json!({"error": "payment_declined", "message": "card declined by issuer"})
    );
    assert_eq!(docs[0]["error"], true);
    assert_eq!(docs[0]["annotations"]["payment_status"], "declined");
    let (status, _, _) = call(&endpoint, lattice_request(EVENT)).await;
    assert_eq!(status, 402);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn gateway_fault_is_503_and_retry_charges_again() {
    let (endpoint, calls) = scripted(ChargeOutcome::GatewayFault);
    let (status, body, docs) = call(&endpoint, lattice_request(EVENT)).await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        json!({"error": "gateway_fault", "message": "the payment gateway failed; nothing was charged"})
    );
    assert_eq!(docs[0]["fault"], true);
    assert_eq!(docs[0]["cause"]["exceptions"][0]["type"], "gateway_fault");
    call(&endpoint, lattice_request(EVENT)).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "a fault is not settled, so a retry charges"
    );
}

#[tokio::test]
async fn bad_input_table() {
    let (endpoint, calls) = scripted(ChargeOutcome::Approved {
        payment_id: "pay_1".into(),
    });
    // (body, status, expected JSON body)
    let table: Vec<(&str, u16, Value)> = vec![
        (
            r#"{"order_id":"o","amount":1,"currency":"eur"}"#,
            400,
            json!({"error": "validation_failed", "field": "currency", "message": "currency must be a three-letter ISO 4217 code such as USD"}),
        ),
        (
            r#"{"order_id":"o","amount":0,"currency":"EUR"}"#,
            400,
            json!({"error": "validation_failed", "field": "amount", "message": "amount must be a number greater than 0"}),
        ),
        (
            r#"{"order_id":"","amount":1,"currency":"EUR"}"#,
            400,
            json!({"error": "validation_failed", "field": "order_id", "message": "order_id must be 1-128 characters"}),
        ),
        (
            r#"{"order_id":"o","amount":"ten","currency":"EUR"}"#,
            400,
            json!({"error": "validation_failed", "field": "amount", "message": "invalid type: string \"ten\", expected f64"}),
        ),
        (
            r#"{"order_id":"o","amount":1,"currency":"EUR","tip":5}"#,
            400,
            json!({"error": "validation_failed", "field": "tip", "message": "unknown field `tip`, expected one of `order_id`, `amount`, `currency`"}),
        ),
        (
            r#"{"order_id":"o","amount":1}"#,
            400,
            json!({"error": "validation_failed", "message": "missing field `currency`"}),
        ),
        (
            r#"{"order_id": "#,
            400,
            json!({"error": "invalid_json", "message": "body is not valid JSON (EOF while parsing a value)"}),
        ),
        (
            r#"{"order_id":"o","amount":1,"currency":"EUR"} trailing"#,
            400,
            json!({"error": "invalid_json", "message": "trailing characters after the JSON value"}),
        ),
    ];
    for (body, status, expected) in table {
        let (got_status, got_body, docs) = call(&endpoint, event_with_body(body)).await;
        assert_eq!((got_status, &got_body), (status, &expected), "body {body}");
        assert_eq!(
            docs[0]["error"], true,
            "4xx marks the segment error: {body}"
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "nothing invalid reaches the gateway"
    );
}

#[tokio::test]
async fn routing_and_media_type() {
    let (endpoint, _) = scripted(ChargeOutcome::Approved {
        payment_id: "pay_1".into(),
    });

    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["path"] = json!("/refunds");
    let (status, body, _) = call(&endpoint, lattice_request(&event.to_string())).await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"error": "not_found", "message": "no route for /refunds"})
        )
    );

    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["method"] = json!("GET");
    event["body"] = Value::Null;
    let (status, body, _) = call(&endpoint, lattice_request(&event.to_string())).await;
    assert_eq!(
        (status, body),
        (
            405,
            json!({"error": "method_not_allowed", "message": "GET is not allowed here; use POST"})
        )
    );

    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["headers"]["content-type"] = json!(["text/plain"]);
    let (status, body, _) = call(&endpoint, lattice_request(&event.to_string())).await;
    assert_eq!(
        (status, body),
        (
            415,
            json!({"error": "unsupported_media_type", "message": "content-type must be application/json"})
        )
    );

    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["body"] = json!(format!(
        "{{\"order_id\":\"o\",\"amount\":1,\"currency\":\"EUR\",\"pad\":\"{}\"}}",
        "x".repeat(70_000)
    ));
    let (status, body, _) = call(&endpoint, lattice_request(&event.to_string())).await;
    assert_eq!(
        (status, body),
        (
            413,
            json!({"error": "payload_too_large", "message": "body is larger than 65536 bytes"})
        )
    );
}

#[tokio::test]
async fn decodes_base64_bodies_as_lattice_sends_them() {
    let (endpoint, _) = scripted(ChargeOutcome::Approved {
        payment_id: "pay_1".into(),
    });
    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    let json_body = r#"{"order_id":"ord-b64","amount":3.5,"currency":"USD"}"#;
    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(json_body));
    event["isBase64Encoded"] = json!(true);
    let (status, body, _) = call(&endpoint, lattice_request(&event.to_string())).await;
    assert_eq!(status, 200);
    assert_eq!(body["order_id"], "ord-b64");
}

#[tokio::test(start_paused = true)]
async fn simulated_gateway_is_seeded_and_takes_its_latency() {
    let behaviour = GatewayBehaviour {
        decline_rate: 0.05,
        fault_rate: 0.05,
        latency: LatencyRange {
            min_ms: 100,
            max_ms: 500,
        },
    };
    let a = SimulatedGateway::new(behaviour, 2);
    let b = SimulatedGateway::new(behaviour, 2);
    let request = ChargeRequest {
        order_id: "o".into(),
        amount: 1.0,
        currency: "USD".into(),
    };
    let mut failures = 0;
    for _ in 0..1000 {
        let started = tokio::time::Instant::now();
        let outcome = a.charge(&request).await;
        let took = started.elapsed().as_millis();
        assert!((100..=500).contains(&took), "latency {took} ms");
        assert_eq!(
            outcome,
            b.charge(&request).await,
            "same seed, same outcomes"
        );
        if !matches!(outcome, ChargeOutcome::Approved { .. }) {
            failures += 1;
        }
    }
    assert!(
        (60..=140).contains(&failures),
        "about 10 % fail: {failures}/1000"
    );
}
