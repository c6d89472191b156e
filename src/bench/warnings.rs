//! Signs that a run measured the bench rather than the server, put into words for the report:
//! its own CPU near every core its threads could use, or an open loop that could not keep to its
//! schedule.
//!
//! Judges figures already measured; never measures anything itself.

use super::flow::{Tally, LATE_SEND};
use crate::format::thousands;

/// A warning when the bench's CPU was near every core its threads could use: then the figures
/// measure the bench.
pub(crate) fn cpu_warning(percent: f64, threads: usize, cores: usize) -> Option<String> {
    let usable = threads.min(cores).max(1);
    (percent >= 90.0 * usable as f64).then(|| {
        let cores = if usable == 1 { "1 core".to_owned() } else { format!("{usable} cores") };
        format!(
            "the bench used {percent:.0}% of a core, all that its {threads} thread{s} could use ({cores}): it \
             was likely the bottleneck, so these figures measure the bench as much as the server (raise \
             --threads, or run the bench on another machine)",
            s = if threads == 1 { "" } else { "s" }
        )
    })
}

/// Warnings when an open loop could not keep to its schedule.
pub(crate) fn schedule_warnings(tally: &Tally) -> Vec<String> {
    let mut warnings = Vec::new();
    if tally.unsent > 0 {
        warnings.push(format!(
            "{} requests were due but never sent, because every flow was still waiting for a reply: the \
             bench could not offer --rate, so these figures measure its flows as much as the server (add --conns)",
            thousands(tally.unsent)
        ));
    }
    // A few late wake-ups are the timer's; more than 1% is a schedule the bench did not keep.
    if tally.behind > 0 && tally.behind * 100 > tally.paced {
        warnings.push(format!(
            "{} of {} requests ({:.1}%) left more than {} ms after their intended time (up to {:.1} ms): the \
             bench fell behind its schedule, so these figures measure the bench as much as the server (add \
             --conns or --threads, or lower --rate)",
            thousands(tally.behind),
            thousands(tally.paced),
            tally.behind as f64 * 100.0 / tally.paced.max(1) as f64,
            LATE_SEND.as_millis(),
            tally.max_lag.as_secs_f64() * 1e3
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_warning_counts_the_cores_the_threads_can_use() {
        assert!(cpu_warning(95.0, 1, 2).is_some_and(|w| w.contains("its 1 thread could use (1 core)")));
        assert!(cpu_warning(80.0, 1, 2).is_none());
        assert!(cpu_warning(150.0, 64, 2).is_none(), "64 threads on 2 cores can use 200%");
        assert!(cpu_warning(185.0, 64, 2).is_some_and(|w| w.contains("(2 cores)")));
    }
}
