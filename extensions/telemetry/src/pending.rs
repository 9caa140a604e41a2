//! Documents waiting to be shipped, oldest first, at most `QUEUE_MAX_EVENTS` of them: beyond it
//! the oldest are dropped (and counted), so a long OpenSearch outage costs old telemetry, never
//! the function's memory. A flush takes them all and puts back, at the front, what it could not
//! ship before its deadline.

use std::collections::VecDeque;

use crate::documents::Document;

/// The bounded list of documents to ship.
#[derive(Debug)]
pub struct Pending {
    documents: VecDeque<Document>,
    max: usize,
}

impl Pending {
    /// Empty, holding at most `max` documents (at least one).
    pub fn new(max: usize) -> Self {
        Self {
            documents: VecDeque::new(),
            max: max.max(1),
        }
    }

    /// Adds `document` at the back; returns how many old documents were dropped for it.
    pub fn push(&mut self, document: Document) -> usize {
        self.documents.push_back(document);
        self.trim()
    }

    /// Takes every document, oldest first.
    pub fn take_all(&mut self) -> Vec<Document> {
        self.documents.drain(..).collect()
    }

    /// Puts `documents` (older than any pending) back at the front; returns how many of the
    /// oldest were dropped to stay within the bound.
    pub fn restore(&mut self, documents: Vec<Document>) -> usize {
        for document in documents.into_iter().rev() {
            self.documents.push_front(document);
        }
        self.trim()
    }

    /// Drops everything; returns how many.
    pub fn clear(&mut self) -> usize {
        let n = self.documents.len();
        self.documents.clear();
        n
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// The waiting documents, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Document> {
        self.documents.iter()
    }

    fn trim(&mut self) -> usize {
        let excess = self.documents.len().saturating_sub(self.max);
        self.documents.drain(..excess);
        excess
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str) -> Document {
        Document {
            index: "i".into(),
            id: id.into(),
            source: "{}".into(),
        }
    }

    fn ids(pending: &Pending) -> Vec<&str> {
        pending.iter().map(|d| d.id.as_str()).collect()
    }

    #[test]
    fn the_oldest_are_dropped_beyond_the_bound() {
        let mut pending = Pending::new(2);
        assert_eq!(pending.push(doc("a")), 0);
        assert_eq!(pending.push(doc("b")), 0);
        assert_eq!(pending.push(doc("c")), 1);
        assert_eq!(ids(&pending), ["b", "c"]);
    }

    #[test]
    fn restored_documents_go_first_and_the_oldest_go_when_full() {
        let mut pending = Pending::new(3);
        pending.push(doc("new"));
        assert_eq!(pending.restore(vec![doc("old1"), doc("old2")]), 0);
        assert_eq!(ids(&pending), ["old1", "old2", "new"]);
        assert_eq!(pending.restore(vec![doc("older")]), 1);
        assert_eq!(ids(&pending), ["old1", "old2", "new"]);
        assert_eq!(pending.take_all().len(), 3);
        assert!(pending.is_empty());
    }
}
