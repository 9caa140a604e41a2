//! The Telemetry API subscription against a fake Runtime API on loopback: the exact request, and
//! which answers count as subscribed.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opensearch_telemetry::subscribe::{subscribe, SubscribeError};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// What the fake received: method, path, extension id header, body.
type Received = (String, String, Option<String>, Value);

async fn fake_runtime_api(status: u16) -> (SocketAddr, mpsc::UnboundedReceiver<Received>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sender = sender.clone();
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let sender = sender.clone();
                async move {
                    let method = request.method().to_string();
                    let path = request.uri().path().to_owned();
                    let id = request
                        .headers()
                        .get("lambda-extension-identifier")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let _ = sender.send((method, path, id, body));
                    let mut response = hyper::Response::new(Full::new(Bytes::from_static(
                        br#"{"errorType":"ValidationError","errorMessage":"bad"}"#,
                    )));
                    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    (address, receiver)
}

#[tokio::test]
async fn the_subscription_asks_for_schema_2022_12_13_to_our_listener() {
    let (address, mut received) = fake_runtime_api(200).await;
    subscribe(&address.to_string(), "ext-1").await.unwrap();
    let (method, path, id, body) = received.recv().await.unwrap();
    assert_eq!(
        (method.as_str(), path.as_str()),
        ("PUT", "/2022-07-01/telemetry")
    );
    assert_eq!(id.as_deref(), Some("ext-1"));
    assert_eq!(
        body,
        json!({
            "schemaVersion": "2022-12-13",
            "types": ["platform", "function", "extension"],
            "buffering": {"maxItems": 10000, "maxBytes": 262144, "timeoutMs": 250},
            "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243"}
        })
    );
}

#[tokio::test]
async fn a_local_environments_202_is_a_subscription() {
    let (address, _received) = fake_runtime_api(202).await;
    assert!(subscribe(&address.to_string(), "ext-1").await.is_ok());
}

#[tokio::test]
async fn a_refusal_or_no_answer_is_an_error_not_a_panic() {
    let (address, _received) = fake_runtime_api(400).await;
    match subscribe(&address.to_string(), "ext-1").await {
        Err(SubscribeError::Refused { status, body }) => {
            assert_eq!(status, 400);
            assert!(body.contains("ValidationError"));
        }
        other => panic!("{other:?}"),
    }
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nobody = closed.local_addr().unwrap().to_string();
    drop(closed);
    assert!(matches!(
        subscribe(&nobody, "ext-1").await,
        Err(SubscribeError::Unreachable(..))
    ));
}
