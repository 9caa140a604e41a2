//! An order through the real Lattice adapters to fake inventory and payment peers on loopback:
//! one trace (order segment → inventory and payment subsegments), signed calls, exact headers.

use std::time::Duration;

use aws_credential_types::Credentials;
use lattice_xray::testing::{
    flatten_segments, fresh_root, lattice_request, with_trace_header, FakePeer, ScriptedAnswer,
};
use lattice_xray::{handle_traced, LatticeClient, MemorySink, Telemetry, Timeouts};
use order::handler::RandomOrderIds;
use order::lattice_ports::{LatticeInventory, LatticePayment};
use order::OrderEndpoint;
use serde_json::{json, Value};

const EVENT: &str = include_str!("fixtures/lattice-v2-post-order.json");

struct Stack {
    inventory: FakePeer,
    payment: FakePeer,
    sink: MemorySink,
    telemetry: Telemetry,
    endpoint: OrderEndpoint<LatticeInventory, LatticePayment, RandomOrderIds>,
}

async fn stack(payment_answer: ScriptedAnswer) -> Stack {
    let inventory = FakePeer::start(ScriptedAnswer::new(
        200,
        r#"{"order_id":"ord-1","status":"reserved","units":3}"#,
    ))
    .await;
    let payment = FakePeer::start(payment_answer).await;
    let sink = MemorySink::default();
    let telemetry = Telemetry::with_sink("order", sink.clone(), 1.0);
    let credentials = Credentials::new("AKIDORDER", "secret", None, None, "test");
    let timeouts = Timeouts {
        connect: Duration::from_millis(500),
        request: Duration::from_millis(500),
    };
    let client = LatticeClient::new(
        telemetry.tracer().clone(),
        credentials,
        "ap-southeast-2",
        timeouts,
    )
    .unwrap();
    let endpoint = OrderEndpoint::new(
        LatticeInventory::new(client.clone(), &inventory.url("")),
        LatticePayment::new(client, &payment.url("/")),
        RandomOrderIds,
        "USD",
        Duration::from_secs(2),
    );
    Stack {
        inventory,
        payment,
        sink,
        telemetry,
        endpoint,
    }
}

fn find<'a>(docs: &'a [Value], name: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["name"] == name).collect()
}

#[tokio::test]
async fn one_order_is_one_trace_with_linked_parents() {
    let mut s = stack(ScriptedAnswer::new(200, r#"{"payment_id":"pay_9","order_id":"ord-1","status":"approved","amount":45.48,"currency":"USD"}"#)).await;
    let root = fresh_root();
    let request = with_trace_header(
        lattice_request(EVENT),
        &format!("Root={root};Parent=aaaaaaaaaaaaaaaa;Sampled=1;Lineage=10:1"),
    );
    let response = handle_traced(&s.telemetry, &s.endpoint, request).await;
    assert_eq!(response.status(), 201);

    let datagrams = s.sink.documents();
    assert_eq!(
        datagrams.len(),
        1,
        "one datagram per invocation: {datagrams:#?}"
    );
    let docs = flatten_segments(&datagrams);
    assert_eq!(docs.len(), 3, "{docs:#?}");
    assert!(docs.iter().all(|d| d["trace_id"] == root.to_string()));
    let segment = find(&docs, "order")[0];
    assert_eq!(segment["parent_id"], "aaaaaaaaaaaaaaaa");
    let inventory_sub = find(&docs, "inventory")[0];
    let payment_sub = find(&docs, "payment")[0];
    for sub in [inventory_sub, payment_sub] {
        assert_eq!(sub["type"], "subsegment");
        assert_eq!(sub["namespace"], "remote");
        assert_eq!(sub["parent_id"], segment["id"]);
        assert_eq!(sub["http"]["response"]["status"], 200);
    }
    assert_eq!(
        inventory_sub["http"]["request"]["url"],
        s.inventory.url("/reservations")
    );
    assert_eq!(
        payment_sub["http"]["request"]["url"],
        s.payment.url("/payments")
    );

    let reserve = s.inventory.next_request().await;
    assert_eq!(reserve.path, "/reservations");
    assert_eq!(
        reserve.headers["x-amzn-trace-id"],
        format!(
            "Root={root};Parent={};Sampled=1;Lineage=10:1",
            inventory_sub["id"].as_str().unwrap()
        )
        .as_str()
    );
    assert_eq!(reserve.headers["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
    let auth = reserve.headers["authorization"].to_str().unwrap();
    assert!(
        auth.contains("/ap-southeast-2/vpc-lattice-svcs/aws4_request"),
        "{auth}"
    );
    let body: Value = serde_json::from_slice(&reserve.body).unwrap();
    assert_eq!(
        body,
        json!({"order_id": "ord-1", "items": [{"sku": "SKU-0001", "quantity": 2}, {"sku": "SKU-0002", "quantity": 1}]})
    );

    let charge = s.payment.next_request().await;
    assert_eq!(
        charge.headers["x-amzn-trace-id"],
        format!(
            "Root={root};Parent={};Sampled=1;Lineage=10:1",
            payment_sub["id"].as_str().unwrap()
        )
        .as_str()
    );
    let body: Value = serde_json::from_slice(&charge.body).unwrap();
    assert_eq!(
        body,
        json!({"order_id": "ord-1", "amount": 45.48, "currency": "USD"})
    );
}

#[tokio::test]
async fn decline_shows_the_compensating_release_in_the_trace() {
    let mut s = stack(ScriptedAnswer::new(
        402,
        r#"{"error":"payment_declined","message":"card declined by issuer"}"#,
    ))
    .await;
    let response = handle_traced(&s.telemetry, &s.endpoint, lattice_request(EVENT)).await;
    assert_eq!(response.status(), 402);

    let docs = flatten_segments(&s.sink.documents());
    let segment = find(&docs, "order")[0];
    let inventory_calls = find(&docs, "inventory");
    assert_eq!(inventory_calls.len(), 2, "reserve, then release");
    let payment_sub = find(&docs, "payment")[0];
    assert_eq!(payment_sub["error"], true);
    assert_eq!(payment_sub["http"]["response"]["status"], 402);
    assert_eq!(segment["error"], true);
    assert_eq!(segment["annotations"]["inventory_status"], "released");

    let requests = [
        s.inventory.next_request().await,
        s.inventory.next_request().await,
    ];
    assert_eq!(requests[1].path, "/reservations/ord-1/release");
    let release_sub = inventory_calls
        .iter()
        .find(|d| {
            d["http"]["request"]["url"]
                .as_str()
                .unwrap()
                .ends_with("/release")
        })
        .unwrap();
    assert!(requests[1].headers["x-amzn-trace-id"]
        .to_str()
        .unwrap()
        .contains(&format!("Parent={}", release_sub["id"].as_str().unwrap())));
}

#[tokio::test]
async fn slow_payment_is_504_with_fault_recorded() {
    let s = stack(ScriptedAnswer::new(200, "{}").delayed(Duration::from_secs(2))).await;
    let response = handle_traced(&s.telemetry, &s.endpoint, lattice_request(EVENT)).await;
    assert_eq!(response.status(), 504);
    let docs = flatten_segments(&s.sink.documents());
    let payment_sub = find(&docs, "payment")[0];
    assert_eq!(payment_sub["fault"], true);
    assert_eq!(payment_sub["cause"]["exceptions"][0]["type"], "Timeout");
    assert_eq!(find(&docs, "order")[0]["fault"], true);
    assert_eq!(
        find(&docs, "inventory").len(),
        2,
        "released after the timeout"
    );
}
