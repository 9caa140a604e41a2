//! X-Ray on loopback: segment documents in (UDP, like the daemon), traces kept and queried.
//!
//! # Layout
//! - [`document`]: one datagram → one validated segment document, or the reason it was refused.
//! - [`store`]: traces assembled from documents, bounded, with counted evictions and rejects.
//! - [`daemon`]: the UDP listener feeding the store.
//! - [`filter`]: filter expressions (the supported subset).
//! - [`summary`]: trace summaries and filter matching.
//! - [`graph`]: the service graph.
//! - [`api`]: the rest-json X-Ray API over the store.

pub mod api;
pub mod daemon;
pub mod document;
pub mod filter;
pub mod graph;
pub mod store;
pub mod summary;
