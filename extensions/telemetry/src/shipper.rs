//! Where INVOKE-time flushes run: beside the function, in a task of their own, never in front of
//! the extension's `next`.
//!
//! An invocation ends only when the runtime *and every extension* have called `next`, so a
//! flush awaited in the INVOKE handler keeps the environment from its next request for as long
//! as the flush outlasts the function, which for a fast Rust function is nearly all of it. The
//! first version did that, and on the local stack order's p99 doubled with the extension on
//! (README, "The Lambda telemetry"). Now INVOKE only takes what the listener queued and, when
//! enough waits and the breaker allows, hands a batch to a background task bounded by
//! `DISPATCH_TIMEOUT_MS`; the handler returns at once. Datadog's Rust extension (bottlecap)
//! ships the same way under steady traffic, its "continuous" flush strategy.
//!
//! One flush is in flight at a time: the task owns the [`Dispatcher`] and its batch and hands
//! both back, with what it could not ship, when it ends. A later INVOKE puts those documents back
//! at the front of [`Pending`] (the bound applies, drops counted) before starting the next. So
//! while a flush runs, its batch and what waits hold at most twice `QUEUE_MAX_EVENTS` documents;
//! the bound holds again once the batch is back.
//! On AWS an environment frozen between invocations freezes the task too; it resumes on the next
//! thaw, and a send that died meanwhile is retried with the same `_id`s, so nothing is indexed
//! twice. SHUTDOWN waits for the task (within its own deadline) before the final flush.

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::counters::Counters;
use crate::dispatch::Dispatcher;
use crate::documents::Document;
use crate::pending::Pending;

/// What a finished flush hands back: the dispatcher and the documents it did not ship.
type Returned = (Box<Dispatcher>, Vec<Document>);

/// The dispatcher, idle or lent to the flush in flight.
pub enum Shipper {
    /// No flush in flight.
    Idle(Box<Dispatcher>),
    /// A flush of `documents` documents runs (bounded by the deadline it was given).
    Busy {
        /// The flush.
        task: JoinHandle<Returned>,
        /// How many documents it took.
        documents: usize,
    },
    /// A flush was abandoned at shutdown, or its task died: nothing more is shipped.
    Gone,
}

impl Shipper {
    /// Starts a flush of everything `pending` holds, bounded by `deadline`, when no flush is in
    /// flight, at least `min_events` documents wait and the breaker allows; returns whether it
    /// did.
    pub fn start(&mut self, pending: &mut Pending, min_events: usize, deadline: Instant) -> bool {
        let Shipper::Idle(dispatcher) = self else {
            return false;
        };
        if pending.is_empty()
            || pending.len() < min_events
            || !dispatcher.breaker().allows(Instant::now())
        {
            return false;
        }
        let Shipper::Idle(mut dispatcher) = std::mem::replace(self, Shipper::Gone) else {
            unreachable!("matched Idle above");
        };
        let mut batch = Pending::new(pending.len());
        batch.restore(pending.take_all());
        let documents = batch.len();
        let task = tokio::spawn(async move {
            dispatcher.flush(&mut batch, deadline).await;
            (dispatcher, batch.take_all())
        });
        *self = Shipper::Busy { task, documents };
        true
    }

    /// If the flush in flight has ended, takes the dispatcher back and puts what it left at the
    /// front of `pending`; never waits.
    pub async fn reap(&mut self, pending: &mut Pending, counters: &Counters) {
        if matches!(self, Shipper::Busy { task, .. } if task.is_finished()) {
            self.settle(pending, counters, None).await;
        }
    }

    /// Waits for the flush in flight (which its own deadline bounds), until `until` at the
    /// latest, then as [`reap`](Self::reap). A flush still running at `until` is abandoned and
    /// its documents counted as dropped.
    pub async fn settle(
        &mut self,
        pending: &mut Pending,
        counters: &Counters,
        until: Option<Instant>,
    ) {
        let Shipper::Busy { .. } = self else {
            return;
        };
        let Shipper::Busy {
            mut task,
            documents,
        } = std::mem::replace(self, Shipper::Gone)
        else {
            unreachable!("matched Busy above");
        };
        let returned = match until {
            None => (&mut task).await.ok(),
            Some(until) => tokio::select! {
                joined = &mut task => joined.ok(),
                _ = tokio::time::sleep_until(until) => None,
            },
        };
        match returned {
            Some((dispatcher, left)) => {
                counters.add_dropped_events(pending.restore(left) as u64);
                *self = Shipper::Idle(dispatcher);
            }
            None => {
                task.abort();
                counters.add_dropped_events(documents as u64);
            }
        }
    }

    /// The dispatcher, when no flush is in flight.
    pub fn idle(&mut self) -> Option<&mut Dispatcher> {
        match self {
            Shipper::Idle(dispatcher) => Some(dispatcher.as_mut()),
            _ => None,
        }
    }

    /// Whether a flush is in flight.
    pub fn is_busy(&self) -> bool {
        matches!(self, Shipper::Busy { .. })
    }
}
