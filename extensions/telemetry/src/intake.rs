//! Queued POST bodies through records and documents into [`Pending`]: the parsing the listener
//! deferred. Counts events, malformed bodies and elements, own lines and documents dropped by the
//! pending bound, and tells the caller which `platform.report`s arrived (the shutdown waits for
//! the last invocation's).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::counters::Counters;
use crate::documents::{build, Built, DocumentContext};
use crate::ids::IdMinter;
use crate::pending::Pending;
use crate::records::{parse_body, Kind, PlatformView};

/// What some POSTs held.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Records parsed.
    pub events: usize,
    /// The `requestId` of every `platform.report` among them.
    pub reports: Vec<String>,
}

/// Turns POST bodies into pending documents for one execution environment.
#[derive(Debug)]
pub struct Intake {
    context: DocumentContext,
    counters: Arc<Counters>,
}

impl Intake {
    /// An intake building documents with `context`, counting into `counters`.
    pub fn new(context: DocumentContext, counters: Arc<Counters>) -> Self {
        Self { context, counters }
    }

    /// The documents' context.
    pub fn context(&self) -> &DocumentContext {
        &self.context
    }

    /// Every body of `bodies`, in order, into `pending`.
    pub fn ingest_all<B: AsRef<[u8]>>(
        &self,
        bodies: &[B],
        pending: &mut Pending,
        now: DateTime<Utc>,
    ) -> Ingested {
        let mut total = Ingested::default();
        for body in bodies {
            let one = self.ingest(body.as_ref(), pending, now);
            total.events += one.events;
            total.reports.extend(one.reports);
        }
        total
    }

    /// One POST body into `pending`.
    pub fn ingest(&self, body: &[u8], pending: &mut Pending, now: DateTime<Utc>) -> Ingested {
        let Ok(parsed) = parse_body(body) else {
            self.counters.add_malformed(1);
            return Ingested::default();
        };
        self.counters.add_malformed(parsed.malformed as u64);
        self.counters.add_events(parsed.records.len() as u64);
        let mut ingested = Ingested {
            events: parsed.records.len(),
            reports: Vec::new(),
        };
        let mut ids = IdMinter::new(&self.context.extension_id, body);
        let mut dropped = 0;
        for record in parsed.records {
            if Kind::of(&record.kind) == Kind::Report {
                if let Some(request_id) = PlatformView::of(&record.record).request_id {
                    ingested.reports.push(request_id.to_owned());
                }
            }
            let id = ids.mint(&record);
            match build(&self.context, record, id, now) {
                Built::Document(document) => dropped += pending.push(document),
                Built::OwnLine => self.counters.add_own_lines(1),
            }
        }
        self.counters.add_dropped_events(dropped as u64);
        ingested
    }
}
