//! Everything this extension prints. Lambda sends an extension's stdout back to every extension
//! subscribed to `extension` records, this one included, so a line per batch would feed itself for
//! ever (the self-logging loop of the Python sample). Two rules break the loop: every line starts
//! with [`PREFIX`], by which [`documents`](crate::documents) recognises and drops our own records,
//! and almost nothing is printed: a failure kind once, at its first occurrence, and one summary at
//! shutdown.

use std::collections::HashSet;
use std::fmt::Display;
use std::sync::{Mutex, PoisonError};

/// The start of every line this extension prints.
pub const PREFIX: &str = "[opensearch-telemetry]";

/// Prints one line, prefixed.
pub fn line(message: impl Display) {
    println!("{PREFIX} {message}");
}

/// Remembers which failure kinds were already printed, so each is printed once.
#[derive(Debug, Default)]
pub struct OnceLog {
    seen: Mutex<HashSet<String>>,
}

impl OnceLog {
    /// A log that has printed nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `kind` is new (and remembers it).
    pub fn first(&self, kind: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(kind) {
            return false;
        }
        seen.insert(kind.to_owned())
    }

    /// Prints `message` if `kind` has not been printed before; returns whether it printed.
    pub fn once(&self, kind: &str, message: impl Display) -> bool {
        let first = self.first(kind);
        if first {
            line(message);
        }
        first
    }

    /// The kinds printed so far, sorted (tests).
    pub fn kinds(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let mut kinds: Vec<String> = seen.iter().cloned().collect();
        kinds.sort();
        kinds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_printed_once() {
        let log = OnceLog::new();
        assert!(log.once("bulk item 400", "first"));
        assert!(!log.once("bulk item 400", "again"));
        assert!(log.once("bulk item 403", "other kind"));
        assert_eq!(log.kinds(), ["bulk item 400", "bulk item 403"]);
    }
}
