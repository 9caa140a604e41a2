//! The time budgets of the two moments the extension works, and the wait for the last report.
//!
//! Lambda gives an extension's SHUTDOWN 2,000 ms (some of it the runtime's) and sends the
//! `platform.report` of the last invocation late, often only during shutdown. So the shutdown
//! first waits for that report, woken by the listener each time a POST arrives (no fixed sleep,
//! the Python sample's `sleep(1)`), but at most [`MAX_REPORT_WAIT`] and at most
//! [`REPORT_WAIT_SHARE_PERCENT`] % of the time left, so at least 60 % remains for the flush. Then,
//! within the same bound, it keeps taking POSTs until none has come for [`QUIET_GAP`]: what the
//! function printed after its response (a panic in a span exporter, say) comes right after the
//! report, and the local stack's end-to-end test lost those lines without this. Then it flushes
//! everything before `deadlineMs` − [`DEADLINE_MARGIN`].
//!
//! (INVOKE-time flushes run in the background, bounded by `DISPATCH_TIMEOUT_MS` alone: see
//! [`shipper`](crate::shipper). The shutdown waits for the one in flight before its own.)

use std::time::Duration;

use tokio::time::Instant;

use crate::queue::PostQueue;

/// What is kept free before a Lambda deadline.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(100);
/// The longest wait for the last report.
pub const MAX_REPORT_WAIT: Duration = Duration::from_millis(500);
/// The silence on the listener that ends the shutdown's intake.
pub const QUIET_GAP: Duration = Duration::from_millis(30);
/// The largest share of the time left the wait may take.
pub const REPORT_WAIT_SHARE_PERCENT: u32 = 40;
/// No budget is longer than Lambda's longest function timeout (15 minutes), whatever a
/// deadline says, so adding one to an `Instant` cannot overflow.
pub const LONGEST_BUDGET: Duration = Duration::from_secs(15 * 60);

/// The time from `now_ms` to `deadline_ms` (epoch milliseconds) less [`DEADLINE_MARGIN`], at
/// most [`LONGEST_BUDGET`].
pub fn until_deadline(now_ms: u64, deadline_ms: u64) -> Duration {
    Duration::from_millis(deadline_ms.saturating_sub(now_ms))
        .saturating_sub(DEADLINE_MARGIN)
        .min(LONGEST_BUDGET)
}

/// How long the shutdown waits for the last report.
pub fn report_wait(now_ms: u64, deadline_ms: u64) -> Duration {
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms)).min(LONGEST_BUDGET);
    (left * REPORT_WAIT_SHARE_PERCENT / 100).min(MAX_REPORT_WAIT)
}

/// Waits until `arrived` says so, calling it now and after each POST queued, or until `end`;
/// returns whether it said so.
pub async fn wait_for(queue: &PostQueue, end: Instant, mut arrived: impl FnMut() -> bool) -> bool {
    loop {
        if arrived() {
            return true;
        }
        tokio::select! {
            () = queue.arrived() => {}
            () = tokio::time::sleep_until(end) => return arrived(),
        }
    }
}

/// Calls `take` for each POST queued until none has come for `gap`, or until `end`.
pub async fn until_quiet(queue: &PostQueue, gap: Duration, end: Instant, mut take: impl FnMut()) {
    loop {
        take();
        let quiet = (Instant::now() + gap).min(end);
        tokio::select! {
            () = queue.arrived() => {
                if Instant::now() >= end {
                    take();
                    return;
                }
            }
            () = tokio::time::sleep_until(quiet) => {
                take();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shutdown_budget_keeps_the_margin_and_the_bound() {
        let now = 1_000_000;
        assert_eq!(until_deadline(now, now + 2000), Duration::from_millis(1900));
        assert_eq!(until_deadline(now, now + 50), Duration::ZERO);
        assert_eq!(until_deadline(now, now - 5), Duration::ZERO);
        assert_eq!(until_deadline(now, u64::MAX), LONGEST_BUDGET);
    }

    #[test]
    fn the_report_wait_leaves_most_of_the_shutdown_to_the_flush() {
        let now = 1_000_000;
        assert_eq!(report_wait(now, now + 2000), Duration::from_millis(500));
        assert_eq!(report_wait(now, now + 1000), Duration::from_millis(400));
        assert_eq!(report_wait(now, now + 300), Duration::from_millis(120));
        assert_eq!(report_wait(now, now), Duration::ZERO);
        for left in [0, 1, 99, 250, 1000, 1249, 2000, 10_000] {
            let wait = report_wait(now, now + left).as_millis() as u64;
            assert!(wait <= 500 && wait * 100 <= left * 40, "{left}: {wait}");
        }
    }
}
