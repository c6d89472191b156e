//! What every flow shares, whatever its transport: the run's clock and pacing, the live counters
//! the progress line reads, and the tally a flow keeps of its own requests.
//!
//! A flow records into its own [`Tally`] (a histogram and plain counters, no locks) and hands it
//! back when it ends; only two relaxed atomic counters are shared, for the progress line. Nothing
//! here does I/O, and nothing here may make a flow wait except [`Pacer::next`], which waits for
//! the next intended send time of an open-loop run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

/// Latencies are recorded in microseconds, up to an hour; three significant figures.
const HISTOGRAM_MAX_US: u64 = 3_600_000_000;

/// A flow may send up to one tick of the timer (1 ms) before its intended time; see
/// [`Pacer::next`].
const TIMER_TICK: Duration = Duration::from_millis(1);

/// An empty latency histogram, for [`Run::histogram`].
pub(crate) fn new_histogram() -> Result<Histogram<u64>, hdrhistogram::CreationError> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3)
}

/// What all flows of a run share, read-only but for the two live counters.
#[derive(Debug)]
pub(crate) struct Run {
    /// When the load started: every flow's pacing counts from here.
    pub(crate) start: Instant,
    /// No request is started at or after this.
    pub(crate) deadline: Instant,
    /// No flow waits past this: the last requests, their connections and a stream's last
    /// replies had their timeouts to finish in.
    pub(crate) hard_stop: Instant,
    /// How long to wait for a reply (or a connection) before counting it as failed.
    pub(crate) timeout: Duration,
    /// Open loop: requests per second over all flows. `None`: closed loop.
    pub(crate) rate: Option<f64>,
    /// How many flows share the rate.
    pub(crate) flows: usize,
    /// Requests answered so far (correctly or not), for the progress line.
    pub(crate) completed: AtomicU64,
    /// Problems so far, for the progress line.
    pub(crate) errors: AtomicU64,
    /// An empty histogram that every flow's is made like.
    pub(crate) histogram: Histogram<u64>,
}

impl Run {
    /// Whether a request may still be started.
    pub(crate) fn running(&self) -> bool {
        Instant::now() < self.deadline
    }
}

/// The kinds of failure a request can meet; each is counted, none is ever ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Problem {
    /// A reply came, and it is not the uppercase of the request.
    Wrong,
    /// No reply within the timeout (UDP: lost).
    Timeout,
    /// A connection could not be made, or failed, or the server closed it early.
    Connection,
}

/// One flow's record of its requests. Merged into the report when the run ends.
#[derive(Debug)]
pub(crate) struct Tally {
    /// Latency of each correct reply, in microseconds.
    pub(crate) histogram: Histogram<u64>,
    /// Requests that got their correct reply.
    pub(crate) ok: u64,
    /// Replies that were not the uppercase of their request.
    pub(crate) wrong: u64,
    /// Requests without a reply in time.
    pub(crate) timeouts: u64,
    /// Connections that could not be made or failed.
    pub(crate) connection_errors: u64,
    /// UDP replies that came after their request had been counted as lost.
    pub(crate) late: u64,
    /// Open loop: requests whose intended time came before the end but that were never sent,
    /// because the flow was still waiting for earlier replies.
    pub(crate) unsent: u64,
    /// Payload bytes sent.
    pub(crate) bytes_sent: u64,
    /// Payload bytes received.
    pub(crate) bytes_received: u64,
    /// The first problem met, with when it happened, to show the user one concrete case.
    pub(crate) first_problem: Option<(Instant, String)>,
    live: Arc<Run>,
}

impl Tally {
    /// An empty tally whose progress shows in `live`.
    pub(crate) fn new(live: Arc<Run>) -> Self {
        Self {
            histogram: Histogram::new_from(&live.histogram),
            ok: 0,
            wrong: 0,
            timeouts: 0,
            connection_errors: 0,
            late: 0,
            unsent: 0,
            bytes_sent: 0,
            bytes_received: 0,
            first_problem: None,
            live,
        }
    }

    /// A correct reply, `latency` after its request was due.
    pub(crate) fn ok(&mut self, latency: Duration) {
        self.ok += 1;
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(micros.max(1));
        self.live.completed.fetch_add(1, Ordering::Relaxed);
    }

    /// A failed request; `describe` says what happened, and is called only for the first one.
    pub(crate) fn problem(&mut self, problem: Problem, describe: impl FnOnce() -> String) {
        match problem {
            Problem::Wrong => {
                self.wrong += 1;
                self.live.completed.fetch_add(1, Ordering::Relaxed);
            }
            Problem::Timeout => self.timeouts += 1,
            Problem::Connection => self.connection_errors += 1,
        }
        self.live.errors.fetch_add(1, Ordering::Relaxed);
        if self.first_problem.is_none() {
            self.first_problem = Some((Instant::now(), describe()));
        }
    }

    /// Adds another flow's tally to this one.
    pub(crate) fn merge(&mut self, other: Self) {
        // Both histograms have the same bounds, so adding cannot fail; if it ever did, the
        // counters below still hold every request.
        let _ = self.histogram.add(&other.histogram);
        self.ok += other.ok;
        self.wrong += other.wrong;
        self.timeouts += other.timeouts;
        self.connection_errors += other.connection_errors;
        self.late += other.late;
        self.unsent += other.unsent;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.first_problem = match (self.first_problem.take(), other.first_problem) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        };
    }
}

/// When a flow sends its next request.
///
/// Closed loop: as soon as the previous reply is in. Open loop: request `k` of flow `i` is due
/// at `start + (k × flows + i) / rate`, whatever happened to earlier requests, and its latency
/// counts from that time; so a server that stalls shows the whole stall in the latencies instead
/// of quietly slowing the client down (no coordinated omission).
#[derive(Debug)]
pub(crate) struct Pacer {
    live: Arc<Run>,
    flow: usize,
    next: u64,
}

impl Pacer {
    /// The pacing of flow number `flow`.
    pub(crate) fn new(live: Arc<Run>, flow: usize) -> Self {
        Self { live, flow, next: 0 }
    }

    /// Waits until the next request is due and returns the time it was due, or `None` once the
    /// run is over.
    ///
    /// Tokio's timer has a 1 ms tick: waiting for an exact time would wake up to 1 ms late and
    /// add that to every latency. So a request goes out up to one tick early, and its latency
    /// counts from the earlier of its due time and the moment it was sent ([`Self::latency`]):
    /// from the send when it left early, from the due time when it left late.
    pub(crate) async fn next(&mut self, tally: &mut Tally) -> Option<Instant> {
        let now = Instant::now();
        let Some(rate) = self.live.rate else {
            return self.live.running().then_some(now);
        };
        let due = self.due(rate, self.next);
        if due >= self.live.deadline || now >= self.live.deadline {
            if due < self.live.deadline {
                // Behind schedule when the run ended: requests k with (k × flows + flow) / rate
                // before the end were due and never sent.
                let length = (self.live.deadline - self.live.start).as_secs_f64();
                let slots = (length * rate - self.flow as f64) / self.live.flows as f64;
                let due_in_run = slots.ceil().max(0.0) as u64;
                tally.unsent += due_in_run.saturating_sub(self.next);
                self.next = due_in_run;
            }
            return None;
        }
        self.next += 1;
        if due > now + TIMER_TICK {
            tokio::time::sleep_until(due - TIMER_TICK).await;
        }
        Some(due)
    }

    fn due(&self, rate: f64, k: u64) -> Instant {
        let slot = k as f64 * self.live.flows as f64 + self.flow as f64;
        self.live.start + Duration::from_secs_f64((slot / rate).min(1e9))
    }

    /// The latency of a reply received now to a request due at `due` and sent at `sent`.
    pub(crate) fn latency(due: Instant, sent: Instant) -> Duration {
        Instant::now().saturating_duration_since(due.min(sent))
    }
}
