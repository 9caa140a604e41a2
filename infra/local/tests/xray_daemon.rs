//! The daemon on loopback fed by the real exporter of `lattice-xray`, and by garbage.

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use lattice_xray::lambda_http::{Body, Request, Response};
use lattice_xray::lattice_client::CallSegment;
use lattice_xray::testing::{fresh_root, lattice_request, with_trace_header};
use lattice_xray::{handle_traced, json_response, Endpoint, Telemetry, TelemetryConfig};
use local_stack::xray::daemon::XrayDaemon;
use local_stack::xray::store::TraceStore;

const POST_JSON: &str = include_str!("../../../shared/tests/fixtures/lattice-v2-post-json.json");

struct CallsTwoPeers {
    telemetry: Telemetry,
}

impl Endpoint for CallsTwoPeers {
    async fn handle(&self, _request: Request) -> Response<Body> {
        for service in ["inventory", "payment"] {
            let call = CallSegment::start(
                self.telemetry.tracer(),
                service,
                "POST",
                "https://peer.example/x",
            );
            call.answered(200);
        }
        json_response(http::StatusCode::CREATED, &"ok")
    }
}

async fn until(mut condition: impl FnMut() -> bool) {
    for _ in 0..200 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within 2 s");
}

#[tokio::test]
async fn stores_what_the_services_send_and_survives_garbage() {
    let store = Arc::new(TraceStore::new(1000));
    let daemon = XrayDaemon::start("127.0.0.1:0".parse().unwrap(), Arc::clone(&store))
        .await
        .unwrap();

    // Garbage first: none of it may stop the listener.
    let garbage = UdpSocket::bind("127.0.0.1:0").unwrap();
    for bytes in [
        &b"hello"[..],
        b"{\"format\":\"json\",\"version\":1}\n{}",
        b"\n\n\n",
    ] {
        garbage.send_to(bytes, daemon.addr).unwrap();
    }

    let config = TelemetryConfig::from_lookup(|key| match key {
        "AWS_LAMBDA_FUNCTION_NAME" => Some("order".into()),
        "AWS_XRAY_DAEMON_ADDRESS" => Some(daemon.addr.to_string()),
        _ => None,
    })
    .unwrap();
    let telemetry = Telemetry::from_config(&config).unwrap();
    let endpoint = CallsTwoPeers {
        telemetry: telemetry.clone(),
    };
    let root = fresh_root();
    let request = with_trace_header(
        lattice_request(POST_JSON),
        &format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1"),
    );
    let response = handle_traced(&telemetry, &endpoint, request).await;
    assert_eq!(response.status(), 201);

    let trace_id = root.to_string();
    until(|| store.documents(&trace_id).is_some()).await;
    let entities = store.entities(&trace_id).unwrap();
    let segment = entities.iter().find(|e| e.is_segment).unwrap();
    assert_eq!(segment.fields["name"], "order");
    assert_eq!(segment.parent_id.as_deref(), Some("53995c3f42cd8ad8"));
    let mut calls: Vec<(&str, Option<&str>)> = entities
        .iter()
        .filter(|e| !e.is_segment)
        .map(|e| (e.fields["name"].as_str().unwrap(), e.parent_id.as_deref()))
        .collect();
    calls.sort_unstable();
    assert_eq!(
        calls,
        [
            ("inventory", Some(segment.id.as_str())),
            ("payment", Some(segment.id.as_str()))
        ]
    );

    until(|| store.stats().rejected >= 3).await;
    assert_eq!(store.stats().rejected, 3);
    let rejects = store.rejects();
    assert!(rejects.iter().any(|r| r == "no header line"), "{rejects:?}");
    assert!(
        rejects.iter().any(|r| r.starts_with("trace_id: missing")),
        "{rejects:?}"
    );
    assert_eq!(store.stats().accepted, 1, "one datagram per invocation");
}
