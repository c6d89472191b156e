//! `--fail-if`: limits a run must stay within (`p99>2ms`, `errors>0.1%`, `rate<100k`), as k6's
//! thresholds are, so a CI job fails on a slow server and says which limit it crossed.
//!
//! A threshold is read once, strictly (a typo is an error naming what is accepted, never a limit
//! that silently never trips), and judged on a finished [`Report`]: latencies from its whole
//! histogram, so any percentile can be asked for. Nothing here runs load or decides exit statuses;
//! the command line does.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::latency::{percentile_label, quantile};
use super::report::Report;
use crate::format::thousands;

/// What a threshold accepts, for error messages.
const ACCEPTED: &str = "write METRIC OP VALUE, e.g. p99>2ms, errors>0, errors>0.1%, rate<100k. METRIC: a \
     percentile (p50, p99.9, ...), max or mean, with a time (500us, 2ms, 1.5s); errors, wrong, timeouts, \
     connection, unsent or late, with a count (0, 25, 5k) or a share of the requests (0.1%); requests, \
     with a count; rate, with requests per second (100k). OP: >, >=, < or <=";

/// One `--fail-if` limit: the run fails (exit status 3) when `METRIC OP VALUE` holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    text: String,
    metric: Metric,
    op: Op,
    limit: Limit,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Metric {
    Percentile(f64),
    Max,
    Mean,
    Errors,
    Wrong,
    Timeouts,
    Connection,
    Unsent,
    Late,
    Requests,
    Rate,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Above,
    AtLeast,
    Below,
    AtMost,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Limit {
    /// A plain number: microseconds for latencies, a count, or per second for the rate.
    Value(f64),
    /// A share of the requests made, 0 to 1.
    Share(f64),
}

/// Why a `--fail-if` expression cannot be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{why} in {text:?}: {ACCEPTED}")]
pub struct ThresholdError {
    text: String,
    why: String,
}

/// How one threshold fared on a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    /// The threshold as written.
    pub threshold: String,
    /// What was measured, in words (`p99 was 3,112 µs`).
    pub measured: String,
    /// Whether the run crossed it.
    pub breached: bool,
}

impl FromStr for Threshold {
    type Err = ThresholdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |why: &str| ThresholdError { text: text.to_owned(), why: why.to_owned() };
        let at = text.find(['<', '>']).ok_or_else(|| error("no comparison (>, >=, <, <=)"))?;
        let (name, rest) = text.split_at(at);
        let (op, value) = [(">=", Op::AtLeast), (">", Op::Above), ("<=", Op::AtMost), ("<", Op::Below)]
            .into_iter()
            .find_map(|(sign, op)| rest.strip_prefix(sign).map(|value| (op, value)))
            .ok_or_else(|| error("no comparison (>, >=, <, <=)"))?;
        let metric =
            metric(name.trim()).ok_or_else(|| error(&format!("unknown metric {:?}", name.trim())))?;
        let limit = limit(metric, value.trim()).map_err(|why| error(&why))?;
        Ok(Self { text: text.trim().to_owned(), metric, op, limit })
    }
}

fn metric(name: &str) -> Option<Metric> {
    Some(match name.to_ascii_lowercase().as_str() {
        "max" => Metric::Max,
        "mean" => Metric::Mean,
        "errors" => Metric::Errors,
        "wrong" => Metric::Wrong,
        "timeouts" | "lost" => Metric::Timeouts,
        "connection" => Metric::Connection,
        "unsent" => Metric::Unsent,
        "late" => Metric::Late,
        "requests" => Metric::Requests,
        "rate" => Metric::Rate,
        other => {
            let percentile: f64 = other.strip_prefix('p')?.parse().ok()?;
            (0.0..=100.0).contains(&percentile).then_some(Metric::Percentile(percentile))?
        }
    })
}

fn limit(metric: Metric, value: &str) -> Result<Limit, String> {
    let number = |digits: &str| -> Result<f64, String> {
        digits
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| format!("{value:?} is not a number"))
    };
    let scaled = |text: &str| match text.strip_suffix(['k', 'K']) {
        Some(digits) => Ok(number(digits)? * 1e3),
        None => match text.strip_suffix('M') {
            Some(digits) => Ok(number(digits)? * 1e6),
            None => number(text),
        },
    };
    match metric {
        Metric::Percentile(_) | Metric::Max | Metric::Mean => {
            let units = [("us", 1.0), ("µs", 1.0), ("ms", 1e3), ("s", 1e6)];
            let (digits, scale) = units
                .iter()
                .find_map(|(unit, scale)| value.strip_suffix(unit).map(|digits| (digits, scale)))
                .ok_or_else(|| format!("a latency needs a unit (us, ms or s), not {value:?}"))?;
            Ok(Limit::Value(number(digits)? * scale))
        }
        Metric::Rate => Ok(Limit::Value(scaled(value.strip_suffix("/s").unwrap_or(value))?)),
        Metric::Requests => Ok(Limit::Value(scaled(value)?)),
        _ => match value.strip_suffix('%') {
            Some(digits) => Ok(Limit::Share(number(digits)? / 100.0)),
            None => Ok(Limit::Value(scaled(value)?)),
        },
    }
}

impl Threshold {
    /// Whether this threshold judges failures: then it, not the mere presence of a failure,
    /// decides whether failures fail the run (`errors>1%` tolerates a little UDP loss).
    pub fn governs_errors(&self) -> bool {
        matches!(self.metric, Metric::Errors | Metric::Wrong | Metric::Timeouts | Metric::Connection)
    }

    /// How `report` fares against this threshold.
    pub fn judge(&self, report: &Report) -> Verdict {
        let name = match self.metric {
            Metric::Percentile(p) => percentile_label(p),
            _ => self.text.split(['<', '>']).next().unwrap_or_default().trim().to_owned(),
        };
        let Some(measured) = self.measure(report) else {
            return Verdict {
                threshold: self.text.clone(),
                measured: format!("{name}: no correct reply to measure"),
                breached: true,
            };
        };
        let breached = match self.op {
            Op::Above => measured > self.bound(),
            Op::AtLeast => measured >= self.bound(),
            Op::Below => measured < self.bound(),
            Op::AtMost => measured <= self.bound(),
        };
        let shown = match (self.metric, self.limit) {
            (Metric::Percentile(_) | Metric::Max | Metric::Mean, _) => {
                format!("{} µs", thousands(measured.round() as u64))
            }
            (Metric::Rate, _) => format!("{}/s", thousands(measured.round() as u64)),
            (_, Limit::Share(_)) => format!("{:.3}% of {}", measured * 100.0, thousands(attempts(report))),
            _ => thousands(measured.round() as u64),
        };
        Verdict { threshold: self.text.clone(), measured: format!("{name} was {shown}"), breached }
    }

    fn bound(&self) -> f64 {
        match self.limit {
            Limit::Value(v) | Limit::Share(v) => v,
        }
    }

    /// The figure this threshold is about, in its unit; `None` for a latency of no reply.
    fn measure(&self, report: &Report) -> Option<f64> {
        let histogram = &report.histogram;
        let latency = |value: f64| (!histogram.is_empty()).then_some(value);
        let count = match self.metric {
            Metric::Percentile(p) => return latency(histogram.value_at_quantile(quantile(p)) as f64),
            Metric::Max => return latency(histogram.max() as f64),
            Metric::Mean => return latency(histogram.mean()),
            Metric::Rate => return Some(report.requests_per_s),
            Metric::Requests => report.requests,
            Metric::Errors => report.errors.total,
            Metric::Wrong => report.errors.wrong,
            Metric::Timeouts => report.errors.timeouts,
            Metric::Connection => report.errors.connection,
            Metric::Unsent => report.unsent,
            Metric::Late => report.late_replies,
        };
        Some(match self.limit {
            Limit::Share(_) => count as f64 / attempts(report).max(1) as f64,
            Limit::Value(_) => count as f64,
        })
    }
}

/// Requests made: those answered correctly and those that failed.
fn attempts(report: &Report) -> u64 {
    report.requests + report.errors.total
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Judges `report` against every threshold and keeps the verdicts in it.
pub fn judge(report: &mut Report, thresholds: &[Threshold]) {
    report.thresholds = thresholds.iter().map(|threshold| threshold.judge(report)).collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (Metric, Op, Limit) {
        let t: Threshold = text.parse().unwrap_or_else(|e| panic!("{e}"));
        (t.metric, t.op, t.limit)
    }

    #[test]
    fn expressions_are_read_with_their_units() {
        assert_eq!(parsed("p99>2ms"), (Metric::Percentile(99.0), Op::Above, Limit::Value(2000.0)));
        assert_eq!(parsed(" p99.9 >= 1.5s "), (Metric::Percentile(99.9), Op::AtLeast, Limit::Value(1.5e6)));
        assert_eq!(parsed("max<=500us"), (Metric::Max, Op::AtMost, Limit::Value(500.0)));
        assert_eq!(parsed("errors>0"), (Metric::Errors, Op::Above, Limit::Value(0.0)));
        assert_eq!(parsed("lost>0.5%"), (Metric::Timeouts, Op::Above, Limit::Share(0.005)));
        assert_eq!(parsed("rate<100k"), (Metric::Rate, Op::Below, Limit::Value(100_000.0)));
        assert_eq!(parsed("rate<1.5M/s"), (Metric::Rate, Op::Below, Limit::Value(1_500_000.0)));
    }

    #[test]
    fn bad_expressions_say_what_is_wrong_and_what_is_accepted() {
        for (text, why) in [
            ("p99=2ms", "no comparison"),
            ("p99>2", "a latency needs a unit"),
            ("p101>2ms", "unknown metric \"p101\""),
            ("speed>3", "unknown metric \"speed\""),
            ("errors>lots", "is not a number"),
            ("rate<-5", "is not a number"),
        ] {
            let error = text.parse::<Threshold>().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains(why) && error.contains("METRIC OP VALUE"), "{text}: {error}");
        }
    }
}
