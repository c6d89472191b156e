//! One run's figures: a load from upcase's bench (run in this process) or iperf3 against a
//! running peer, with the server's CPU time; memory per idle connection ([`idle`]); and what a
//! server spends per request, counted by `perf stat` ([`costs`]).
//!
//! A run that fails is an [`Outcome::Failed`] with its reason, never an error that stops the
//! comparison: the report shows it. Never starts or stops a peer.

pub mod costs;
pub mod idle;

use std::process::Command;
use std::time::Duration;

use serde::Deserialize;
use upcase::bench::process::{cpu_time_with_children, Process};
use upcase::bench::Report;

use crate::peers::Running;
use crate::tools;
use crate::workloads::BenchLoad;

/// Less server CPU than this in a run, and CPU per request is not given: a few 10 ms clock
/// ticks are too coarse to divide (or the server was starved).
const MIN_CPU_S: f64 = 0.05;

/// What one run of one peer gave.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The run succeeded: its figures.
    Measured(Figures),
    /// It failed, and why.
    Failed(String),
}

/// The figures of a successful run; each is `None` where it does not apply or was not measured.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Correct replies (crr: connections) per second.
    pub per_s: Option<f64>,
    /// Median latency, µs.
    pub p50: Option<f64>,
    /// 99th percentile latency, µs.
    pub p99: Option<f64>,
    /// Server CPU time per correct reply, µs.
    pub cpu_us: Option<f64>,
    /// Server CPU time per byte sent to it, ns.
    pub cpu_ns_per_byte: Option<f64>,
    /// MB/s sent to the server (iperf3: received by it).
    pub sent_mb_s: Option<f64>,
    /// MB/s of replies.
    pub received_mb_s: Option<f64>,
    /// The bench's own CPU, % of a core.
    pub bench_core: Option<f64>,
    /// The idle-connection workload's figures.
    pub idle: Option<Box<idle::Idle>>,
}

/// A figure that tables, targets and ratios take medians of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    /// [`Figures::per_s`].
    PerS,
    /// [`Figures::p50`].
    P50,
    /// [`Figures::p99`].
    P99,
    /// [`Figures::cpu_us`].
    CpuUs,
    /// [`Figures::cpu_ns_per_byte`].
    CpuNsPerByte,
    /// [`Figures::sent_mb_s`].
    SentMbS,
    /// [`Figures::received_mb_s`].
    ReceivedMbS,
    /// [`Figures::bench_core`].
    BenchCore,
    /// User-space memory per idle connection, bytes.
    BytesPerConn,
    /// Idle connections the server kept open.
    Held,
    /// The server's threads while the connections were idle.
    ThreadsWhileIdle,
    /// Seconds the server took to release the closed connections.
    ReleasedS,
}

impl Figures {
    /// The value of `figure`, if this run has it.
    pub fn get(&self, figure: Figure) -> Option<f64> {
        let idle = self.idle.as_ref();
        match figure {
            Figure::PerS => self.per_s,
            Figure::P50 => self.p50,
            Figure::P99 => self.p99,
            Figure::CpuUs => self.cpu_us,
            Figure::CpuNsPerByte => self.cpu_ns_per_byte,
            Figure::SentMbS => self.sent_mb_s,
            Figure::ReceivedMbS => self.received_mb_s,
            Figure::BenchCore => self.bench_core,
            Figure::BytesPerConn => idle.and_then(|i| i.bytes_per_conn),
            Figure::Held => idle.map(|i| i.held as f64),
            Figure::ThreadsWhileIdle => idle.map(|i| i.threads_while_idle as f64),
            Figure::ReleasedS => idle.map(|i| i.released_s),
        }
    }
}

/// Runs `load` for `duration` against `peer` with upcase's bench, in this process; returns the
/// outcome and, if the bench ran, its report (kept with the run's files).
pub fn bench(peer: &mut Running, load: &BenchLoad, duration: Duration) -> (Outcome, Option<Report>) {
    let pid = peer.pid();
    // A forking server's CPU is read here, with its reaped children; the bench reads the others'.
    let before = peer.peer.forks().then(|| cpu_time_with_children(Process::Pid(pid)).ok()).flatten();
    let server_pid = (!peer.peer.forks()).then_some(pid);
    let options = match load.options(peer.addr(), duration, server_pid) {
        Ok(options) => options,
        Err(e) => return (Outcome::Failed(format!("{e:#}")), None),
    };
    let report = match upcase::bench::run(&options, &mut |_| {}) {
        Ok(report) => report,
        Err(e) => return (Outcome::Failed(e.to_string()), None),
    };
    let cpu_s = match before {
        Some(before) => {
            // A forked child's time counts once it has exited and been reaped.
            std::thread::sleep(Duration::from_millis(500));
            cpu_time_with_children(Process::Pid(pid))
                .ok()
                .map(|after| after.saturating_sub(before).as_secs_f64())
        }
        None => report.server_cpu.as_ref().map(|cpu| cpu.cpu_s),
    };
    (from_report(&report, cpu_s), Some(report))
}

fn from_report(report: &Report, cpu_s: Option<f64>) -> Outcome {
    if let Some(problems) = report.problems() {
        let first = report.first_problem.as_deref().map(|p| format!("; first: {p}")).unwrap_or_default();
        return Outcome::Failed(format!("{problems}{first}"));
    }
    let cpu_s = cpu_s.filter(|&s| s >= MIN_CPU_S);
    let requests = report.requests as f64;
    let latency = report.latency_us.as_ref();
    Outcome::Measured(Figures {
        per_s: Some(report.requests_per_s),
        p50: latency.map(|l| l.p50 as f64),
        p99: latency.map(|l| l.p99 as f64),
        cpu_us: cpu_s.filter(|_| requests > 0.0).map(|s| s * 1e6 / requests),
        cpu_ns_per_byte: cpu_s.filter(|_| report.bytes_sent > 0).map(|s| s * 1e9 / report.bytes_sent as f64),
        sent_mb_s: Some(report.sent_mb_per_s),
        received_mb_s: Some(report.received_mb_per_s),
        bench_core: report.bench_cpu.as_ref().map(|cpu| cpu.percent_of_a_core),
        idle: None,
    })
}

/// What `iperf3 --json` reports, as far as the comparison reads it.
#[derive(Debug, Deserialize)]
struct IperfReport {
    error: Option<String>,
    end: Option<IperfEnd>,
}

#[derive(Debug, Deserialize)]
struct IperfEnd {
    sum_received: IperfSum,
}

#[derive(Debug, Deserialize)]
struct IperfSum {
    bytes: u64,
    bits_per_second: f64,
}

/// Runs iperf3's client for `duration` against the iperf3 server `peer`: one way, the ceiling of
/// a stream on this machine.
pub fn iperf3(peer: &mut Running, duration: Duration) -> Outcome {
    let pid = Process::Pid(peer.pid());
    let before = cpu_time_with_children(pid).ok();
    let mut command = Command::new("iperf3");
    command.args([
        "-c",
        "127.0.0.1",
        "-p",
        &peer.port.to_string(),
        "-t",
        &duration.as_secs().to_string(),
        "--json",
    ]);
    let out = match tools::run_bounded(command, duration + Duration::from_secs(30)) {
        Ok(out) => out,
        Err(e) => return Outcome::Failed(format!("{e:#}")),
    };
    let after = cpu_time_with_children(pid).ok();
    let report: IperfReport = match serde_json::from_slice(&out.stdout) {
        Ok(report) => report,
        Err(e) => {
            return Outcome::Failed(format!(
                "iperf3 exited {}: {e}: {}",
                out.status,
                tools::last_line(&out.stderr)
            ))
        }
    };
    let received = match (report.error, report.end) {
        (None, Some(end)) if out.status.success() => end.sum_received,
        (error, _) => {
            return Outcome::Failed(format!("iperf3 exited {}: {}", out.status, error.unwrap_or_default()))
        }
    };
    let cpu_s = before.zip(after).map(|(b, a)| a.saturating_sub(b).as_secs_f64()).filter(|&s| s >= MIN_CPU_S);
    Outcome::Measured(Figures {
        // One way only: what its server received is its "in"; nothing comes back.
        sent_mb_s: Some(received.bits_per_second / 8e6),
        cpu_ns_per_byte: cpu_s.filter(|_| received.bytes > 0).map(|s| s * 1e9 / received.bytes as f64),
        ..Figures::default()
    })
}
