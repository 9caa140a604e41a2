//! One flush: every pending document to OpenSearch through `_bulk` before a deadline, and the
//! circuit breaker that keeps a down or slow backend from costing every invocation a flush.
//!
//! Inside a flush, documents answered 429 or 5xx (one by one or the whole request, or with no
//! answer at all) are sent again after a full-jitter exponential backoff (a random wait between
//! zero and `min(cap, base·2ⁿ)`: AWS Architecture Blog, "Exponential Backoff And Jitter"), with
//! their same `_id`s, while the deadline allows; every HTTP call's timeout is the time left.
//! What is still unshipped at the deadline goes back to [`Pending`] for the next flush. Other
//! refusals are final: counted, and each status printed once.
//!
//! After a flush that left documents unshipped the [`Breaker`] opens: INVOKE-time flushes wait
//! 1 s, then 2 s, … up to 30 s between attempts; a flush that ships everything closes it. The
//! shutdown flush ignores it (it is the last chance). Written by hand: no workspace crate has a
//! retry policy over a deadline, and the breaker is a dozen lines.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::backend::{call_within, Backend, Payload};
use crate::bulk::{self, ItemOutcome, RequestOutcome};
use crate::counters::Counters;
use crate::documents::Document;
use crate::pending::Pending;
use crate::say::OnceLog;
use crate::templates::{remaining, Installer};

/// Full-jitter exponential backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first wait.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(50),
            cap: Duration::from_secs(1),
        }
    }
}

impl Backoff {
    /// The wait before retry number `attempt` (0-based): uniform in `[0, min(cap, base·2^attempt)]`.
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.base.saturating_mul(1 << attempt.min(20)).min(self.cap);
        let millis = ceiling.as_millis() as u64;
        Duration::from_millis(rng.random_range(0..=millis))
    }
}

/// The circuit breaker between INVOKE-time flushes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Breaker {
    open_until: Option<Instant>,
    next_wait: Duration,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            open_until: None,
            next_wait: Self::FIRST_WAIT,
        }
    }
}

impl Breaker {
    /// The wait after the first failed flush.
    pub const FIRST_WAIT: Duration = Duration::from_secs(1);
    /// The longest wait.
    pub const MAX_WAIT: Duration = Duration::from_secs(30);

    /// Whether a flush may be attempted at `now`.
    pub fn allows(&self, now: Instant) -> bool {
        self.open_until.is_none_or(|until| now >= until)
    }

    /// A flush failed at `now`: wait, and wait twice as long after the next failure.
    pub fn failed(&mut self, now: Instant) {
        self.open_until = Some(now + self.next_wait);
        self.next_wait = (self.next_wait * 2).min(Self::MAX_WAIT);
    }

    /// A flush shipped everything: closed again.
    pub fn succeeded(&mut self) {
        *self = Self::default();
    }

    /// When the breaker lets the next flush through, if it is open.
    pub fn open_until(&self) -> Option<Instant> {
        self.open_until
    }
}

/// What one flush did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Documents indexed.
    pub shipped: usize,
    /// Document sends repeated.
    pub retried: usize,
    /// Documents refused for good.
    pub failed: usize,
    /// Documents put back for the next flush.
    pub left: usize,
}

/// Ships pending documents.
pub struct Dispatcher {
    backend: Arc<dyn Backend>,
    installer: Installer,
    breaker: Breaker,
    backoff: Backoff,
    rng: StdRng,
    counters: Arc<Counters>,
    log: Arc<OnceLog>,
}

/// What a round of sends left to do.
#[derive(Default)]
struct Round {
    retry: Vec<Document>,
    unsent: Vec<Document>,
}

impl Dispatcher {
    /// A dispatcher over `backend`, installing `installer`'s templates first; `seed` drives the
    /// jitter.
    pub fn new(
        backend: Arc<dyn Backend>,
        installer: Installer,
        counters: Arc<Counters>,
        log: Arc<OnceLog>,
        seed: u64,
    ) -> Self {
        Self {
            backend,
            installer,
            breaker: Breaker::default(),
            backoff: Backoff::default(),
            rng: StdRng::seed_from_u64(seed),
            counters,
            log,
        }
    }

    /// Replaces the backoff.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Ships what `pending` holds before `deadline`, putting back what it could not.
    pub async fn flush(&mut self, pending: &mut Pending, deadline: Instant) -> Flushed {
        let mut flushed = Flushed::default();
        if pending.is_empty() {
            return flushed;
        }
        self.installer
            .ensure(&*self.backend, deadline, &self.log)
            .await;
        let mut to_send = pending.take_all();
        let mut attempt = 0;
        let left = loop {
            let round = self.send_round(to_send, deadline, &mut flushed).await;
            if round.retry.is_empty() {
                break round.unsent;
            }
            let delay = self.backoff.delay(attempt, &mut self.rng);
            if !round.unsent.is_empty() || Instant::now() + delay >= deadline {
                let mut left = round.retry;
                left.extend(round.unsent);
                break left;
            }
            tokio::time::sleep(delay).await;
            attempt += 1;
            flushed.retried += round.retry.len();
            to_send = round.retry;
        };
        flushed.left = left.len();
        let dropped = pending.restore(left);
        self.counters.add_dropped_events(dropped as u64);
        self.count(&flushed);
        if flushed.left > 0 {
            self.breaker.failed(Instant::now());
        } else {
            self.breaker.succeeded();
        }
        flushed
    }

    fn count(&self, flushed: &Flushed) {
        self.counters.add_shipped(flushed.shipped as u64);
        self.counters.add_retried(flushed.retried as u64);
        self.counters.add_failed(flushed.failed as u64);
    }

    async fn send_round(
        &self,
        documents: Vec<Document>,
        deadline: Instant,
        flushed: &mut Flushed,
    ) -> Round {
        let mut round = Round::default();
        for request in bulk::split(documents, bulk::MAX_BULK_BYTES) {
            let Some(budget) = remaining(deadline) else {
                round.unsent.extend(request);
                continue;
            };
            let outcome = self.send(&request, budget).await;
            self.sort(request, outcome, &mut round, flushed);
        }
        round
    }

    async fn send(&self, request: &[Document], budget: Duration) -> RequestOutcome {
        let payload = Payload {
            content_type: bulk::CONTENT_TYPE,
            bytes: Bytes::from(bulk::body(request)),
        };
        match call_within(
            &*self.backend,
            Method::POST,
            "/_bulk",
            Some(payload),
            budget,
        )
        .await
        {
            Ok(reply) => {
                let outcome = bulk::judge(reply.status, &reply.body, request.len());
                if let RequestOutcome::Retry(0, reason) = &outcome {
                    self.log.once(
                        "bulk answer",
                        format!("{reason}; retried within each flush's bound"),
                    );
                }
                outcome
            }
            Err(error) => {
                let kind = error.kind();
                self.log.once(
                    &format!("bulk {kind}"),
                    format!("_bulk: {error}; retried within each flush's bound"),
                );
                RequestOutcome::Retry(0, error.to_string())
            }
        }
    }

    fn sort(
        &self,
        request: Vec<Document>,
        outcome: RequestOutcome,
        round: &mut Round,
        flushed: &mut Flushed,
    ) {
        match outcome {
            RequestOutcome::Items(items) => {
                for (document, item) in request.into_iter().zip(items) {
                    match item {
                        ItemOutcome::Shipped => flushed.shipped += 1,
                        ItemOutcome::Retry(_) => round.retry.push(document),
                        ItemOutcome::Failed(status, kind) => {
                            flushed.failed += 1;
                            let kind = kind.unwrap_or_default();
                            self.log.once(
                                &format!("item {status}"),
                                format!("OpenSearch refused a document of {} with {status} {kind}; such documents are counted as failed", document.index),
                            );
                        }
                    }
                }
            }
            RequestOutcome::Retry(status, reason) => {
                if status != 0 {
                    self.log.once(
                        &format!("bulk {status}"),
                        format!("{reason}; retried within each flush's bound"),
                    );
                }
                round.retry.extend(request);
            }
            RequestOutcome::Failed(status) => {
                flushed.failed += request.len();
                self.log.once(
                    &format!("bulk {status}"),
                    format!("_bulk answered {status}; its documents are counted as failed"),
                );
            }
        }
    }
}
