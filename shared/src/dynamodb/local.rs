//! A real DynamoDB API server on loopback, embedded: dynoxide (SQLite-backed, MIT/Apache-2.0),
//! for the local stack and the adapter tests (feature `dynamodb-local`).
//!
//! Why dynoxide: of the servers compared (facts in the project's design notes), it is the one that
//! embeds in-process, starts in milliseconds, and keeps the contracts the services rely on
//! (transactions with cancellation reasons and old items, `ClientRequestToken` replay and
//! mismatch, no oversell under parallel clients). Amazon's DynamoDB Local runs the same suites in
//! CI ([`LOCAL_ENDPOINT_ENV`]). Not emulated by dynoxide: `TransactionConflict`, throttling, and
//! TTL sweeping, so fault tests put a proxy in front of it.

use std::net::{Ipv4Addr, SocketAddr};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::Client;
use tokio::sync::oneshot;

use crate::aws_call::AwsCallInterceptor;

/// Set to an endpoint (e.g. Amazon DynamoDB Local's) to run the adapter suites against it too.
pub const LOCAL_ENDPOINT_ENV: &str = "DYNAMODB_LOCAL_ENDPOINT";
/// The Region local clients sign for (local servers accept any).
pub const LOCAL_REGION: &str = "us-east-1";

/// An embedded server on a thread and runtime of its own (its SQLite calls block, so they must
/// not run on a caller's runtime); stops when dropped.
#[derive(Debug)]
pub struct EmbeddedDynamoDb {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EmbeddedDynamoDb {
    /// Starts an in-memory server on `127.0.0.1:port` (0: any free port).
    pub fn start(port: u16) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let database = dynoxide::Database::memory()
            .map_err(|e| std::io::Error::other(format!("dynoxide database: {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("dynamodb-local".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(error) => {
                            tracing::error!(%error, "embedded DynamoDB could not listen");
                            return;
                        }
                    };
                    let shutdown = async move {
                        let _ = stopped.await;
                    };
                    if let Err(error) =
                        dynoxide::server::serve_with_shutdown(listener, database, shutdown).await
                    {
                        tracing::error!(%error, "embedded DynamoDB stopped");
                    }
                });
            })?;
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits for its thread (requests in flight finish first).
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for EmbeddedDynamoDb {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Not joined here: a drop inside an async context must not block on idle keep-alive
        // connections; `stop` waits.
    }
}

/// A traced client for a local server at `endpoint`, with placeholder credentials.
pub fn client_for(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(LOCAL_REGION))
        .credentials_provider(Credentials::new("local", "local", None, None, "local"))
        .interceptor(AwsCallInterceptor::new(LOCAL_REGION))
        .build();
    Client::from_conf(config)
}
