//! The command line of `upcase-compare`, defined once: the doc comments are the help text.
//!
//! Only describes what to run; never runs anything.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

/// Benchmarks upcase (async, threaded, iterative) against C servers (thread per core with
/// recvmmsg, and single-threaded epoll), the lecture's Python servers, socat + tr and iperf3, on
/// loopback, all loaded by upcase's own bench; counts what each server spends per request; and
/// writes docs/BENCHMARKS.md, keeping its hand-written analysis.
///
/// Installs missing tools with apt-get, builds upcase (release) and the C servers, starts every
/// server on a free port and stops them all when it ends, however it ends.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "upcase-compare", version)]
pub struct Options {
    /// Smoke mode: 1 round of 1 s runs and 2,000 idle connections, written to
    /// target/compare/BENCHMARKS-quick.md unless --out says otherwise.
    #[arg(long)]
    pub quick: bool,

    /// Rounds: each peer runs each workload N times, taking turns [default: 3; --quick: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: Option<u32>,

    /// Seconds per run [default: 3; --quick: 1].
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..))]
    pub duration: Option<u64>,

    /// Only these workloads, comma-separated (their ids are printed at the start).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub only: Vec<String>,

    /// Only these servers, comma-separated: async, async-1 (one worker), threaded, iterative,
    /// async-latin1, async-shift_jis, c, c-epoll, py-udp, py-tcp, socat, iperf3.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub peers: Vec<String>,

    /// Where to write the report [default: docs/BENCHMARKS.md of this repository; --quick:
    /// target/compare/BENCHMARKS-quick.md].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Load this upcase binary instead of building the release one (to compare another build).
    #[arg(long, value_name = "FILE")]
    pub upcase: Option<PathBuf>,

    /// Do not apt-get missing tools; fail instead.
    #[arg(long)]
    pub no_install: bool,

    /// Skip counting system calls, context switches and allocations per request (perf stat and
    /// uprobes on glibc's allocator, as root; about 1 minute).
    #[arg(long)]
    pub no_costs: bool,

    /// Set net.ipv4.tcp_tw_reuse_delay (Linux 6.12+) to MS for the run, restored at the end
    /// (root). The default of 1000 ms caps crr on loopback near 14,000 connections/s, whatever
    /// the server (see BENCHMARKS.md); 1 lifts the cap.
    #[arg(long, value_name = "MS")]
    pub tw_reuse_delay: Option<u32>,
}

impl Options {
    /// Rounds of every timed workload.
    pub fn rounds(&self) -> u32 {
        self.rounds.unwrap_or(if self.quick { 1 } else { 3 })
    }

    /// Length of each timed run.
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration.unwrap_or(if self.quick { 1 } else { 3 }))
    }

    /// Connections held open in the idle-memory workload.
    pub fn idle_conns(&self) -> usize {
        if self.quick {
            2_000
        } else {
            10_000
        }
    }

    /// Length of each untimed run under `perf stat`.
    pub fn costs_duration(&self) -> Duration {
        Duration::from_secs(if self.quick { 1 } else { 2 })
    }

    /// Where the report goes: `--out` (relative to the current directory), else the default
    /// under the repository's `root`.
    pub fn out(&self, root: &Path) -> PathBuf {
        match &self.out {
            Some(out) => out.clone(),
            None if self.quick => root.join("target/compare/BENCHMARKS-quick.md"),
            None => root.join("docs/BENCHMARKS.md"),
        }
    }
}
