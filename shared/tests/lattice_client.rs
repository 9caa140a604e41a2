//! The Lattice client against a fake peer on loopback: exact outgoing headers, SigV4 shape, the
//! subsegment document, and the typed errors for timeouts and refused connections.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use bytes::Bytes;
use lattice_xray::lattice_client::SigningClock;
use lattice_xray::testing::{flatten_segments, fresh_root, FakePeer, ScriptedAnswer};
use lattice_xray::{
    Error, Invocation, LatticeClient, MemorySink, RequestInfo, Telemetry, Timeouts,
};
use opentelemetry::context::FutureExt as _;
use serde_json::Value;

#[derive(Debug)]
struct FixedClock;
impl SigningClock for FixedClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_767_225_600) // 2026-01-01T00:00:00Z
    }
}

fn client(telemetry: &Telemetry, timeouts: Timeouts) -> LatticeClient {
    let credentials = Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        Some("session-token".into()),
        None,
        "test",
    );
    LatticeClient::new(
        telemetry.tracer().clone(),
        credentials,
        "eu-west-1",
        timeouts,
    )
    .unwrap()
    .with_clock(Arc::new(FixedClock))
}

/// Starts an invocation continuing `header`, runs `call` inside it, finishes with 200.
async fn inside_invocation<F, T>(telemetry: &Telemetry, header: &str, call: F) -> (T, String)
where
    F: std::future::Future<Output = T>,
{
    let mut headers = http::HeaderMap::new();
    headers.insert("x-amzn-trace-id", header.parse().unwrap());
    let method = http::Method::POST;
    let uri: http::Uri = "/orders".parse().unwrap();
    let invocation = Invocation::start(
        telemetry,
        RequestInfo {
            method: &method,
            uri: &uri,
            headers: &headers,
            lambda_trace_id: None,
        },
    );
    let segment_id = invocation.segment_id().to_string();
    let out = call.with_context(invocation.context().clone()).await;
    invocation.finish(200, Some(2), None);
    (out, segment_id)
}

fn by_type(docs: &[Value], subsegment: bool) -> Vec<&Value> {
    docs.iter()
        .filter(|d| d.get("type").is_some() == subsegment)
        .collect()
}

#[tokio::test]
async fn signs_injects_header_and_records_remote_subsegment() {
    let mut peer = FakePeer::start(ScriptedAnswer::new(200, r#"{"status":"reserved"}"#)).await;
    let sink = MemorySink::default();
    let telemetry = Telemetry::with_sink("order", sink.clone(), 1.0);
    let lattice = client(&telemetry, Timeouts::default());
    let root = fresh_root();
    let url = peer.url("/reservations");

    let (result, segment_id) = inside_invocation(
        &telemetry,
        &format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1"),
        lattice.post_json(
            "inventory",
            &url,
            Bytes::from_static(b"{\"order_id\":\"o1\"}"),
        ),
    )
    .await;
    let response = result.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        response.body,
        Bytes::from_static(br#"{"status":"reserved"}"#)
    );

    // On the wire: one datagram, the segment with the call nested in it.
    let datagrams = sink.documents();
    assert_eq!(datagrams.len(), 1, "{datagrams:?}");
    assert_eq!(
        datagrams[0]["name"], "order",
        "nested documents keep the resource's service.name"
    );
    assert_eq!(datagrams[0]["origin"], "AWS::Lambda::Function");
    let nested = &datagrams[0]["subsegments"][0];
    assert_eq!(nested["name"], "inventory");
    assert!(
        nested.get("trace_id").is_none() && nested.get("type").is_none(),
        "nested form: {nested}"
    );

    let docs = flatten_segments(&datagrams);
    let subsegments = by_type(&docs, true);
    assert_eq!(subsegments.len(), 1, "{docs:?}");
    let sub = subsegments[0];
    assert_eq!(sub["type"], "subsegment");
    assert_eq!(sub["name"], "inventory");
    assert_eq!(sub["namespace"], "remote");
    assert_eq!(sub["trace_id"], root.to_string());
    assert_eq!(sub["parent_id"], segment_id);
    assert_eq!(sub["http"]["request"]["method"], "POST");
    assert_eq!(sub["http"]["request"]["url"], url);
    assert_eq!(sub["http"]["response"]["status"], 200);
    assert!(sub.get("error").is_none() && sub.get("fault").is_none());

    let received = peer.next_request().await;
    assert_eq!(received.method, http::Method::POST);
    assert_eq!(received.path, "/reservations");
    assert_eq!(received.body, Bytes::from_static(b"{\"order_id\":\"o1\"}"));
    let h = |name: &str| {
        received
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        h("x-amzn-trace-id").unwrap(),
        format!(
            "Root={root};Parent={};Sampled=1;Lineage=a87bd80c:1",
            sub["id"].as_str().unwrap()
        )
    );
    assert_eq!(h("x-amz-content-sha256").unwrap(), "UNSIGNED-PAYLOAD");
    assert_eq!(h("x-amz-date").unwrap(), "20260101T000000Z");
    assert_eq!(h("x-amz-security-token").unwrap(), "session-token");
    assert_eq!(h("content-type").unwrap(), "application/json");
    let authorization = h("authorization").unwrap();
    let expected_prefix = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/eu-west-1/vpc-lattice-svcs/aws4_request, \
         SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=";
    assert!(
        authorization.starts_with(expected_prefix),
        "{authorization}"
    );
    let signature = &authorization[expected_prefix.len()..];
    assert_eq!(signature.len(), 64);
    assert!(
        !authorization.contains("x-amzn-trace-id"),
        "trace header is never signed"
    );
}

#[tokio::test]
async fn downstream_5xx_marks_subsegment_fault() {
    let peer = FakePeer::start(ScriptedAnswer::new(503, r#"{"error":"gateway_fault"}"#)).await;
    let sink = MemorySink::default();
    let telemetry = Telemetry::with_sink("order", sink.clone(), 1.0);
    let lattice = client(&telemetry, Timeouts::default());
    let (result, _) = inside_invocation(
        &telemetry,
        &format!("Root={};Parent=53995c3f42cd8ad8;Sampled=1", fresh_root()),
        lattice.post_json("payment", &peer.url("/payments"), Bytes::new()),
    )
    .await;
    assert_eq!(result.unwrap().status, 503);
    let docs = flatten_segments(&sink.documents());
    let sub = by_type(&docs, true)[0];
    assert_eq!(sub["fault"], true);
    assert_eq!(sub["http"]["response"]["status"], 503);
}

#[tokio::test]
async fn timeout_is_typed_and_recorded_as_fault_with_cause() {
    let peer =
        FakePeer::start(ScriptedAnswer::new(200, "{}").delayed(Duration::from_secs(2))).await;
    let sink = MemorySink::default();
    let telemetry = Telemetry::with_sink("order", sink.clone(), 1.0);
    let timeouts = Timeouts {
        connect: Duration::from_millis(200),
        request: Duration::from_millis(100),
    };
    let lattice = client(&telemetry, timeouts);
    let (result, _) = inside_invocation(
        &telemetry,
        &format!("Root={};Parent=53995c3f42cd8ad8;Sampled=1", fresh_root()),
        lattice.post_json("payment", &peer.url("/payments"), Bytes::new()),
    )
    .await;
    assert_eq!(
        result.unwrap_err(),
        Error::Timeout {
            service: "payment".into()
        }
    );
    let docs = flatten_segments(&sink.documents());
    let sub = by_type(&docs, true)[0];
    assert_eq!(sub["fault"], true);
    assert_eq!(sub["cause"]["exceptions"][0]["type"], "Timeout");
    assert_eq!(
        sub["cause"]["exceptions"][0]["message"],
        "payment did not answer in time"
    );
    assert_eq!(sub["cause"]["exceptions"][0]["remote"], true);
}

#[tokio::test]
async fn refused_connection_is_a_transport_error() {
    // Bind then drop: nothing listens on that port afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sink = MemorySink::default();
    let telemetry = Telemetry::with_sink("order", sink.clone(), 1.0);
    let lattice = client(&telemetry, Timeouts::default());
    let (result, _) = inside_invocation(
        &telemetry,
        &format!("Root={};Parent=53995c3f42cd8ad8;Sampled=1", fresh_root()),
        lattice.post_json(
            "inventory",
            &format!("http://127.0.0.1:{port}/reservations"),
            Bytes::new(),
        ),
    )
    .await;
    match result {
        Err(Error::Transport { service, .. }) => assert_eq!(service, "inventory"),
        other => panic!("expected a transport error, got {other:?}"),
    }
}

#[tokio::test]
async fn unsampled_calls_still_propagate_the_decision() {
    let mut peer = FakePeer::start(ScriptedAnswer::new(200, "{}")).await;
    let sink = MemorySink::default();
    let telemetry = Telemetry::with_sink("order", sink.clone(), 1.0);
    let lattice = client(&telemetry, Timeouts::default());
    let root = fresh_root();
    let _ = inside_invocation(
        &telemetry,
        &format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=0"),
        lattice.post_json("inventory", &peer.url("/reservations"), Bytes::new()),
    )
    .await;
    assert!(sink.documents().is_empty());
    let header = peer.next_request().await.headers["x-amzn-trace-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        header.starts_with(&format!("Root={root};Parent=")),
        "{header}"
    );
    assert!(header.ends_with(";Sampled=0"), "{header}");
}

#[tokio::test]
async fn daemon_down_never_fails_a_request() {
    // A UDP port nobody listens on: sends may fail (ICMP refused); requests must not notice.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = lattice_xray::TelemetryConfig::from_lookup(|k| match k {
        "AWS_LAMBDA_FUNCTION_NAME" => Some("order".into()),
        "AWS_XRAY_DAEMON_ADDRESS" => Some(format!("127.0.0.1:{port}")),
        _ => None,
    })
    .unwrap();
    let telemetry = Telemetry::from_config(&config).unwrap();
    for _ in 0..50 {
        let (_, _) = inside_invocation(
            &telemetry,
            &format!("Root={};Parent=53995c3f42cd8ad8;Sampled=1", fresh_root()),
            async {},
        )
        .await;
    }
    let stats = telemetry.stats();
    let sent = stats.sent.load(std::sync::atomic::Ordering::Relaxed);
    let failed = stats.send_failed.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        sent + failed,
        50,
        "every segment was attempted exactly once"
    );
    assert!(
        failed > 0,
        "loopback reports the closed port, and it is counted"
    );
}
