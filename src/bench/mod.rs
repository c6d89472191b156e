//! `upcase bench`: a load generator for any uppercase server (ours, the lecture's Python
//! servers, a student's), over UDP or TCP, in three patterns:
//!
//! - `rr`: request, reply, next request, on each of N flows (TCP: persistent connections).
//! - `crr`: the lecture's TCP client for every request (connect, send, half-close, read to end).
//! - `stream`: N TCP connections writing and reading at once, for throughput.
//!
//! Closed loop by default; with a rate, open loop, with latency counted from each request's
//! intended send time so that a stalled server cannot hide (`flow::Pacer`), and also from its
//! actual send time, labelled as uncorrected. Every reply is checked against
//! [`crate::transform::uppercase`] of its request; wrong replies, losses and connection failures
//! are counted and reported, never ignored. The flows are driven in one of two styles
//! ([`Clients`]): multiplexed on one or two threads (a Tokio runtime), so the bench is not the
//! bottleneck it measures, or each on a thread of its own, as independent clients are.
//!
//! Layout: `options` says what to run; `connect` finds the server and opens the flows before the
//! clock starts; `multiplexed` (with the flows `tcp`, `stream`, `udp`) and `independent` (with
//! its blocking flows) run them; `flow` is what every flow shares (pacing, tallies); `interval`
//! cuts the run into intervals as it goes; `payload` builds the requests and their expected
//! replies; `report` turns the tallies into figures (`latency` reads percentiles off a histogram,
//! `warnings` says when the bench, not the server, set them), and `table`, `plot`, `timeline` and `html`
//! show them; `histogram` carries the latencies in the JSON, so that `merge` can combine runs
//! exactly; [`threshold`] judges a report against `--fail-if` limits; [`process`] reads what a
//! process costs.
//!
//! This module runs the load and returns a [`Report`]; it never prints, reads flags or exits:
//! that is `upcase bench`'s job (`cli::bench`).

mod connect;
mod error;
mod flow;
mod histogram;
mod html;
mod independent;
mod interval;
mod latency;
mod merge;
mod multiplexed;
mod options;
mod payload;
mod plot;
pub mod process;
mod report;
mod stream;
mod table;
mod tcp;
pub mod threshold;
mod timeline;
mod udp;
mod warnings;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use self::connect::{probe_tcp, probe_udp};
pub(crate) use self::error::mismatch;
pub use self::error::BenchError;
use self::flow::{Run, Tally};
pub use self::html::html;
use self::interval::Collector;
pub use self::interval::{Interval, IntervalLatency};
pub use self::latency::{percentile_label, Latency, Percentile};
pub use self::merge::{merge, MergeError};
pub use self::options::{
    default_percentiles, Clients, Options, Pattern, Progress, MAX_INDEPENDENT_FLOWS, MAX_PERCENTILES,
};
use self::payload::Payload;
pub use self::payload::Text;
pub use self::plot::svg;
use self::process::{cpu_time, Process};
pub use self::report::{Cpu, Errors, Merged, Parameters, Report};
use self::report::{CpuSpan, Measured};
pub use self::table::interval_line;
use crate::net::Transport;

/// Runs the load described by `options`, calling `on_progress` at the end of every interval,
/// and returns what it measured.
///
/// Fails only when the run cannot start (bad options, nothing to connect to); everything that
/// goes wrong afterwards is in the report. Raises this process's open-file limit to its maximum
/// when the flows need it.
pub fn run(options: &Options, on_progress: &mut dyn FnMut(&Progress)) -> Result<Report, BenchError> {
    options::validate(options)?;
    let addrs = crate::net::resolve(&options.target)?;
    if let Some(pid) = options.server_pid {
        cpu_time(Process::Pid(pid)).map_err(|reason| BenchError::ServerPid { pid, reason })?;
    }
    if options.conns > 256 {
        // Best effort: if it cannot be raised, the connections that fail are counted.
        let _ = rlimit::increase_nofile_limit(u64::MAX);
    }
    let setup = |reason| BenchError::Setup { what: "cannot start the runtime", reason };
    let runtime = if options.threads <= 1 || options.clients == Clients::Independent {
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(setup)?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threads)
            .enable_all()
            .build()
            .map_err(setup)?
    };
    let tagged = options.pattern != Pattern::Stream;
    let payload = Payload::new(options.size, options.text, options.encoding, tagged);
    let addr = runtime.block_on(async {
        match options.transport {
            Transport::Tcp => probe_tcp(&addrs, options.timeout).await,
            Transport::Udp => probe_udp(&addrs, &payload, options.timeout).await,
        }
    })?;
    let measured = match options.clients {
        Clients::Multiplexed => runtime.block_on(multiplexed::load(options, addr, payload, on_progress))?,
        Clients::Independent => {
            drop(runtime);
            independent::load(options, addr, &payload, on_progress)?
        }
    };
    Ok(Report::new(options, addr, measured))
}

/// The moment the load started, by the wall clock and by the CPU counters.
pub(crate) struct Started {
    wall: SystemTime,
    cpu: [Option<CpuSpan>; 2],
}

/// Starts the clock of a run of `options`: the flows are ready, the load begins now.
pub(crate) fn start(options: &Options) -> (Arc<Run>, Started) {
    let cpu = measure_cpu(options);
    let wall = SystemTime::now();
    let live = Run::new(options.conns, options.duration, options.timeout, options.rate);
    (Arc::new(live), Started { wall, cpu })
}

/// What a run measured, once every flow's tally is in `tally` and the last interval is closed.
pub(crate) fn finish(
    options: &Options,
    live: &Run,
    started: Started,
    tally: Tally,
    collector: Collector,
    threads: usize,
) -> Measured {
    let elapsed = live.start.elapsed();
    let [server_after, bench_after] = measure_cpu(options);
    let [server_before, bench_before] = started.cpu;
    Measured {
        tally,
        elapsed,
        started_at: started.wall,
        intervals: collector.finish(),
        cpu: [span(server_after, server_before), span(bench_after, bench_before)],
        threads,
        cores: std::thread::available_parallelism().map_or(1, usize::from),
    }
}

/// What the caller is told at the end of an interval.
pub(crate) fn progress(live: &Run, interval: Interval) -> Progress {
    Progress {
        elapsed: live.start.elapsed(),
        completed: live.completed.load(Ordering::Relaxed),
        errors: live.errors.load(Ordering::Relaxed),
        interval,
    }
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

/// After a failed connection, a flow waits this long before trying again, so a server that is
/// down is not hammered in a tight loop (which would also starve the other flows).
pub(crate) const BACK_OFF: Duration = Duration::from_millis(10);

/// Waits [`BACK_OFF`], or until the deadline.
pub(crate) async fn back_off(live: &Run) {
    tokio::time::sleep_until((Instant::now() + BACK_OFF).min(live.deadline)).await;
}
