//! The histograms an admin endpoint exports: how long TCP connections last, and how large requests
//! are (a UDP datagram; everything a TCP client sent on its connection).
//!
//! Fixed buckets of relaxed atomics: recording a value scans a dozen bounds and makes two atomic
//! additions, with no lock and no allocation. Values are recorded only when the server is
//! observed ([`super::Config::observed`]): once per datagram and once per connection end, never
//! per chunk of a stream. This module must never block, allocate or log when recording.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the connection-duration buckets, in milliseconds: from a connection that
/// carried one request (well under a millisecond on a LAN) to one held open for an hour.
pub const DURATION_BOUNDS_MS: &[u64] = &[1, 10, 100, 1_000, 10_000, 60_000, 600_000, 3_600_000];

/// Upper bounds of the request-size buckets, in bytes: powers of four from a word to 256 MiB
/// (a UDP request is at most 65,507 bytes; a TCP stream has no limit).
pub const SIZE_BOUNDS_BYTES: &[u64] =
    &[16, 64, 256, 1_024, 4_096, 16_384, 65_536, 1 << 20, 16 << 20, 256 << 20];

/// Counts of values per bucket, and their sum.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// One count per bound, and one more for values above the last.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [u64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    fn record(&self, value: u64) {
        let bucket = self.bounds.iter().position(|&bound| value <= bound).unwrap_or(self.bounds.len());
        if let Some(count) = self.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Reads every bucket (each atomically; the set is not a single instant, as with counters).
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds,
            counts: self.counts.iter().map(|count| count.load(Ordering::Relaxed)).collect(),
            sum: self.sum.load(Ordering::Relaxed),
        }
    }
}

/// A point-in-time copy of a [`Histogram`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Upper bound of each bucket but the last, inclusive, in the histogram's unit.
    pub bounds: &'static [u64],
    /// Values in each bucket (not cumulative); one more than `bounds`: the last counts values
    /// above every bound.
    pub counts: Vec<u64>,
    /// The sum of every value recorded, in the histogram's unit.
    pub sum: u64,
}

impl HistogramSnapshot {
    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Every histogram of one server.
#[derive(Debug)]
pub struct Histograms {
    /// How long TCP connections were open, in milliseconds, recorded when they end.
    pub tcp_duration_ms: Histogram,
    /// Bytes each TCP connection received from its client, recorded when it ends.
    pub tcp_request_bytes: Histogram,
    /// Bytes of each UDP request received.
    pub udp_request_bytes: Histogram,
}

impl Default for Histograms {
    fn default() -> Self {
        Self {
            tcp_duration_ms: Histogram::new(DURATION_BOUNDS_MS),
            tcp_request_bytes: Histogram::new(SIZE_BOUNDS_BYTES),
            udp_request_bytes: Histogram::new(SIZE_BOUNDS_BYTES),
        }
    }
}

impl Histograms {
    /// A TCP connection ended after `lived`, having received `received` bytes.
    pub(crate) fn connection_ended(&self, lived: Duration, received: u64) {
        self.tcp_duration_ms.record(u64::try_from(lived.as_millis()).unwrap_or(u64::MAX));
        self.tcp_request_bytes.record(received);
    }

    /// A UDP request of `len` bytes arrived.
    pub(crate) fn datagram(&self, len: usize) {
        self.udp_request_bytes.record(len as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_first_bucket_whose_bound_holds_them() {
        let histogram = Histogram::new(&[10, 100]);
        for value in [0, 10, 11, 100, 101, u64::MAX / 2] {
            histogram.record(value);
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.counts, [2, 2, 2]);
        assert_eq!(snapshot.count(), 6);
        assert_eq!(snapshot.sum, 10 + 11 + 100 + 101 + u64::MAX / 2);
    }

    #[test]
    fn connection_ends_record_milliseconds_and_bytes() {
        let histograms = Histograms::default();
        histograms.connection_ended(Duration::from_micros(5_900), 20);
        histograms.connection_ended(Duration::from_secs(7200), 0);
        let duration = histograms.tcp_duration_ms.snapshot();
        assert_eq!(duration.counts.first(), Some(&0));
        assert_eq!(duration.counts.get(1), Some(&1), "1 ms < 5 ms (whole milliseconds) <= 10 ms");
        assert_eq!(duration.counts.last(), Some(&1), "two hours is above every bound");
        assert_eq!(duration.sum, 5 + 7_200_000);
        assert_eq!(histograms.tcp_request_bytes.snapshot().counts.get(..2), Some(&[1, 1][..]));
    }
}
