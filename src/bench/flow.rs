//! What every flow shares, whatever its transport and whether it runs as a task or a thread: the
//! run's clock and pacing, the live counters, and the tally a flow keeps of its own requests.
//!
//! A flow records into its own [`Tally`] (histograms and plain counters) and hands it back when it
//! ends. Shared while the run goes on: two relaxed atomic counters, and each flow's histogram of
//! recent latencies, which the interval collector swaps out ([`Run::recent`]). Nothing here does
//! I/O, and nothing here may make a flow wait except [`Pacer::next`] and
//! [`Pacer::next_blocking`], which wait for the next intended send time of an open-loop run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::histogram;
use super::interval::recent_histogram;

/// A flow may send up to one tick of the timer (1 ms) before its intended time; see
/// [`Pacer::next`].
const TIMER_TICK: Duration = Duration::from_millis(1);

/// An open-loop request that leaves later than this after its intended time is behind schedule.
pub(crate) const LATE_SEND: Duration = Duration::from_millis(1);

/// What all flows of a run share, read-only but for the live counters and each flow's recent
/// latencies.
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
    /// Problems so far, for the progress line and the intervals.
    pub(crate) errors: AtomicU64,
    /// Each flow's latencies since the interval collector last took them. A flow locks only its
    /// own, and the collector holds it only to swap in an empty histogram, so the lock is never
    /// waited on in practice and never held across I/O.
    pub(crate) recent: Vec<Mutex<Histogram<u64>>>,
}

impl Run {
    /// A run of `flows` flows that starts now and loads for `duration`.
    pub(crate) fn new(flows: usize, duration: Duration, timeout: Duration, rate: Option<f64>) -> Self {
        let start = Instant::now();
        let deadline = start + duration;
        Self {
            start,
            deadline,
            // A request started just before the deadline may need a timeout to connect and
            // another for its reply.
            hard_stop: deadline + timeout * 2 + Duration::from_secs(1),
            timeout,
            rate,
            flows,
            completed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            recent: (0..flows).map(|_| Mutex::new(recent_histogram())).collect(),
        }
    }

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
    /// Latency of each correct reply, in microseconds, from when its request was due (open
    /// loop) or sent (closed loop): the corrected latency.
    pub(crate) histogram: Histogram<u64>,
    /// Open loop: latency of each correct reply from when its request was actually sent, which
    /// leaves out the time a request waited behind the ones before it (uncorrected).
    pub(crate) uncorrected: Option<Histogram<u64>>,
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
    /// Open loop: requests sent.
    pub(crate) paced: u64,
    /// Open loop: requests sent more than [`LATE_SEND`] after their intended time.
    pub(crate) behind: u64,
    /// Open loop: the latest any request left after its intended time.
    pub(crate) max_lag: Duration,
    /// Payload bytes sent.
    pub(crate) bytes_sent: u64,
    /// Payload bytes received.
    pub(crate) bytes_received: u64,
    /// The first problem met, with when it happened, to show the user one concrete case.
    pub(crate) first_problem: Option<(Instant, String)>,
    /// Which of [`Run::recent`] is this flow's; `None` for the run's total.
    flow: Option<usize>,
    live: Arc<Run>,
}

impl Tally {
    /// The tally of flow number `flow`, whose progress shows in `live`.
    pub(crate) fn for_flow(live: Arc<Run>, flow: usize) -> Self {
        let mut tally = Self::total(live);
        tally.flow = Some(flow);
        tally
    }

    /// An empty tally that flows' tallies are merged into.
    pub(crate) fn total(live: Arc<Run>) -> Self {
        Self {
            histogram: histogram::empty(),
            uncorrected: live.rate.map(|_| histogram::empty()),
            ok: 0,
            wrong: 0,
            timeouts: 0,
            connection_errors: 0,
            late: 0,
            unsent: 0,
            paced: 0,
            behind: 0,
            max_lag: Duration::ZERO,
            bytes_sent: 0,
            bytes_received: 0,
            first_problem: None,
            flow: None,
            live,
        }
    }

    /// A correct reply, just received, to a request due at `due` and sent at `sent`.
    ///
    /// The corrected latency counts from the earlier of the two (see [`Pacer::next`] for why a
    /// request may leave a little early); the uncorrected one from the send.
    pub(crate) fn ok(&mut self, due: Instant, sent: Instant) {
        let now = Instant::now();
        let micros = record(&mut self.histogram, now.saturating_duration_since(due.min(sent)));
        if let Some(uncorrected) = &mut self.uncorrected {
            record(uncorrected, now.saturating_duration_since(sent));
        }
        self.ok += 1;
        if let Some(recent) = self.flow.and_then(|flow| self.live.recent.get(flow)) {
            // Poisoned only if a flow panicked while recording; its interval figures are lost,
            // the totals are not.
            if let Ok(mut recent) = recent.lock() {
                // `record`, not `saturating_record`: this histogram grows to fit (at most to
                // the bounds of the run's), where saturating would clamp to its current top.
                let _ = recent.record(micros.min(histogram::MAX_US));
            }
        }
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
        // All histograms have the same bounds, so adding cannot fail; if it ever did, the
        // counters below still hold every request.
        let _ = self.histogram.add(&other.histogram);
        if let (Some(mine), Some(theirs)) = (&mut self.uncorrected, &other.uncorrected) {
            let _ = mine.add(theirs);
        }
        self.ok += other.ok;
        self.wrong += other.wrong;
        self.timeouts += other.timeouts;
        self.connection_errors += other.connection_errors;
        self.late += other.late;
        self.unsent += other.unsent;
        self.paced += other.paced;
        self.behind += other.behind;
        self.max_lag = self.max_lag.max(other.max_lag);
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.first_problem = match (self.first_problem.take(), other.first_problem) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        };
    }
}

/// Records `latency` in microseconds (at least 1) and returns what it recorded.
fn record(histogram: &mut Histogram<u64>, latency: Duration) -> u64 {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
    histogram.saturating_record(micros);
    micros
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
    /// counts from the earlier of its due time and the moment it was sent ([`Tally::ok`]): from
    /// the send when it left early, from the due time when it left late.
    pub(crate) async fn next(&mut self, tally: &mut Tally) -> Option<Instant> {
        let due = self.schedule(tally)?;
        if due > Instant::now() + TIMER_TICK {
            tokio::time::sleep_until(due - TIMER_TICK).await;
        }
        self.sending(due, tally);
        Some(due)
    }

    /// [`Self::next`] for a flow on a thread of its own: sleeps the thread, whose timer is
    /// precise enough to wake at the due time itself.
    pub(crate) fn next_blocking(&mut self, tally: &mut Tally) -> Option<Instant> {
        let due = self.schedule(tally)?;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        self.sending(due, tally);
        Some(due)
    }

    /// The next request's due time (now, in a closed loop), or `None` once the run is over.
    fn schedule(&mut self, tally: &mut Tally) -> Option<Instant> {
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
        Some(due)
    }

    /// Notes how late an open-loop request leaves.
    fn sending(&self, due: Instant, tally: &mut Tally) {
        if self.live.rate.is_none() {
            return;
        }
        let lag = Instant::now().saturating_duration_since(due);
        tally.paced += 1;
        if lag > LATE_SEND {
            tally.behind += 1;
        }
        tally.max_lag = tally.max_lag.max(lag);
    }

    fn due(&self, rate: f64, k: u64) -> Instant {
        let slot = k as f64 * self.live.flows as f64 + self.flow as f64;
        self.live.start + Duration::from_secs_f64((slot / rate).min(1e9))
    }
}
