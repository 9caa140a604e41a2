//! The counts printed in the one summary line at shutdown. Atomic, because the listener counts
//! POSTs while the events processor counts documents.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every count the extension keeps.
#[derive(Debug, Default)]
pub struct Counters {
    posts: AtomicU64,
    events: AtomicU64,
    shipped: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    dropped_posts: AtomicU64,
    dropped_bytes: AtomicU64,
    dropped_events: AtomicU64,
    own_lines: AtomicU64,
    malformed: AtomicU64,
}

/// What was counted, at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// POSTs received from the Telemetry API (queued or not).
    pub posts: u64,
    /// Records parsed out of them.
    pub events: u64,
    /// Documents OpenSearch accepted.
    pub shipped: u64,
    /// Document sends repeated after a retryable answer (429, 5xx, no answer).
    pub retried: u64,
    /// Documents OpenSearch refused for good (a non-retryable item or request status).
    pub failed: u64,
    /// POSTs dropped because the inbox was full.
    pub dropped_posts: u64,
    /// Their bytes.
    pub dropped_bytes: u64,
    /// Documents dropped: the oldest beyond `QUEUE_MAX_EVENTS`, and those left at exit.
    pub dropped_events: u64,
    /// This extension's own log lines, dropped to break the self-logging loop.
    pub own_lines: u64,
    /// Bodies that are not a JSON array, and array elements that are not a record.
    pub malformed: u64,
}

macro_rules! adders {
    ($($name:ident => $field:ident),* $(,)?) => {
        $(
            #[doc = concat!("Adds `n` to `", stringify!($field), "`.")]
            pub fn $name(&self, n: u64) {
                self.$field.fetch_add(n, Ordering::Relaxed);
            }
        )*
    };
}

impl Counters {
    /// All zero.
    pub fn new() -> Self {
        Self::default()
    }

    adders! {
        add_posts => posts,
        add_events => events,
        add_shipped => shipped,
        add_retried => retried,
        add_failed => failed,
        add_dropped_posts => dropped_posts,
        add_dropped_bytes => dropped_bytes,
        add_dropped_events => dropped_events,
        add_own_lines => own_lines,
        add_malformed => malformed,
    }

    /// The counts now.
    pub fn summary(&self) -> Summary {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Summary {
            posts: get(&self.posts),
            events: get(&self.events),
            shipped: get(&self.shipped),
            retried: get(&self.retried),
            failed: get(&self.failed),
            dropped_posts: get(&self.dropped_posts),
            dropped_bytes: get(&self.dropped_bytes),
            dropped_events: get(&self.dropped_events),
            own_lines: get(&self.own_lines),
            malformed: get(&self.malformed),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "summary: posts={} events={} shipped={} retried={} failed={} dropped={} \
             (posts={} bytes={} own_lines={}) malformed={}",
            self.posts,
            self.events,
            self.shipped,
            self.retried,
            self.failed,
            self.dropped_events,
            self.dropped_posts,
            self.dropped_bytes,
            self.own_lines,
            self.malformed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_names_every_count() {
        let counters = Counters::new();
        counters.add_posts(3);
        counters.add_events(40);
        counters.add_shipped(37);
        counters.add_retried(2);
        counters.add_failed(1);
        counters.add_dropped_events(2);
        counters.add_dropped_posts(1);
        counters.add_dropped_bytes(900);
        counters.add_own_lines(1);
        counters.add_malformed(1);
        assert_eq!(
            counters.summary().to_string(),
            "summary: posts=3 events=40 shipped=37 retried=2 failed=1 dropped=2 \
             (posts=1 bytes=900 own_lines=1) malformed=1"
        );
    }
}
