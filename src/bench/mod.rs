//! `upcase bench`: a load generator for any uppercase server (ours, the lecture's Python
//! servers, a student's), over UDP or TCP, in three patterns:
//!
//! - `rr`: request, reply, next request, on each of N flows (TCP: persistent connections).
//! - `crr`: the lecture's TCP client for every request (connect, send, half-close, read to end).
//! - `stream`: N TCP connections writing and reading at once, for throughput.
//!
//! Closed loop by default; with a rate, open loop, with latency counted from each request's
//! intended send time so that a stalled server cannot hide ([`flow::Pacer`]). Every reply is
//! checked against [`crate::transform::uppercase`] of its request; wrong replies, losses and
//! connection failures are counted and reported, never ignored. Many flows share one or two
//! threads (a Tokio runtime), so the bench is not the bottleneck it measures.
//!
//! Layout: `connect` finds the server and opens the flows before the clock starts; `tcp`, `stream`
//! and `udp` are the flows; `flow` is what they share (pacing, tallies); `payload` builds the
//! requests and their expected replies; `report` and `plot` turn the tallies into figures; [`process`] reads what a process costs.
//!
//! This module runs the load and returns a [`Report`]; it never prints, reads flags or exits:
//! that is `upcase bench`'s job (`cli::bench`).

mod connect;
mod error;
mod flow;
mod payload;
mod plot;
pub mod process;
mod report;
mod stream;
mod tcp;
mod udp;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::transform::Encoding;

use self::connect::{open_flows, probe_tcp, probe_udp, Opened};
pub(crate) use self::error::mismatch;
pub use self::error::BenchError;
use self::flow::{Problem, Run, Tally};
use self::payload::Payload;
pub use self::payload::Text;
pub use self::plot::svg;
use self::process::{cpu_time, Process};
use self::report::CpuSpan;
pub use self::report::{Cpu, Errors, Latency, Parameters, Report};
use crate::net::{Transport, MAX_IPV4_PAYLOAD};

/// How each flow talks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pattern {
    /// Request/response on a connection kept open: the server's cost per request.
    #[default]
    Rr,
    /// Connect, request, response, close: the lecture's client, and the server's cost per
    /// connection. TCP only.
    Crr,
    /// Both directions at once for the whole run: throughput. TCP only.
    Stream,
}

impl Pattern {
    /// `rr`, `crr` or `stream`, as `--pattern` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rr => "rr",
            Self::Crr => "crr",
            Self::Stream => "stream",
        }
    }
}

/// What to run. [`Options::default`] is `upcase bench` without flags.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server, `HOST:PORT` or `[V6]:PORT`.
    pub target: String,
    /// UDP or TCP.
    pub transport: Transport,
    /// rr, crr or stream.
    pub pattern: Pattern,
    /// Flows at once: TCP connections (crr: connections in turn), UDP sockets.
    pub conns: usize,
    /// How long to send requests.
    pub duration: Duration,
    /// Bytes per request (stream: bytes of the text repeated through the connection).
    pub size: usize,
    /// Which text to send.
    pub text: Text,
    /// The encoding the server reads: the text is written in it, and replies are checked
    /// against its uppercase in it.
    pub encoding: Encoding,
    /// Open loop at this many requests per second over all flows; `None`: closed loop, each
    /// flow sends as soon as its previous reply is in.
    pub rate: Option<f64>,
    /// How long to wait for a connection or a reply before counting a failure.
    pub timeout: Duration,
    /// Measure this process's CPU time (the server's), to give its cost per request (Linux).
    pub server_pid: Option<u32>,
    /// Threads that run the flows. One leaves the other cores to a server on the same machine.
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            target: "localhost:12000".to_owned(),
            transport: Transport::Tcp,
            pattern: Pattern::Rr,
            conns: 1,
            duration: Duration::from_secs(5),
            size: 64,
            text: Text::Ascii,
            encoding: Encoding::Utf8,
            rate: None,
            timeout: Duration::from_secs(1),
            server_pid: None,
            threads: 1,
        }
    }
}

/// How far the run has got, given to the caller about once a second.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Time since the load started.
    pub elapsed: Duration,
    /// Replies so far, correct or not.
    pub completed: u64,
    /// Failures so far.
    pub errors: u64,
}

/// Runs the load described by `options`, calling `on_progress` about once a second, and
/// returns what it measured.
///
/// Fails only when the run cannot start (bad options, nothing to connect to); everything that
/// goes wrong afterwards is in the report. Raises this process's open-file limit to its maximum
/// when the flows need it.
pub fn run(options: &Options, on_progress: &mut dyn FnMut(&Progress)) -> Result<Report, BenchError> {
    validate(options)?;
    let addrs = crate::net::resolve(&options.target)?;
    if let Some(pid) = options.server_pid {
        cpu_time(Process::Pid(pid)).map_err(|reason| BenchError::ServerPid { pid, reason })?;
    }
    if options.conns > 256 {
        // Best effort: if it cannot be raised, the connections that fail are counted.
        let _ = rlimit::increase_nofile_limit(u64::MAX);
    }
    let setup = |reason| BenchError::Setup { what: "cannot start the runtime", reason };
    let runtime = if options.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(setup)?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threads)
            .enable_all()
            .build()
            .map_err(setup)?
    };
    runtime.block_on(load(options, &addrs, on_progress))
}

fn validate(options: &Options) -> Result<(), BenchError> {
    let invalid = |why: &str| Err(BenchError::Invalid(why.to_owned()));
    if options.transport == Transport::Udp && options.pattern != Pattern::Rr {
        let pattern = options.pattern.name();
        return Err(BenchError::Invalid(format!(
            "--pattern {pattern} needs TCP (UDP has no connections or streams); use --pattern rr \
             with --udp, or drop --udp"
        )));
    }
    if options.conns == 0 {
        return invalid("--conns must be at least 1");
    }
    if options.size == 0 {
        return invalid("--size must be at least 1 byte");
    }
    if options.duration.is_zero() || options.timeout.is_zero() {
        return invalid("--duration and --timeout must be longer than 0");
    }
    if options.duration > Duration::from_secs(365 * 24 * 3600) {
        return invalid("--duration must be under a year");
    }
    match options.rate {
        Some(_) if options.pattern == Pattern::Stream => {
            return invalid("--rate paces requests: use it with --pattern rr or crr, not stream")
        }
        Some(rate) if !(rate.is_finite() && rate > 0.0) => {
            return invalid("--rate must be a positive number")
        }
        _ => {}
    }
    if options.transport == Transport::Udp {
        let reply = Payload::new(options.size, options.text, options.encoding, true).expected().len();
        if options.size.max(reply) > MAX_IPV4_PAYLOAD {
            return Err(BenchError::Invalid(format!(
                "a {}-byte request (reply: {reply} bytes) does not fit in one UDP datagram (at most \
                 {MAX_IPV4_PAYLOAD}); lower --size, or use TCP",
                options.size
            )));
        }
    }
    Ok(())
}

/// Checks the server is there, opens the flows, runs them until the end, and reports.
async fn load(
    options: &Options,
    addrs: &[SocketAddr],
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<Report, BenchError> {
    let tagged = options.pattern != Pattern::Stream;
    let payload = Payload::new(options.size, options.text, options.encoding, tagged);
    let addr = match options.transport {
        Transport::Tcp => probe_tcp(addrs, options.timeout).await?,
        Transport::Udp => probe_udp(addrs, &payload, options.timeout).await?,
    };
    let histogram = flow::new_histogram()
        .map_err(|e| BenchError::Setup { what: "cannot make a histogram", reason: io::Error::other(e) })?;
    let flows = open_flows(options, addr).await?;
    let cpu_before = measure_cpu(options);
    let start = Instant::now();
    let deadline = start + options.duration;
    let live = Arc::new(Run {
        start,
        deadline,
        // A request started just before the deadline may need a timeout to connect and another
        // for its reply.
        hard_stop: deadline + options.timeout * 2 + Duration::from_secs(1),
        timeout: options.timeout,
        rate: options.rate,
        flows: options.conns,
        completed: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        histogram,
    });
    let mut tasks = Vec::with_capacity(options.conns);
    for (id, opened) in flows.into_iter().enumerate() {
        let (live, payload) = (Arc::clone(&live), payload.clone());
        tasks.push(tokio::spawn(async move {
            match opened {
                Opened::Rr(initial) => tcp::rr(live, id, addr, payload, initial).await,
                Opened::Stream(initial) => stream::run(live, addr, payload, initial).await,
                Opened::Crr => tcp::crr(live, id, addr, payload).await,
                Opened::Udp(socket) => udp::rr(live, id, addr, payload, socket).await,
            }
        }));
    }
    report_progress(&live, on_progress).await;
    // Flows end by the hard stop by themselves; one that has not a second later is stuck, and
    // only its requests in flight are lost by stopping it.
    let hard_stop = live.hard_stop + Duration::from_secs(1);
    let mut tally = Tally::new(Arc::clone(&live));
    for (id, mut task) in tasks.into_iter().enumerate() {
        match tokio::time::timeout_at(hard_stop, &mut task).await {
            Ok(Ok(flow)) => tally.merge(flow),
            Ok(Err(e)) => tally.problem(Problem::Connection, || format!("flow {id} stopped: {e}")),
            Err(_) => {
                task.abort();
                tally.problem(Problem::Timeout, || {
                    format!("flow {id} was still waiting for the server at the end")
                });
            }
        }
    }
    let elapsed = start.elapsed();
    let [server_after, bench_after] = measure_cpu(options);
    let [server_before, bench_before] = cpu_before;
    let cpu = [span(server_after, server_before), span(bench_after, bench_before)];
    Ok(Report::new(options, addr, options.duration, elapsed, tally, cpu))
}

/// Calls `on_progress` once a second until the deadline.
async fn report_progress(live: &Run, on_progress: &mut dyn FnMut(&Progress)) {
    let mut next = live.start + Duration::from_secs(1);
    while next < live.deadline {
        tokio::time::sleep_until(next).await;
        on_progress(&Progress {
            elapsed: live.start.elapsed(),
            completed: live.completed.load(Ordering::Relaxed),
            errors: live.errors.load(Ordering::Relaxed),
        });
        next += Duration::from_secs(1);
    }
    tokio::time::sleep_until(live.deadline).await;
}

/// CPU time so far of the server (with --server-pid) and of the bench.
fn measure_cpu(options: &Options) -> [Option<CpuSpan>; 2] {
    let server =
        options.server_pid.and_then(|pid| cpu_time(Process::Pid(pid)).ok().map(|used| CpuSpan { pid, used }));
    let bench = cpu_time(Process::Myself).ok().map(|used| CpuSpan { pid: std::process::id(), used });
    [server, bench]
}

/// CPU time between two measurements; `None` if either is missing (the server exited).
fn span(after: Option<CpuSpan>, before: Option<CpuSpan>) -> Option<CpuSpan> {
    let (after, before) = (after?, before?);
    Some(CpuSpan { pid: after.pid, used: after.used.saturating_sub(before.used) })
}

/// After a failed connection, a flow waits a little before trying again, so a server that is
/// down is not hammered in a tight loop (which would also starve the other flows).
pub(crate) async fn back_off(live: &Run) {
    let pause = Instant::now() + Duration::from_millis(10);
    tokio::time::sleep_until(pause.min(live.deadline)).await;
}
