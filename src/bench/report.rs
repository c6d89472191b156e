//! The result of a run: every figure, as a short aligned text table for people and as one JSON
//! object (with the parameters) for scripts.
//!
//! Built once from the flows' merged tallies; it never measures anything itself. Whatever went
//! wrong is in it, counted and described: a report must never look clean when a request failed.

use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::flow::Tally;
use super::{Options, Pattern};
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
    /// Threads of the bench's runtime.
    pub threads: usize,
    /// The server process whose CPU time was measured.
    pub server_pid: Option<u32>,
}

impl From<&Options> for Parameters {
    fn from(options: &Options) -> Self {
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
            threads: options.threads,
            server_pid: options.server_pid,
        }
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

/// Latency of the correct replies, in microseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// The slowest reply.
    pub max: u64,
    /// The fastest reply.
    pub min: u64,
    /// The mean.
    pub mean: f64,
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

/// The outcome of one run of the bench.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// What was asked for.
    pub parameters: Parameters,
    /// The address the flows used (the target's first that answered).
    pub address: SocketAddr,
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
    /// Latency percentiles; `null` when no reply was correct.
    pub latency_us: Option<Latency>,
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
    /// Whether every request got its correct reply (and at least one was made).
    pub ok: bool,
    /// Every correct reply's latency, in microseconds, for plotting.
    #[serde(skip, default = "empty_histogram")]
    pub histogram: Histogram<u64>,
}

/// What a report read back from JSON holds in place of its histogram, which the JSON leaves out.
fn empty_histogram() -> Histogram<u64> {
    Histogram::new_from(
        &Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable!("3 significant figures is valid")),
    )
}

/// CPU time measured around a run, turned into a [`Cpu`] by [`Report::new`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuSpan {
    pub(crate) pid: u32,
    pub(crate) used: Duration,
}

impl Report {
    /// Builds the report of a run of `options` against `address`, whose load lasted `load` and
    /// whose flows were all done after `elapsed`.
    pub(crate) fn new(
        options: &Options,
        address: SocketAddr,
        load: Duration,
        elapsed: Duration,
        tally: Tally,
        cpu: [Option<CpuSpan>; 2],
    ) -> Self {
        let seconds = load.as_secs_f64().max(1e-9);
        let errors = Errors {
            wrong: tally.wrong,
            timeouts: tally.timeouts,
            connection: tally.connection_errors,
            total: tally.wrong + tally.timeouts + tally.connection_errors,
        };
        let histogram = tally.histogram;
        let latency = (!histogram.is_empty()).then(|| Latency {
            p50: histogram.value_at_quantile(0.5),
            p90: histogram.value_at_quantile(0.9),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
            min: histogram.min(),
            mean: histogram.mean(),
        });
        let per_request = |span: Option<CpuSpan>| {
            span.map(|span| Cpu {
                pid: span.pid,
                cpu_s: span.used.as_secs_f64(),
                us_per_request: (tally.ok > 0).then(|| span.used.as_secs_f64() * 1e6 / tally.ok as f64),
                percent_of_a_core: span.used.as_secs_f64() * 100.0 / elapsed.as_secs_f64().max(1e-9),
            })
        };
        let [server, bench] = cpu.map(per_request);
        Self {
            parameters: options.into(),
            address,
            elapsed_s: elapsed.as_secs_f64(),
            requests: tally.ok,
            requests_per_s: tally.ok as f64 / seconds,
            ok: errors.total == 0 && tally.ok > 0,
            errors,
            late_replies: tally.late,
            unsent: tally.unsent,
            latency_us: latency,
            bytes_sent: tally.bytes_sent,
            bytes_received: tally.bytes_received,
            sent_mb_per_s: tally.bytes_sent as f64 / seconds / 1e6,
            received_mb_per_s: tally.bytes_received as f64 / seconds / 1e6,
            server_cpu: server,
            bench_cpu: bench,
            first_problem: tally.first_problem.map(|(_, described)| described),
            histogram,
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
}

/// The text report: a short table, one figure per line, labels aligned.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.parameters;
        let mut out = String::new();
        let mut line = |label: &str, value: String| writeln!(out, "{label:<14}{value}");
        let mode = match p.rate {
            Some(rate) => format!(", open loop at {}/s", thousands(rate.round() as u64)),
            None if p.pattern == Pattern::Stream => String::new(),
            None => ", closed loop".to_owned(),
        };
        let flows = if p.conns == 1 { "1 flow".to_owned() } else { format!("{} flows", p.conns) };
        let size = if p.pattern == Pattern::Stream { "text sent over and over" } else { "requests" };
        let given =
            if p.target == self.address.to_string() { String::new() } else { format!(" ({})", p.target) };
        line("target", format!("{}{given}", self.title()))?;
        line(
            "load",
            format!(
                "{flows}, {:.1} s, {}-byte {} {size}{}{mode}",
                p.duration_s,
                p.size,
                p.text.name(),
                if p.encoding == "utf-8" { String::new() } else { format!(" in {}", p.encoding) }
            ),
        )?;
        line(
            "requests",
            format!(
                "{} correct, {}/s",
                thousands(self.requests),
                thousands(self.requests_per_s.round() as u64)
            ),
        )?;
        if p.pattern == Pattern::Stream {
            line(
                "throughput",
                format!("sent {:.1} MB/s, received {:.1} MB/s", self.sent_mb_per_s, self.received_mb_per_s),
            )?;
        }
        if let Some(l) = &self.latency_us {
            line("", format!("{:>8}{:>8}{:>8}{:>8}{:>8}", "p50", "p90", "p99", "p99.9", "max"))?;
            let cells = [l.p50, l.p90, l.p99, l.p999, l.max].map(|v| format!("{:>8}", thousands(v)));
            line("latency (µs)", cells.concat())?;
        }
        let errors = self.problems().filter(|_| self.errors.total > 0).unwrap_or_else(|| "none".to_owned());
        line("errors", errors)?;
        if self.late_replies > 0 {
            line(
                "late replies",
                format!("{} (came after their request was counted lost)", thousands(self.late_replies)),
            )?;
        }
        if self.unsent > 0 {
            line(
                "unsent",
                format!(
                    "{} due but not sent: the flows were still waiting for replies",
                    thousands(self.unsent)
                ),
            )?;
        }
        for (label, cpu) in [("server CPU", &self.server_cpu), ("bench CPU", &self.bench_cpu)] {
            if let Some(cpu) = cpu {
                let per = cpu.us_per_request.map_or_else(|| "-".to_owned(), |us| format!("{us:.2}"));
                line(
                    label,
                    format!("{per} µs/request ({:.0}% of a core, pid {})", cpu.percent_of_a_core, cpu.pid),
                )?;
            }
        }
        if let Some(first) = &self.first_problem {
            line("first error", first.clone())?;
        }
        match self.problems() {
            None => line("result", "ok: every request got its correct reply".to_owned())?,
            Some(problems) => line("result", format!("PROBLEM: {problems}"))?,
        }
        f.write_str(out.trim_end())
    }
}
