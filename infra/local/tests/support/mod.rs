//! Starting a stack for a test, and signing requests to it the way callers of Lattice do.

#![allow(dead_code)]

pub mod dynamodb_proxy;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use lattice_xray::lattice_client::sign_for_lattice;
use local_stack::lambda::facade::FacadeSampling;
use local_stack::lattice::credentials::PrincipalKey;
use local_stack::stack::{LocalStack, StackConfig};
use serde_json::{json, Value};

/// A fresh state directory under the system temp dir.
pub fn state_dir(test: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "local-stack-{test}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A stack on ephemeral ports, simulation off, every facade invocation traced, `env` added.
pub async fn start(
    test: &str,
    env: &[(&str, &str)],
    tweak: impl FnOnce(&mut StackConfig),
) -> LocalStack {
    let mut config = StackConfig::ephemeral(state_dir(test)).without_simulation();
    config.facade_sampling = FacadeSampling::Always;
    config
        .service_env
        .extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    tweak(&mut config);
    LocalStack::start(config).await.expect("stack starts")
}

/// The identity of `key`.
pub fn identity(key: &PrincipalKey) -> Identity {
    Credentials::new(
        &key.access_key_id,
        &key.secret_access_key,
        None,
        None,
        "test",
    )
    .into()
}

/// A POST of `body` to `url`, signed by `key` at `time` unless `key` is `None`.
pub fn request(
    url: &str,
    body: &Value,
    key: Option<&PrincipalKey>,
    time: SystemTime,
    trace_header: Option<&str>,
) -> reqwest::Request {
    let uri: http::Uri = url.parse().unwrap();
    let mut request = http::Request::builder()
        .method("POST")
        .uri(url)
        .header("host", uri.authority().unwrap().as_str())
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_string()))
        .unwrap();
    if let Some(key) = key {
        sign_for_lattice(&mut request, &identity(key), "us-east-1", time).unwrap();
    }
    if let Some(header) = trace_header {
        request
            .headers_mut()
            .insert("x-amzn-trace-id", header.parse().unwrap());
    }
    reqwest::Request::try_from(request).unwrap()
}

/// Sends and returns (status, body).
pub async fn send(request: reqwest::Request) -> (u16, String) {
    let response = reqwest::Client::new().execute(request).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// A valid order body.
pub fn order(order_id: &str) -> Value {
    json!({"order_id": order_id, "customer_id": "cust-1",
        "items": [{"sku": "SKU-0001", "quantity": 1, "unit_price": 10.0},
                  {"sku": "SKU-0002", "quantity": 2, "unit_price": 2.5}]})
}

/// Sends one segment document to the daemon at `addr`.
pub fn send_segment(addr: std::net::SocketAddr, document: &Value) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let datagram = format!("{{\"format\": \"json\", \"version\": 1}}\n{document}");
    socket.send_to(datagram.as_bytes(), addr).unwrap();
}

/// The access-log lines written so far (flushing first).
pub fn access_log(stack: &LocalStack) -> Vec<Value> {
    stack.access_log.flush();
    std::fs::read_to_string(&stack.state.access_log)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Waits (up to 5 s) until `trace_id` holds a segment named after each of `names`.
pub async fn wait_for_segments(
    stack: &local_stack::stack::LocalStack,
    trace_id: &str,
    names: &[&str],
) -> Vec<local_stack::xray::store::Entity> {
    for _ in 0..100 {
        if let Some(entities) = stack.store.entities(trace_id) {
            let has = |name: &str| {
                entities
                    .iter()
                    .any(|e| e.is_segment && e.fields["name"] == name)
            };
            if names.iter().all(|n| has(n)) {
                return entities;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "trace {trace_id} never held {names:?}: {:?}",
        stack.store.entities(trace_id)
    );
}
