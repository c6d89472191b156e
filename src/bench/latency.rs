//! Latency figures of a run: the percentiles asked for and the usual ones, from a histogram, and
//! how a percentile is named wherever it is shown.
//!
//! Read from the histogram, never estimated: a report's percentiles, a merged report's and a
//! `--fail-if`'s are all the histogram's own.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

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
    /// The percentiles asked for (`--percentiles`), in order.
    #[serde(default)]
    pub percentiles: Vec<Percentile>,
}

/// One percentile of a latency distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Percentile {
    /// Which: `99.9` is the 99.9th.
    pub percentile: f64,
    /// Its latency, in microseconds.
    pub us: u64,
}

impl Latency {
    /// The latencies in `histogram`, with `percentiles`; `None` when it is empty.
    pub(crate) fn of(histogram: &Histogram<u64>, percentiles: &[f64]) -> Option<Self> {
        let at = |percentile: f64| histogram.value_at_quantile(quantile(percentile));
        (!histogram.is_empty()).then(|| Self {
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            p999: at(99.9),
            max: histogram.max(),
            min: histogram.min(),
            mean: histogram.mean(),
            percentiles: percentiles
                .iter()
                .map(|&percentile| Percentile { percentile, us: at(percentile) })
                .collect(),
        })
    }
}

/// The quantile of `percentile`, as the nearest binary fraction to the decimal one: `99.9 / 100`
/// in floating point is a hair above 0.999, which would read the next value up.
pub(crate) fn quantile(percentile: f64) -> f64 {
    (percentile * 1e6).round() / 1e8
}

/// `p50`, `p99.9`: how a percentile is named in tables, plots and `--fail-if`.
pub fn percentile_label(percentile: f64) -> String {
    format!("p{percentile}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_figures() {
        assert_eq!(percentile_label(50.0), "p50");
        assert_eq!(percentile_label(99.9), "p99.9");
        assert_eq!(percentile_label(99.99), "p99.99");
        let mut histogram = crate::bench::histogram::empty();
        for micros in 1..=1000 {
            histogram.record(micros).unwrap_or_else(|e| panic!("{e}"));
        }
        let latency = Latency::of(&histogram, &[50.0, 99.9]).unwrap_or_else(|| panic!("empty"));
        assert_eq!((latency.p50, latency.p99, latency.min, latency.max), (500, 990, 1, 1000));
        let listed: Vec<(f64, u64)> = latency.percentiles.iter().map(|p| (p.percentile, p.us)).collect();
        assert_eq!(listed, [(50.0, 500), (99.9, 999)], "999 of the 1,000 values are at most 999");
        assert_eq!(quantile(99.9), 0.999);
        assert!(Latency::of(&crate::bench::histogram::empty(), &[50.0]).is_none());
    }
}
