//! The run cut into intervals (`--interval`, 1 s unless told otherwise), as iperf3 does: what each
//! one did, for the live lines, the `--json-stream` events, and the report's figures over time.
//!
//! The collector closes an interval by swapping each flow's recent latencies
//! ([`Run::recent`]) for an empty histogram and summing them; it never waits on a flow and
//! never blocks one for longer than that swap. It measures nothing itself: flows record, it
//! adds up.

use std::sync::atomic::Ordering;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::flow::Run;

/// A report keeps at most this many intervals (a few MB); the live lines and events go on.
pub(crate) const MAX_KEPT: usize = 100_000;

/// What one interval of a run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// When it began, in seconds since the load started.
    pub start_s: f64,
    /// When it ended, in seconds since the load started. The last interval ends at the end of
    /// the load (it may be shorter) and also holds the replies that came after it.
    pub end_s: f64,
    /// Correct replies that came in it.
    pub requests: u64,
    /// Failures counted in it.
    pub errors: u64,
    /// Correct replies per second of it.
    pub requests_per_s: f64,
    /// Latency of its correct replies, in microseconds; `null` when it had none.
    pub latency_us: Option<IntervalLatency>,
}

/// Latency of the correct replies of one interval, in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalLatency {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// The slowest reply.
    pub max: u64,
}

/// Closes intervals one after another and keeps what they did.
pub(crate) struct Collector {
    length: Duration,
    /// Where the interval under way began, since the start of the load.
    begun: Duration,
    errors_before: u64,
    sum: Histogram<u64>,
    spare: Histogram<u64>,
    kept: Vec<Interval>,
    /// Intervals not kept because [`MAX_KEPT`] were.
    dropped: u64,
}

impl Collector {
    /// A collector of intervals of `length`.
    pub(crate) fn new(length: Duration) -> Self {
        Self {
            length,
            begun: Duration::ZERO,
            errors_before: 0,
            sum: recent_histogram(),
            spare: recent_histogram(),
            kept: Vec::new(),
            dropped: 0,
        }
    }

    /// When the interval under way ends, if that is before the end of the load; the last one
    /// is closed by [`Self::close_last`] once every flow has finished.
    pub(crate) fn next_end(&self, live: &Run) -> Option<Instant> {
        let end = live.start + self.begun + self.length;
        (end < live.deadline).then_some(end)
    }

    /// Closes the interval under way at its end ([`Self::next_end`]).
    pub(crate) fn close(&mut self, live: &Run) -> Interval {
        let end = self.begun + self.length;
        self.close_at(live, end)
    }

    /// Closes the last interval at the end of the load, with every reply that came since.
    pub(crate) fn close_last(&mut self, live: &Run) -> Interval {
        let end = live.deadline - live.start;
        self.close_at(live, end)
    }

    fn close_at(&mut self, live: &Run, end: Duration) -> Interval {
        for recent in &live.recent {
            if let Ok(mut recent) = recent.lock() {
                std::mem::swap(&mut *recent, &mut self.spare);
            }
            if !self.spare.is_empty() {
                // Both resize themselves, so adding cannot fail.
                let _ = self.sum.add(&self.spare);
                self.spare.reset();
            }
        }
        let errors = live.errors.load(Ordering::Relaxed);
        let length = end.saturating_sub(self.begun).as_secs_f64().max(1e-9);
        let interval = Interval {
            start_s: self.begun.as_secs_f64(),
            end_s: end.as_secs_f64(),
            requests: self.sum.len(),
            errors: errors.saturating_sub(self.errors_before),
            requests_per_s: self.sum.len() as f64 / length,
            latency_us: (!self.sum.is_empty()).then(|| IntervalLatency {
                p50: self.sum.value_at_quantile(0.5),
                p99: self.sum.value_at_quantile(0.99),
                max: self.sum.max(),
            }),
        };
        self.sum.reset();
        self.begun = end;
        self.errors_before = errors;
        if self.kept.len() < MAX_KEPT {
            self.kept.push(interval.clone());
        } else {
            self.dropped += 1;
        }
        interval
    }

    /// The intervals kept, and how many more were not.
    pub(crate) fn finish(self) -> (Vec<Interval>, u64) {
        (self.kept, self.dropped)
    }
}

/// A histogram for one flow's or one interval's latencies: it grows to the largest latency it
/// holds, so that swapping, adding and clearing it costs as little as the latencies need.
pub(crate) fn recent_histogram() -> Histogram<u64> {
    Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant figures is valid"))
}
