//! The X-Ray daemon's UDP side: every datagram is parsed, validated and stored, or counted and
//! kept as a reject. Garbage never stops the listener. Optionally every accepted document is
//! also appended, as received, to an NDJSON file.
//!
//! Two threads of its own, not tasks on the stack's runtime: one only receives, copying each
//! datagram into a queue, so the kernel's socket buffer is drained even when the stack's tokio
//! workers are saturated by Lattice and Lambda traffic (as a task it was polled too rarely under
//! overload and the kernel dropped over half of the documents); the other parses and stores. The
//! queue is bounded in bytes: beyond [`QUEUE_BYTES`] a datagram is dropped and counted as a
//! reject, never lost silently.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use super::document::{parse_datagram, Rejection, MAX_DATAGRAM_BYTES};
use super::store::TraceStore;
use crate::json_lines::JsonLinesFile;

/// The receive buffer the daemon asks for.
pub const RECEIVE_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// Datagram bytes received but not yet parsed, at most.
pub const QUEUE_BYTES: usize = 256 * 1024 * 1024;

/// How often the receiving thread looks up from the socket to see whether it should stop.
const STOP_POLL: Duration = Duration::from_millis(100);

/// A running daemon; its threads stop when it is dropped.
#[derive(Debug)]
pub struct XrayDaemon {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl XrayDaemon {
    /// Binds `addr` (port 0 for any) and feeds `store` until dropped.
    pub async fn start(addr: SocketAddr, store: Arc<TraceStore>) -> std::io::Result<Self> {
        Self::start_with_log(addr, store, None).await
    }

    /// Like [`XrayDaemon::start`], also appending every accepted document to `log`.
    pub async fn start_with_log(
        addr: SocketAddr,
        store: Arc<TraceStore>,
        log: Option<Arc<JsonLinesFile>>,
    ) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        // Bursts of documents must wait in the kernel, not be dropped: ask for a large receive
        // buffer (Linux caps it at net.core.rmem_max; 4 MiB holds ~1,000 nested documents).
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(RECEIVE_BUFFER_BYTES);
        socket.set_read_timeout(Some(STOP_POLL))?;
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let (queue, datagrams) = mpsc::channel::<Vec<u8>>();

        let receiving = {
            let (stop, queued_bytes, store) = (
                Arc::clone(&stop),
                Arc::clone(&queued_bytes),
                Arc::clone(&store),
            );
            move || receive(&socket, &stop, &queued_bytes, &queue, &store)
        };
        let parsing = move || {
            for datagram in datagrams {
                queued_bytes.fetch_sub(datagram.len(), Ordering::Relaxed);
                match parse_datagram(&datagram) {
                    Ok(document) => {
                        if let Some(log) = &log {
                            if let Ok(line) = serde_json::to_string(&document.body) {
                                log.append(&line);
                            }
                        }
                        store.insert(document);
                    }
                    Err(rejection) => store.reject(&rejection),
                }
            }
        };
        std::thread::Builder::new()
            .name("xray-daemon-recv".into())
            .spawn(receiving)?;
        std::thread::Builder::new()
            .name("xray-daemon-parse".into())
            .spawn(parsing)?;
        Ok(Self { addr, stop })
    }
}

/// The receiving thread: socket to queue, until `stop`.
fn receive(
    socket: &UdpSocket,
    stop: &AtomicBool,
    queued_bytes: &AtomicUsize,
    queue: &mpsc::Sender<Vec<u8>>,
    store: &TraceStore,
) {
    // One byte more than the limit, so an oversized datagram is seen as oversized rather than
    // silently truncated to a valid-looking prefix.
    let mut buf = vec![0u8; MAX_DATAGRAM_BYTES + 1];
    while !stop.load(Ordering::Relaxed) {
        let len = match socket.recv(&mut buf) {
            Ok(len) => len,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(error) => {
                tracing::warn!(%error, "X-Ray daemon receive failed; continuing");
                continue;
            }
        };
        if queued_bytes.fetch_add(len, Ordering::Relaxed) + len > QUEUE_BYTES {
            queued_bytes.fetch_sub(len, Ordering::Relaxed);
            store.reject(&Rejection::QueueFull(len));
            continue;
        }
        if queue.send(buf[..len].to_vec()).is_err() {
            return;
        }
    }
}

impl Drop for XrayDaemon {
    fn drop(&mut self) {
        // The receiving thread sees this within STOP_POLL and drops the queue's sender, which
        // ends the parsing thread once the queue is empty; the socket closes with it.
        self.stop.store(true, Ordering::Relaxed);
    }
}
