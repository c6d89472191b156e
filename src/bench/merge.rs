//! `upcase bench merge`: many runs made at once (one per machine, or per pod of a Kubernetes Job)
//! combined into one report, exactly: requests, errors and bytes summed, flows summed,
//! percentiles computed on the sum of the runs' histograms (never averaged: the mean of p99s is
//! not a p99), and the duration taken as the time all the runs were loading together.
//!
//! Runs that measured different things (another target, pattern, transport, request size, text,
//! encoding, client style, or open against closed loop) are refused with the difference named.
//! Nothing here reads files or runs load.

use std::time::{Duration, SystemTime};

use super::histogram;
use super::latency::Latency;
use super::report::{Errors, Merged, Parameters, Report};

/// Why runs cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Nothing was given.
    #[error("no runs to merge: give the JSON reports of `upcase bench --json`")]
    Empty,
    /// Two runs measured different things.
    #[error(
        "{other} cannot be merged with {first}: it has another {what} ({theirs}, not {ours}); only runs of \
         one target, transport, pattern, request size, text, encoding and client style, all open or all \
         closed loop, can be merged (different --conns are fine)"
    )]
    Differ {
        /// The first run's name.
        first: String,
        /// The other run's name.
        other: String,
        /// What differs.
        what: &'static str,
        /// The first run's value.
        ours: String,
        /// The other run's value.
        theirs: String,
    },
    /// A report without start and end times (from an older upcase).
    #[error("{run} has no start and end times (written by an older upcase?): run it again to merge it")]
    NoTimes {
        /// The run's name.
        run: String,
    },
    /// A report with replies but no histogram to merge them by.
    #[error(
        "{run} has {requests} correct replies but no latency histogram (written by an older upcase?): run it \
         again to merge it"
    )]
    NoHistogram {
        /// The run's name.
        run: String,
        /// Its correct replies.
        requests: u64,
    },
    /// A histogram that does not fit the bench's bounds.
    #[error("{run}'s latency histogram cannot be added: {reason}")]
    Histogram {
        /// The run's name.
        run: String,
        /// Why.
        reason: String,
    },
    /// The runs never loaded the server at the same time.
    #[error(
        "the runs never loaded the server at the same time ({late} started {gap:.3} s after another run \
         ended): merge runs made together"
    )]
    NoOverlap {
        /// The run that started after another ended.
        late: String,
        /// How long after.
        gap: f64,
    },
}

/// Merges `runs` (each a name, as given on the command line, and its report) into one report,
/// with `percentiles` (or the first run's).
pub fn merge(runs: &[(String, Report)], percentiles: Option<&[f64]>) -> Result<Report, MergeError> {
    let [(first_name, first), ..] = runs else { return Err(MergeError::Empty) };
    for (name, run) in runs {
        same(first_name, &first.parameters, name, &run.parameters)?;
        if run.requests > 0 && run.histogram.len() != run.requests {
            return Err(MergeError::NoHistogram { run: name.clone(), requests: run.requests });
        }
    }
    let spans: Vec<(SystemTime, SystemTime)> = runs
        .iter()
        .map(|(name, run)| match (run.started_at, run.ended_at) {
            (Some(start), Some(end)) => Ok((start, end)),
            _ => Err(MergeError::NoTimes { run: name.clone() }),
        })
        .collect::<Result<_, _>>()?;
    let from = spans.iter().map(|(start, _)| *start).max().unwrap_or(SystemTime::UNIX_EPOCH);
    let until = spans.iter().map(|(_, end)| *end).min().unwrap_or(SystemTime::UNIX_EPOCH);
    let Ok(overlap) = until.duration_since(from) else {
        let late = runs.iter().zip(&spans).max_by_key(|(_, (start, _))| *start).map(|((name, _), _)| name);
        let gap = from.duration_since(until).unwrap_or_default().as_secs_f64();
        return Err(MergeError::NoOverlap { late: late.unwrap_or(first_name).clone(), gap });
    };
    let earliest = spans.iter().map(|(start, _)| *start).min().unwrap_or(from);
    let latest = spans.iter().map(|(_, end)| *end).max().unwrap_or(until);
    let span = latest.duration_since(earliest).unwrap_or_default();
    let last_flow_done = runs
        .iter()
        .zip(&spans)
        .map(|((_, run), (start, _))| *start + Duration::from_secs_f64(run.elapsed_s.max(0.0)))
        .max()
        .unwrap_or(latest);

    let mut sum = histogram::empty();
    let mut uncorrected = first.uncorrected_histogram.as_ref().map(|_| histogram::empty());
    for (name, run) in runs {
        let add_error = |e: hdrhistogram::AdditionError| MergeError::Histogram {
            run: name.clone(),
            reason: e.to_string(),
        };
        sum.add(&run.histogram).map_err(add_error)?;
        match (&mut uncorrected, &run.uncorrected_histogram) {
            (Some(total), Some(theirs)) => total.add(theirs).map_err(add_error)?,
            // One run without it (an older report): the uncorrected figures would be partial.
            _ => uncorrected = None,
        }
    }
    let total = |figure: fn(&Report) -> u64| runs.iter().map(|(_, run)| figure(run)).sum::<u64>();
    let errors = Errors {
        wrong: total(|r| r.errors.wrong),
        timeouts: total(|r| r.errors.timeouts),
        connection: total(|r| r.errors.connection),
        total: total(|r| r.errors.total),
    };
    let requests = total(|r| r.requests);
    let (bytes_sent, bytes_received) = (total(|r| r.bytes_sent), total(|r| r.bytes_received));
    let seconds = overlap.as_secs_f64().max(1e-9);
    let percentiles = percentiles.map_or_else(|| first.parameters.percentiles.clone(), <[f64]>::to_vec);

    let mut warnings = Vec::new();
    if overlap.as_secs_f64() < 0.9 * span.as_secs_f64() {
        warnings.push(format!(
            "the runs loaded together for only {:.2} s of the {:.2} s from the first start to the last end: \
             requests made outside that time count toward the rate, which is too high by up to {:.0}% (start \
             the runs closer together)",
            overlap.as_secs_f64(),
            span.as_secs_f64(),
            (span.as_secs_f64() / seconds - 1.0) * 100.0
        ));
    }
    for (name, run) in runs {
        warnings.extend(run.warnings.iter().map(|warning| format!("{name}: {warning}")));
    }
    let parameters = Parameters {
        conns: runs.iter().map(|(_, run)| run.parameters.conns).sum(),
        threads: runs.iter().map(|(_, run)| run.parameters.threads).sum(),
        rate: first.parameters.rate.map(|_| runs.iter().filter_map(|(_, run)| run.parameters.rate).sum()),
        duration_s: overlap.as_secs_f64(),
        timeout_s: runs.iter().map(|(_, run)| run.parameters.timeout_s).fold(0.0, f64::max),
        percentiles: percentiles.clone(),
        server_pid: None,
        ..first.parameters.clone()
    };
    Ok(Report {
        parameters,
        address: first.address,
        started_at: Some(from),
        ended_at: Some(until),
        elapsed_s: last_flow_done.duration_since(earliest).unwrap_or_default().as_secs_f64(),
        requests,
        requests_per_s: requests as f64 / seconds,
        ok: errors.total == 0 && requests > 0,
        errors,
        late_replies: total(|r| r.late_replies),
        unsent: total(|r| r.unsent),
        sends_behind_schedule: total(|r| r.sends_behind_schedule),
        max_send_lag_us: runs.iter().map(|(_, run)| run.max_send_lag_us).max().unwrap_or(0),
        latency_us: Latency::of(&sum, &percentiles),
        uncorrected_latency_us: uncorrected.as_ref().and_then(|h| Latency::of(h, &percentiles)),
        bytes_sent,
        bytes_received,
        sent_mb_per_s: bytes_sent as f64 / seconds / 1e6,
        received_mb_per_s: bytes_received as f64 / seconds / 1e6,
        // Each run measured its own machine's processes: their sum means nothing.
        server_cpu: None,
        bench_cpu: None,
        first_problem: runs
            .iter()
            .find_map(|(name, run)| run.first_problem.as_ref().map(|problem| format!("{name}: {problem}"))),
        warnings,
        thresholds: Vec::new(),
        merged: Some(Merged {
            runs: runs.iter().map(|(name, _)| name.clone()).collect(),
            overlap_s: overlap.as_secs_f64(),
            span_s: span.as_secs_f64(),
        }),
        intervals: Vec::new(),
        histogram: sum,
        uncorrected_histogram: uncorrected,
    })
}

/// Refuses two runs that did not measure the same thing.
fn same(first: &str, ours: &Parameters, other: &str, theirs: &Parameters) -> Result<(), MergeError> {
    let loop_kind = |p: &Parameters| if p.rate.is_some() { "open loop" } else { "closed loop" };
    let checks: [(&'static str, String, String); 8] = [
        ("target", ours.target.clone(), theirs.target.clone()),
        ("transport", ours.transport.name().to_owned(), theirs.transport.name().to_owned()),
        ("pattern", ours.pattern.name().to_owned(), theirs.pattern.name().to_owned()),
        ("request size", format!("{} bytes", ours.size), format!("{} bytes", theirs.size)),
        ("text", ours.text.name().to_owned(), theirs.text.name().to_owned()),
        ("encoding", ours.encoding.clone(), theirs.encoding.clone()),
        ("client style", ours.clients.name().to_owned(), theirs.clients.name().to_owned()),
        ("loop", loop_kind(ours).to_owned(), loop_kind(theirs).to_owned()),
    ];
    for (what, a, b) in checks {
        if a != b {
            return Err(MergeError::Differ {
                first: first.to_owned(),
                other: other.to_owned(),
                what,
                ours: a,
                theirs: b,
            });
        }
    }
    Ok(())
}
