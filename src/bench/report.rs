//! The result of a run: every figure, with the parameters, as one value that prints as a short
//! table ([`super::table`]), serializes as one JSON object for scripts, and reads back from it
//! (so runs from many machines can be merged, [`super::merge`]).
//!
//! Built once from the flows' merged tallies; it never measures anything itself. Whatever went
//! wrong is in it, counted and described, and so is any sign that the bench rather than the
//! server set the figures: a report must never look clean when a request failed.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::flow::Tally;
use super::interval::{Interval, MAX_KEPT};
use super::latency::Latency;
use super::options::default_percentiles;
use super::threshold::Verdict;
use super::warnings::{cpu_warning, schedule_warnings};
use super::{histogram, Clients, Options, Pattern};
use crate::bench::Text;
use crate::format::thousands;
use crate::net::Transport;

/// What was asked for, as it appears in the JSON report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Parameters {
    /// `tcp` or `udp`.
    pub transport: Transport,
    /// The target as given.
    pub target: String,
    /// `rr`, `crr` or `stream`.
    pub pattern: Pattern,
    /// Flows (TCP connections, UDP sockets) at once.
    pub conns: usize,
    /// Length of the load, in seconds.
    pub duration_s: f64,
    /// Bytes per request (stream: of the repeated text).
    pub size: usize,
    /// `ascii` or `unicode`.
    pub text: Text,
    /// The encoding the text was written in (`utf-8` unless `--encoding` said otherwise).
    pub encoding: String,
    /// Open loop: requests per second in total. `null`: closed loop.
    pub rate: Option<f64>,
    /// How long a reply may take before it counts as lost, in seconds.
    pub timeout_s: f64,
    /// Threads that ran the flows: the runtime's when multiplexed, one per flow (two per
    /// stream flow) when independent.
    pub threads: usize,
    /// `multiplexed` (flows share the bench's threads) or `independent` (a thread per flow).
    #[serde(default)]
    pub clients: Clients,
    /// The length of the intervals the run was cut into, in seconds.
    #[serde(default = "one_second")]
    pub interval_s: f64,
    /// The latency percentiles reported.
    #[serde(default = "default_percentiles")]
    pub percentiles: Vec<f64>,
    /// The server process whose CPU time was measured.
    pub server_pid: Option<u32>,
}

fn one_second() -> f64 {
    1.0
}

impl Parameters {
    /// The parameters of `options`, run by `threads` threads.
    pub(crate) fn new(options: &Options, threads: usize) -> Self {
        Self {
            transport: options.transport,
            target: options.target.clone(),
            pattern: options.pattern,
            conns: options.conns,
            duration_s: options.duration.as_secs_f64(),
            size: options.size,
            text: options.text,
            encoding: options.encoding.name().to_owned(),
            rate: options.rate,
            timeout_s: options.timeout.as_secs_f64(),
            threads,
            clients: options.clients,
            interval_s: options.interval.as_secs_f64(),
            percentiles: options.percentiles.clone(),
            server_pid: options.server_pid,
        }
    }
}

impl From<&Options> for Parameters {
    /// The parameters as asked, before the run says how many threads it used.
    fn from(options: &Options) -> Self {
        let threads = match options.clients {
            Clients::Multiplexed => options.threads,
            // A stream flow reads on one thread and writes on another.
            Clients::Independent if options.pattern == Pattern::Stream => options.conns * 2,
            Clients::Independent => options.conns,
        };
        Self::new(options, threads)
    }
}

/// Everything that went wrong, by kind. Any of these makes the run a failure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Errors {
    /// Replies that were not the uppercase of their request.
    pub wrong: u64,
    /// Requests without a (complete) reply within the timeout; over UDP, lost datagrams.
    pub timeouts: u64,
    /// Connections that could not be made or that failed (refused, reset, closed early).
    pub connection: u64,
    /// All of the above.
    pub total: u64,
}

/// CPU time a process used during the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cpu {
    /// The process (for the bench itself, its own id).
    pub pid: u32,
    /// User plus system time, in seconds (10 ms resolution).
    pub cpu_s: f64,
    /// CPU time per correct reply, in microseconds: the figure to compare servers by.
    pub us_per_request: Option<f64>,
    /// CPU time over wall-clock time: 100 is one core kept busy.
    pub percent_of_a_core: f64,
}

/// Where a merged report came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Merged {
    /// The runs, as named on the command line.
    pub runs: Vec<String>,
    /// How long all of them were loading at once, in seconds: the merged run's duration.
    pub overlap_s: f64,
    /// From the first start to the last end, in seconds.
    pub span_s: f64,
}

/// The outcome of one run of the bench (or of several, merged).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// What was asked for.
    pub parameters: Parameters,
    /// The address the flows used (the target's first that answered).
    pub address: SocketAddr,
    /// When the load started (wall clock; RFC 3339, UTC).
    #[serde(default, with = "rfc3339")]
    pub started_at: Option<SystemTime>,
    /// When the load ended: the start plus the duration (replies still due came after it).
    #[serde(default, with = "rfc3339")]
    pub ended_at: Option<SystemTime>,
    /// Time from the start of the load until the last flow finished, in seconds.
    pub elapsed_s: f64,
    /// Requests that got their correct reply (stream: 64 KiB writes fully echoed).
    pub requests: u64,
    /// Correct replies per second of the load.
    pub requests_per_s: f64,
    /// Failures by kind.
    pub errors: Errors,
    /// UDP replies that came after their request had been counted as lost.
    pub late_replies: u64,
    /// Open loop: requests that were due before the end but never sent, because their flow was
    /// still waiting for earlier replies (more --conns, or the server is too slow for --rate).
    pub unsent: u64,
    /// Open loop: requests that left more than 1 ms after their intended time.
    #[serde(default)]
    pub sends_behind_schedule: u64,
    /// Open loop: the latest a request left after its intended time, in microseconds.
    #[serde(default)]
    pub max_send_lag_us: u64,
    /// Latency percentiles; `null` when no reply was correct. Open loop: counted from each
    /// request's intended send time (corrected for coordinated omission).
    pub latency_us: Option<Latency>,
    /// Open loop only: latency counted from each request's actual send time (uncorrected).
    #[serde(default)]
    pub uncorrected_latency_us: Option<Latency>,
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// Bytes sent per second of the load, in MB/s (10^6 bytes).
    pub sent_mb_per_s: f64,
    /// Bytes received per second of the load, in MB/s.
    pub received_mb_per_s: f64,
    /// The server's CPU time, with --server-pid.
    pub server_cpu: Option<Cpu>,
    /// The bench's own CPU time, to tell whether it was the bottleneck (Linux).
    pub bench_cpu: Option<Cpu>,
    /// The first failure, described.
    pub first_problem: Option<String>,
    /// Signs that the figures measure the bench rather than the server.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The `--fail-if` thresholds and whether each held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Verdict>,
    /// Set when this report merges several runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<Merged>,
    /// Whether every request got its correct reply (and at least one was made).
    pub ok: bool,
    /// What each interval of the run did (none in a merged report).
    #[serde(default)]
    pub intervals: Vec<Interval>,
    /// Every correct reply's latency, in microseconds: HdrHistogram's compressed V2 encoding,
    /// base64 (open loop: corrected).
    #[serde(default = "histogram::empty", with = "histogram::base64_v2")]
    pub histogram: Histogram<u64>,
    /// Open loop only: the uncorrected latencies, encoded the same way.
    #[serde(default, with = "histogram::base64_v2_option")]
    pub uncorrected_histogram: Option<Histogram<u64>>,
}

/// CPU time measured around a run, turned into a [`Cpu`] by [`Report::new`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuSpan {
    pub(crate) pid: u32,
    pub(crate) used: Duration,
}

/// What a run measured, for [`Report::new`].
pub(crate) struct Measured {
    /// All flows' tallies, merged.
    pub(crate) tally: Tally,
    /// From the start of the load until the last flow finished.
    pub(crate) elapsed: Duration,
    /// When the load started, by the wall clock.
    pub(crate) started_at: SystemTime,
    /// The intervals kept, and how many more were not.
    pub(crate) intervals: (Vec<Interval>, u64),
    /// CPU time of the server and of the bench during the run.
    pub(crate) cpu: [Option<CpuSpan>; 2],
    /// Threads that ran the flows.
    pub(crate) threads: usize,
    /// Cores this process may run on.
    pub(crate) cores: usize,
}

impl Report {
    /// Builds the report of a run of `options` against `address`.
    pub(crate) fn new(options: &Options, address: SocketAddr, measured: Measured) -> Self {
        let Measured { tally, elapsed, started_at, intervals: (intervals, dropped), cpu, threads, cores } =
            measured;
        let seconds = options.duration.as_secs_f64().max(1e-9);
        let errors = Errors {
            wrong: tally.wrong,
            timeouts: tally.timeouts,
            connection: tally.connection_errors,
            total: tally.wrong + tally.timeouts + tally.connection_errors,
        };
        let per_request = |span: Option<CpuSpan>| {
            span.map(|span| Cpu {
                pid: span.pid,
                cpu_s: span.used.as_secs_f64(),
                us_per_request: (tally.ok > 0).then(|| span.used.as_secs_f64() * 1e6 / tally.ok as f64),
                percent_of_a_core: span.used.as_secs_f64() * 100.0 / elapsed.as_secs_f64().max(1e-9),
            })
        };
        let [server, bench] = cpu.map(per_request);
        let mut warnings = Vec::new();
        if let Some(bench) = &bench {
            warnings.extend(cpu_warning(bench.percent_of_a_core, threads, cores));
        }
        warnings.extend(schedule_warnings(&tally));
        if dropped > 0 {
            warnings.push(format!(
                "only the first {} intervals are in the report ({} more were not kept): use a longer --interval",
                thousands(MAX_KEPT as u64),
                thousands(dropped)
            ));
        }
        Self {
            parameters: Parameters::new(options, threads),
            address,
            started_at: Some(started_at),
            ended_at: Some(started_at + options.duration),
            elapsed_s: elapsed.as_secs_f64(),
            requests: tally.ok,
            requests_per_s: tally.ok as f64 / seconds,
            ok: errors.total == 0 && tally.ok > 0,
            errors,
            late_replies: tally.late,
            unsent: tally.unsent,
            sends_behind_schedule: tally.behind,
            max_send_lag_us: u64::try_from(tally.max_lag.as_micros()).unwrap_or(u64::MAX),
            latency_us: Latency::of(&tally.histogram, &options.percentiles),
            uncorrected_latency_us: tally
                .uncorrected
                .as_ref()
                .and_then(|h| Latency::of(h, &options.percentiles)),
            bytes_sent: tally.bytes_sent,
            bytes_received: tally.bytes_received,
            sent_mb_per_s: tally.bytes_sent as f64 / seconds / 1e6,
            received_mb_per_s: tally.bytes_received as f64 / seconds / 1e6,
            server_cpu: server,
            bench_cpu: bench,
            first_problem: tally.first_problem.map(|(_, described)| described),
            warnings,
            thresholds: Vec::new(),
            merged: None,
            intervals,
            histogram: tally.histogram,
            uncorrected_histogram: tally.uncorrected,
        }
    }

    /// One line naming what was measured, for titles.
    pub fn title(&self) -> String {
        let p = &self.parameters;
        format!("{} {} to {}", p.transport.name(), p.pattern.name(), self.address)
    }

    /// The problems, in a few words (`12 wrong replies, 3 lost`); `None` when there were none.
    pub fn problems(&self) -> Option<String> {
        let e = &self.errors;
        let lost = if self.parameters.transport == Transport::Udp { "lost" } else { "timed out" };
        let parts: Vec<String> =
            [(e.wrong, "wrong replies"), (e.timeouts, lost), (e.connection, "connection errors")]
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| format!("{} {what}", thousands(n)))
                .collect();
        if !parts.is_empty() {
            Some(parts.join(", "))
        } else if self.requests == 0 {
            Some("no request completed".to_owned())
        } else {
            None
        }
    }

    /// Whether a `--fail-if` threshold was breached.
    pub fn breached(&self) -> bool {
        self.thresholds.iter().any(|verdict| verdict.breached)
    }
}

/// `#[serde(with = …)]` for a wall-clock time: RFC 3339 in UTC, to the microsecond.
mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(time: &Option<SystemTime>, to: S) -> Result<S::Ok, S::Error> {
        match time {
            Some(time) => to.serialize_str(&humantime::format_rfc3339_micros(*time).to_string()),
            None => to.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<Option<SystemTime>, D::Error> {
        Option::<String>::deserialize(from)?
            .map(|text| humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}
