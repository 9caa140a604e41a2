//! The X-Ray daemon down: the functions' segment documents go to a UDP port nobody listens on.
//! Every order still succeeds with its trace header answered; nothing of the services' reaches
//! X-Ray (only Lambda's own facade segments, which Lambda sends itself). The latency side of
//! "telemetry never slows a request" is measured by `bench/run.sh`, not asserted here.

mod support;

use std::net::UdpSocket;
use std::time::SystemTime;

use lattice_xray::testing::fresh_root;
use support::{order, request, send, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_succeed_with_the_daemon_down() {
    let nobody = {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap()
    };
    let stack = start("daemon-down", &[], |config| {
        config.functions_xray_daemon = Some(nobody.to_string());
    })
    .await;
    let key = stack.loadgen_key().unwrap().clone();
    let url = format!("{}/orders", stack.service_url("order").unwrap());
    let root = fresh_root().to_string();
    let header = format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1");
    for i in 0..20 {
        let (status, body) = send(request(
            &url,
            &order(&format!("ord-down-{i}")),
            Some(&key),
            SystemTime::now(),
            Some(&header),
        ))
        .await;
        assert_eq!(status, 201, "{body}");
    }
    // Lambda's facade traced the invocations; no document of the services' arrived.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let ours = stack
        .store
        .trace_ids()
        .iter()
        .flat_map(|id| stack.store.entities(id).unwrap_or_default())
        .filter(|e| e.fields.get("aws").and_then(|a| a.get("xray")).is_some())
        .count();
    assert_eq!(ours, 0);
    assert!(stack.facade_documents_sent() > 0);
    assert!(stack
        .store
        .entities("1-5759e988-bd862e3fe1be46a994272793")
        .is_none());
    stack.shutdown().await;
}
