//! The inbox between the listener and the events processor: POST bodies as they arrived,
//! unparsed, bounded by their total size. The listener must answer Lambda at once (a slow
//! subscriber loses records), so it only pushes here; parsing happens when the processor drains.
//! A full inbox drops the new POST and counts it (POSTs and bytes): memory stays bounded however
//! long OpenSearch is away.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::counters::Counters;

/// The default bound on queued bytes.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;

/// What became of a pushed POST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Dropped: the inbox was full.
    Dropped,
}

#[derive(Debug, Default)]
struct Inbox {
    posts: VecDeque<Bytes>,
    bytes: usize,
}

/// The byte-bounded inbox; [`PostQueue::arrived`] wakes whoever waits for a POST.
#[derive(Debug)]
pub struct PostQueue {
    inbox: Mutex<Inbox>,
    max_bytes: usize,
    arrived: Notify,
    counters: Arc<Counters>,
}

impl PostQueue {
    /// An empty inbox holding at most `max_bytes`.
    pub fn new(max_bytes: usize, counters: Arc<Counters>) -> Self {
        Self {
            inbox: Mutex::new(Inbox::default()),
            max_bytes,
            arrived: Notify::new(),
            counters,
        }
    }

    /// Queues `body`, or drops it when it does not fit; counts either way.
    pub fn push(&self, body: Bytes) -> Pushed {
        self.counters.add_posts(1);
        let len = body.len();
        {
            let mut inbox = self.inbox.lock().unwrap_or_else(PoisonError::into_inner);
            if inbox.bytes + len > self.max_bytes {
                drop(inbox);
                self.counters.add_dropped_posts(1);
                self.counters.add_dropped_bytes(len as u64);
                return Pushed::Dropped;
            }
            inbox.bytes += len;
            inbox.posts.push_back(body);
        }
        // A stored permit if nobody waits yet: the next `arrived()` returns at once.
        self.arrived.notify_one();
        Pushed::Queued
    }

    /// Everything queued, oldest first, leaving the inbox empty.
    pub fn drain(&self) -> Vec<Bytes> {
        let mut inbox = self.inbox.lock().unwrap_or_else(PoisonError::into_inner);
        inbox.bytes = 0;
        inbox.posts.drain(..).collect()
    }

    /// Bytes queued now.
    pub fn queued_bytes(&self) -> usize {
        self.inbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
    }

    /// Resolves when a POST was queued since the last call returned (or is queued later).
    pub async fn arrived(&self) {
        self.arrived.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_full_inbox_drops_and_counts_the_new_post() {
        let counters = Arc::new(Counters::new());
        let queue = PostQueue::new(10, Arc::clone(&counters));
        assert_eq!(queue.push(Bytes::from_static(b"123456")), Pushed::Queued);
        assert_eq!(queue.push(Bytes::from_static(b"12345")), Pushed::Dropped);
        assert_eq!(queue.push(Bytes::from_static(b"1234")), Pushed::Queued);
        assert_eq!(queue.queued_bytes(), 10);
        let summary = counters.summary();
        assert_eq!(
            (summary.posts, summary.dropped_posts, summary.dropped_bytes),
            (3, 1, 5)
        );
        assert_eq!(queue.drain(), [&b"123456"[..], &b"1234"[..]]);
        assert_eq!(queue.queued_bytes(), 0);
        assert_eq!(queue.push(Bytes::from_static(b"12345")), Pushed::Queued);
    }

    #[tokio::test(start_paused = true)]
    async fn a_push_before_the_wait_is_not_missed() {
        let queue = PostQueue::new(100, Arc::new(Counters::new()));
        queue.push(Bytes::from_static(b"[]"));
        let woke = tokio::time::timeout(Duration::from_millis(10), queue.arrived()).await;
        assert!(woke.is_ok());
        let again = tokio::time::timeout(Duration::from_millis(10), queue.arrived()).await;
        assert!(again.is_err(), "one push, one wake-up");
    }
}
