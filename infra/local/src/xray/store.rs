//! Traces assembled from segment documents, as the X-Ray service keeps them.
//!
//! Documents are keyed by trace and by id: a complete document replaces an in-progress one with
//! the same id, and an in-progress document never replaces a complete one (X-Ray guide, "Sending
//! in-progress segments"). Independent subsegments are kept as documents and linked to their
//! parent by `parent_id` when a trace is read; nested subsegments take their parent from the
//! document they sit in. The store is bounded: past `capacity` traces, the oldest trace is
//! evicted and counted, so a report can say "evicted" rather than "incomplete".
//!
//! Each trace gets a sequence number when its first document arrives; readers page through the
//! traces by it ([`TraceStore::traces_from`]) one trace at a time, so reading a store of any size
//! never copies more than one trace and a page costs what it scans, not the whole store.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::document::{DocumentKind, Rejection, SegmentDocument};

/// How many refused datagrams are kept (with their reasons) for inspection.
pub const KEPT_REJECTS: usize = 1000;

/// One (sub)segment of a trace with its links resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Entity {
    /// Its id.
    pub id: String,
    /// The (sub)segment it hangs under, if any.
    pub parent_id: Option<String>,
    /// A segment (a service's own record) or a subsegment.
    pub is_segment: bool,
    /// Its fields, without nested `subsegments`.
    pub fields: Map<String, Value>,
}

/// What [`TraceStore::insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// A new document.
    New,
    /// Replaced an earlier document with the same id.
    Replaced,
    /// An in-progress document for an id already complete: ignored.
    Stale,
}

/// Counters, for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Documents accepted.
    pub accepted: u64,
    /// Datagrams or documents refused.
    pub rejected: u64,
    /// Traces evicted to stay within capacity.
    pub evicted_traces: u64,
    /// Traces held now.
    pub traces: usize,
}

#[derive(Debug, Default)]
struct Inner {
    traces: HashMap<String, HashMap<String, SegmentDocument>>,
    /// (sequence number, trace id), oldest first; sequence numbers only grow.
    arrival: VecDeque<(u64, String)>,
    next_sequence: u64,
    rejects: VecDeque<String>,
    stats: StoreStats,
}

/// The store.
#[derive(Debug)]
pub struct TraceStore {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl TraceStore {
    /// A store holding at most `capacity` traces.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a validated document.
    pub fn insert(&self, document: SegmentDocument) -> Inserted {
        let mut inner = self.lock();
        let trace_id = document.trace_id.clone();
        if !inner.traces.contains_key(&trace_id) {
            if inner.traces.len() >= self.capacity {
                if let Some((_, oldest)) = inner.arrival.pop_front() {
                    inner.traces.remove(&oldest);
                    inner.stats.evicted_traces += 1;
                }
            }
            let sequence = inner.next_sequence;
            inner.next_sequence += 1;
            inner.arrival.push_back((sequence, trace_id.clone()));
        }
        inner.stats.accepted += 1;
        let trace = inner.traces.entry(trace_id).or_default();
        let outcome = match trace.get(&document.id) {
            None => Inserted::New,
            Some(existing) if document.in_progress && !existing.in_progress => {
                return Inserted::Stale
            }
            Some(_) => Inserted::Replaced,
        };
        trace.insert(document.id.clone(), document);
        let traces = inner.traces.len();
        inner.stats.traces = traces;
        outcome
    }

    /// Records a refused datagram or document.
    pub fn reject(&self, rejection: &Rejection) {
        let mut inner = self.lock();
        inner.stats.rejected += 1;
        if inner.rejects.len() >= KEPT_REJECTS {
            inner.rejects.pop_front();
        }
        inner.rejects.push_back(rejection.to_string());
    }

    /// The reasons of the most recent refusals, oldest first.
    pub fn rejects(&self) -> Vec<String> {
        self.lock().rejects.iter().cloned().collect()
    }

    /// Counters.
    pub fn stats(&self) -> StoreStats {
        self.lock().stats
    }

    /// Ids of the traces held, oldest first.
    pub fn trace_ids(&self) -> Vec<String> {
        self.lock()
            .arrival
            .iter()
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// Up to `limit` traces whose sequence number is `from` or later, oldest first, each with its
    /// sequence number (the next page starts at the last one's plus one).
    pub fn traces_from(&self, from: u64, limit: usize) -> Vec<(u64, String)> {
        let inner = self.lock();
        let first = inner
            .arrival
            .partition_point(|(sequence, _)| *sequence < from);
        inner.arrival.range(first..).take(limit).cloned().collect()
    }

    /// Every trace from sequence number `from` on, oldest first, read one trace at a time.
    pub fn scan(&self, from: u64) -> Scan<'_> {
        Scan {
            store: self,
            cursor: from,
            chunk: Vec::new().into_iter(),
        }
    }

    /// The documents of a trace as received.
    pub fn documents(&self, trace_id: &str) -> Option<Vec<Map<String, Value>>> {
        let inner = self.lock();
        let trace = inner.traces.get(trace_id)?;
        let mut docs: Vec<_> = trace.values().map(|d| d.body.clone()).collect();
        docs.sort_by(|a, b| start_time(a).total_cmp(&start_time(b)));
        Some(docs)
    }

    /// Every (sub)segment of a trace, nested ones pulled out, each with its parent resolved.
    pub fn entities(&self, trace_id: &str) -> Option<Vec<Entity>> {
        let inner = self.lock();
        let trace = inner.traces.get(trace_id)?;
        let mut out = Vec::new();
        for document in trace.values() {
            let parent = document
                .body
                .get("parent_id")
                .and_then(Value::as_str)
                .map(str::to_owned);
            flatten(
                &document.body,
                parent,
                document.kind == DocumentKind::Segment,
                &mut out,
            );
        }
        out.sort_by(|a, b| start_time(&a.fields).total_cmp(&start_time(&b.fields)));
        Some(out)
    }
}

/// How many trace ids a [`Scan`] takes from the store at a time.
const SCAN_CHUNK: usize = 256;

/// The iterator of [`TraceStore::scan`]: `(sequence number, trace id, entities)`. The store is
/// locked only to read the next ids or one trace, so documents keep arriving during a scan (new
/// traces join its end); a trace evicted before its turn is skipped.
#[derive(Debug)]
pub struct Scan<'a> {
    store: &'a TraceStore,
    cursor: u64,
    chunk: std::vec::IntoIter<(u64, String)>,
}

impl Iterator for Scan<'_> {
    type Item = (u64, String, Vec<Entity>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (sequence, id) = match self.chunk.next() {
                Some(next) => next,
                None => {
                    self.chunk = self.store.traces_from(self.cursor, SCAN_CHUNK).into_iter();
                    self.chunk.next()?
                }
            };
            self.cursor = sequence + 1;
            if let Some(entities) = self.store.entities(&id) {
                return Some((sequence, id, entities));
            }
        }
    }
}

fn start_time(fields: &Map<String, Value>) -> f64 {
    fields
        .get("start_time")
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
}

fn flatten(
    entity: &Map<String, Value>,
    parent_id: Option<String>,
    is_segment: bool,
    out: &mut Vec<Entity>,
) {
    let mut fields = entity.clone();
    let children = match fields.remove("subsegments") {
        Some(Value::Array(children)) => children,
        _ => Vec::new(),
    };
    let id = fields
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    out.push(Entity {
        id: id.clone(),
        parent_id,
        is_segment,
        fields,
    });
    for child in children {
        if let Value::Object(child) = child {
            flatten(&child, Some(id.clone()), false, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xray::document::validate_document;
    use serde_json::json;

    const TRACE: &str = "1-5759e988-bd862e3fe1be46a994272793";

    fn doc(value: Value) -> SegmentDocument {
        let Value::Object(body) = value else {
            panic!("object")
        };
        validate_document(body).unwrap()
    }

    fn segment(id: &str, trace: &str, in_progress: bool) -> SegmentDocument {
        let mut v = json!({"trace_id": trace, "id": id, "name": "order", "start_time": 1.0});
        if in_progress {
            v["in_progress"] = json!(true);
        } else {
            v["end_time"] = json!(2.0);
        }
        doc(v)
    }

    #[test]
    fn complete_replaces_in_progress_but_not_the_reverse() {
        let store = TraceStore::new(10);
        assert_eq!(
            store.insert(segment("aaaaaaaaaaaaaaaa", TRACE, true)),
            Inserted::New
        );
        assert_eq!(
            store.insert(segment("aaaaaaaaaaaaaaaa", TRACE, false)),
            Inserted::Replaced
        );
        assert_eq!(
            store.insert(segment("aaaaaaaaaaaaaaaa", TRACE, true)),
            Inserted::Stale
        );
        let docs = store.documents(TRACE).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["end_time"], json!(2.0));
    }

    #[test]
    fn nested_and_independent_subsegments_are_linked() {
        let store = TraceStore::new(10);
        store.insert(doc(json!({
            "trace_id": TRACE, "id": "aaaaaaaaaaaaaaaa", "name": "order", "start_time": 1.0, "end_time": 3.0,
            "subsegments": [{"id": "bbbbbbbbbbbbbbbb", "name": "payment", "namespace": "remote", "start_time": 1.5, "end_time": 2.0,
                             "subsegments": [{"id": "cccccccccccccccc", "name": "sign", "start_time": 1.5, "end_time": 1.6}]}]
        })));
        store.insert(doc(json!({
            "type": "subsegment", "trace_id": TRACE, "parent_id": "aaaaaaaaaaaaaaaa", "id": "dddddddddddddddd",
            "name": "inventory", "namespace": "remote", "start_time": 1.1, "end_time": 1.4
        })));
        let entities = store.entities(TRACE).unwrap();
        let links: Vec<(&str, Option<&str>, bool)> = entities
            .iter()
            .map(|e| (e.id.as_str(), e.parent_id.as_deref(), e.is_segment))
            .collect();
        assert_eq!(
            links,
            [
                ("aaaaaaaaaaaaaaaa", None, true),
                ("dddddddddddddddd", Some("aaaaaaaaaaaaaaaa"), false),
                ("bbbbbbbbbbbbbbbb", Some("aaaaaaaaaaaaaaaa"), false),
                ("cccccccccccccccc", Some("bbbbbbbbbbbbbbbb"), false),
            ]
        );
        assert!(entities
            .iter()
            .all(|e| !e.fields.contains_key("subsegments")));
    }

    #[test]
    fn evicts_oldest_trace_past_capacity_and_counts_it() {
        let store = TraceStore::new(2);
        let traces = [
            "1-5759e988-000000000000000000000001",
            "1-5759e988-000000000000000000000002",
            "1-5759e988-000000000000000000000003",
        ];
        for trace in traces {
            store.insert(segment("aaaaaaaaaaaaaaaa", trace, false));
        }
        assert_eq!(store.trace_ids(), traces[1..]);
        // Sequence numbers survive the eviction: paging resumes where it stopped.
        assert_eq!(
            store.traces_from(0, 10),
            [(1, traces[1].to_owned()), (2, traces[2].to_owned())]
        );
        assert_eq!(store.traces_from(2, 10), [(2, traces[2].to_owned())]);
        assert_eq!(store.traces_from(1, 1), [(1, traces[1].to_owned())]);
        assert!(store.traces_from(3, 10).is_empty());
        let scanned: Vec<(u64, String)> = store.scan(0).map(|(seq, id, _)| (seq, id)).collect();
        assert_eq!(
            scanned,
            [(1, traces[1].to_owned()), (2, traces[2].to_owned())]
        );
        assert!(store.documents(traces[0]).is_none());
        let stats = store.stats();
        assert_eq!(
            (stats.accepted, stats.evicted_traces, stats.traces),
            (3, 1, 2)
        );
    }
}
