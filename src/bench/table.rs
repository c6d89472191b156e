//! The text report: a short table, one figure per line, labels aligned, that a person reads at a
//! glance and a script can still `grep`. Also the one-line form of an interval, for the live
//! lines.
//!
//! Pure formatting of a [`Report`]: nothing here measures or judges.

use std::fmt::{self, Write as _};

use super::interval::Interval;
use super::latency::{percentile_label, Latency};
use super::report::Report;
use super::{Clients, Pattern};
use crate::format::thousands;

/// Width of a latency column.
const CELL: usize = 8;

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
        let flows = match p.clients {
            Clients::Multiplexed => {
                let threads =
                    if p.threads == 1 { "1 thread".to_owned() } else { format!("{} threads", p.threads) };
                let flows = if p.conns == 1 { "1 flow".to_owned() } else { format!("{} flows", p.conns) };
                format!("{flows} on {threads}")
            }
            Clients::Independent if p.conns == 1 => "1 independent client (a thread)".to_owned(),
            Clients::Independent => format!("{} independent clients (a thread each)", p.conns),
        };
        let size = if p.pattern == Pattern::Stream { "text sent over and over" } else { "requests" };
        let given =
            if p.target == self.address.to_string() { String::new() } else { format!(" ({})", p.target) };
        line("target", format!("{}{given}", self.title()))?;
        if let Some(merged) = &self.merged {
            line(
                "merged",
                format!(
                    "{} runs, loading together for {:.2} s (of {:.2} s from first start to last end): {}",
                    merged.runs.len(),
                    merged.overlap_s,
                    merged.span_s,
                    merged.runs.join(", ")
                ),
            )?;
        }
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
        if let Some(latency) = &self.latency_us {
            let heads: Vec<String> =
                latency.percentiles.iter().map(|q| percentile_label(q.percentile)).collect();
            let heads: String = heads.iter().map(|head| format!("{head:>CELL$}")).collect();
            match &self.uncorrected_latency_us {
                None => {
                    line("", format!("{heads}{:>CELL$}", "max"))?;
                    line("latency (µs)", cells(latency))?;
                }
                Some(uncorrected) => {
                    line("latency (µs)", format!("{heads}{:>CELL$}", "max"))?;
                    line(
                        "  corrected",
                        format!("{}  from each request's intended send time", cells(latency)),
                    )?;
                    line("  uncorrected", format!("{}  from its actual send time", cells(uncorrected)))?;
                }
            }
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
        for warning in &self.warnings {
            line("warning", warning.clone())?;
        }
        if let Some(first) = &self.first_problem {
            line("first error", first.clone())?;
        }
        for verdict in &self.thresholds {
            let state = if verdict.breached { "BREACHED" } else { "met" };
            line("threshold", format!("{state}: {} ({})", verdict.threshold, verdict.measured))?;
        }
        match self.problems() {
            None => line("result", "ok: every request got its correct reply".to_owned())?,
            Some(problems) => line("result", format!("PROBLEM: {problems}"))?,
        }
        f.write_str(out.trim_end())
    }
}

/// The asked percentiles and the maximum of `latency`, each in its column.
fn cells(latency: &Latency) -> String {
    let mut row: String = latency.percentiles.iter().map(|q| format!("{:>CELL$}", thousands(q.us))).collect();
    let _ = write!(row, "{:>CELL$}", thousands(latency.max));
    row
}

/// An interval as one line, like iperf3's: when, requests/s, errors, p50 and p99.
pub fn interval_line(interval: &Interval) -> String {
    let latency = interval.latency_us.as_ref().map_or_else(
        || "no correct reply".to_owned(),
        |l| format!("p50 {:>7} µs   p99 {:>7} µs", thousands(l.p50), thousands(l.p99)),
    );
    let when = format!("{:.1}-{:.1} s", interval.start_s, interval.end_s);
    format!(
        "{when:>15} {:>11} requests/s {:>7} errors   {latency}",
        thousands(interval.requests_per_s.round() as u64),
        thousands(interval.errors),
    )
}
