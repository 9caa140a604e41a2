//! The X-Ray daemon's UDP side: every datagram is parsed, validated and stored, or counted and
//! kept as a reject. Garbage never stops the listener.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use super::document::{parse_datagram, MAX_DATAGRAM_BYTES};
use super::store::TraceStore;

/// A running daemon.
#[derive(Debug)]
pub struct XrayDaemon {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl XrayDaemon {
    /// Binds `addr` (port 0 for any) and feeds `store` until dropped.
    pub async fn start(addr: SocketAddr, store: Arc<TraceStore>) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(addr).await?;
        let addr = socket.local_addr()?;
        let task = tokio::spawn(async move {
            // One byte more than the limit, so an oversized datagram is seen as oversized
            // rather than silently truncated to a valid-looking prefix.
            let mut buf = vec![0u8; MAX_DATAGRAM_BYTES + 1];
            loop {
                let len = match socket.recv(&mut buf).await {
                    Ok(len) => len,
                    Err(error) => {
                        tracing::warn!(%error, "X-Ray daemon receive failed; continuing");
                        continue;
                    }
                };
                match parse_datagram(&buf[..len]) {
                    Ok(document) => {
                        store.insert(document);
                    }
                    Err(rejection) => store.reject(&rejection),
                }
            }
        });
        Ok(Self { addr, task })
    }
}

impl Drop for XrayDaemon {
    fn drop(&mut self) {
        self.task.abort();
    }
}
