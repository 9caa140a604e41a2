//! X-Ray on loopback: segment documents in (UDP, like the daemon), traces kept and queried.
//!
//! # Layout
//! - [`document`]: one datagram → one validated segment document, or the reason it was refused.
//! - [`store`]: traces assembled from documents, bounded, with counted evictions and rejects.
//! - [`daemon`]: the UDP listener feeding the store.

pub mod daemon;
pub mod document;
pub mod store;
