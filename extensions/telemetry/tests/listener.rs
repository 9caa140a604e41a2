//! The listener on loopback: answers at once and queues the body unparsed, drops (counted) when
//! the inbox is full, refuses oversize bodies with 413; and where it binds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opensearch_telemetry::counters::Counters;
use opensearch_telemetry::listener::{listen_address, Listener, MAX_POST_BYTES, PORT};
use opensearch_telemetry::queue::PostQueue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn start(max_queued: usize) -> (Listener, Arc<PostQueue>, Arc<Counters>) {
    let counters = Arc::new(Counters::new());
    let queue = Arc::new(PostQueue::new(max_queued, Arc::clone(&counters)));
    let address = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = Listener::start(address, Arc::clone(&queue)).await.unwrap();
    (listener, queue, counters)
}

async fn post(listener: &Listener, body: impl Into<reqwest::Body>) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{}/", listener.address()))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn posts_are_answered_200_at_once_and_queued_unparsed() {
    let (listener, queue, counters) = start(1024).await;
    let started = Instant::now();
    assert_eq!(post(&listener, "not even json").await, 200);
    assert_eq!(post(&listener, r#"[{"type":"function"}]"#).await, 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    let queued = queue.drain();
    assert_eq!(
        queued,
        [&b"not even json"[..], &br#"[{"type":"function"}]"#[..]]
    );
    // Nothing parsed yet: no event, no malformed body counted by the listener.
    let summary = counters.summary();
    assert_eq!(
        (summary.posts, summary.events, summary.malformed),
        (2, 0, 0)
    );
    listener.stop();
}

#[tokio::test]
async fn a_full_inbox_drops_the_post_counted_and_still_answers_200() {
    let (listener, queue, counters) = start(10).await;
    assert_eq!(post(&listener, "12345678").await, 200);
    assert_eq!(post(&listener, "12345678").await, 200);
    let summary = counters.summary();
    assert_eq!(
        (summary.posts, summary.dropped_posts, summary.dropped_bytes),
        (2, 1, 8)
    );
    assert_eq!(queue.drain().len(), 1);
    listener.stop();
}

#[tokio::test]
async fn oversize_posts_are_refused_with_413() {
    let (listener, queue, counters) = start(64 * 1024 * 1024).await;
    let big = vec![b'x'; MAX_POST_BYTES + 1];
    assert_eq!(post(&listener, big.clone()).await, 413);
    // Without a Content-Length (chunked), the limit still holds while reading.
    assert_eq!(chunked_post(&listener, MAX_POST_BYTES + 1).await, "413");
    assert_eq!(post(&listener, vec![b'x'; MAX_POST_BYTES]).await, 200);
    assert_eq!(queue.drain().len(), 1);
    assert_eq!(counters.summary().posts, 1);
    listener.stop();
}

/// POSTs `len` bytes in one chunk of a chunked body over a raw connection; the answer's status.
async fn chunked_post(listener: &Listener, len: usize) -> String {
    let stream = tokio::net::TcpStream::connect(listener.address())
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    tokio::spawn(async move {
        let head =
            format!("POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n{len:x}\r\n");
        // The server may answer and close before it all is written: that is the point.
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.write_all(&vec![b'x'; len]).await;
        let _ = writer.write_all(b"\r\n0\r\n\r\n").await;
    });
    let mut answer = [0u8; 12];
    reader.read_exact(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer[9..12]).into_owned()
}

#[tokio::test]
async fn other_methods_are_refused() {
    let (listener, _, _) = start(1024).await;
    let status = reqwest::get(format!("http://{}/", listener.address()))
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 405);
    let mut stream = tokio::net::TcpStream::connect(listener.address())
        .await
        .unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n[]")
        .await
        .unwrap();
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    listener.stop();
}

#[tokio::test]
async fn without_the_sandbox_host_it_binds_the_runtime_api_host() {
    // sandbox.localdomain resolves only inside Lambda.
    let address = listen_address(Some("127.0.0.9:9001"), PORT).await;
    assert_eq!(address, Some(SocketAddr::from(([127, 0, 0, 9], PORT))));
    assert_eq!(
        listen_address(Some("localhost:9001"), 4)
            .await
            .map(|a| (a.ip().is_loopback(), a.port())),
        Some((true, 4))
    );
    assert_eq!(listen_address(None, PORT).await, None);
}
