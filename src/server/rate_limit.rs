//! Per-source budgets of UDP reply bytes: the guard against using upcase as an amplifier.
//!
//! A UDP source address can be forged. A server that answers any datagram with as much or more
//! data (upcase answers with up to three times the bytes) can be made to send a flood at a victim
//! whose address the attacker writes on its requests. A token bucket per source address bounds
//! what any one address can draw: `rate` bytes a second, with bursts up to `burst`.
//!
//! Memory is bounded too: at most [`MAX_SOURCES`] addresses are tracked; when the table is full,
//! addresses whose budget has refilled are forgotten, and if none has, new addresses are refused
//! until some do (a flood of forged sources cannot grow the table).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// Most source addresses tracked at once.
pub const MAX_SOURCES: usize = 65_536;

/// A budget: how many reply bytes per second one source address may draw, and how many at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained reply bytes per second per source address.
    pub bytes_per_second: u64,
    /// Reply bytes a source may draw at once after being quiet; must be at least the largest
    /// reply, or replies that large are never sent.
    pub burst: u64,
}

impl Default for RateLimit {
    /// 1 MiB/s with bursts of 256 KiB: far more than a person or a test needs, far less than a
    /// flood.
    fn default() -> Self {
        Self { bytes_per_second: 1 << 20, burst: 256 << 10 }
    }
}

/// The budgets of every source address seen recently.
#[derive(Debug)]
pub struct Budgets {
    limit: RateLimit,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Budgets {
    /// Empty budgets under `limit`.
    pub fn new(limit: RateLimit) -> Self {
        Self { limit, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes `bytes` from `source`'s budget; `false` when the budget does not cover them.
    pub fn take(&self, source: IpAddr, bytes: usize, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_SOURCES && !buckets.contains_key(&source) {
            buckets.retain(|_, bucket| self.refill(*bucket, now) < self.limit.burst as f64);
            if buckets.len() >= MAX_SOURCES {
                return false;
            }
        }
        let full = Bucket { tokens: self.limit.burst as f64, updated: now };
        let bucket = buckets.entry(source).or_insert(full);
        bucket.tokens = self.refill(*bucket, now);
        bucket.updated = now;
        if bucket.tokens < bytes as f64 {
            return false;
        }
        bucket.tokens -= bytes as f64;
        true
    }

    /// The bucket's tokens at `now`, refilled for the time since it was last used.
    fn refill(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        (bucket.tokens + elapsed * self.limit.bytes_per_second as f64).min(self.limit.burst as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn burst_then_sustained_rate_per_source() {
        let budgets = Budgets::new(RateLimit { bytes_per_second: 1000, burst: 3000 });
        let start = Instant::now();
        assert!(budgets.take(A, 2000, start));
        assert!(budgets.take(A, 1000, start));
        assert!(!budgets.take(A, 1, start), "burst used up");
        assert!(budgets.take(B, 3000, start), "another source has its own budget");
        let later = start + Duration::from_millis(500);
        assert!(budgets.take(A, 500, later), "refilled at 1000 bytes/s");
        assert!(!budgets.take(A, 100, later));
        let much_later = start + Duration::from_secs(3600);
        assert!(budgets.take(A, 3000, much_later), "refill stops at the burst");
        assert!(!budgets.take(A, 1, much_later));
    }

    #[test]
    fn table_of_sources_is_bounded() {
        let budgets = Budgets::new(RateLimit { bytes_per_second: 1, burst: 10 });
        let now = Instant::now();
        let source = |i: usize| IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i as u32));
        for i in 0..MAX_SOURCES {
            assert!(budgets.take(source(i), 10, now));
        }
        assert!(!budgets.take(source(MAX_SOURCES), 1, now), "full of sources still spending");
        let refilled = now + Duration::from_secs(10);
        assert!(budgets.take(source(MAX_SOURCES), 1, refilled), "refilled sources are forgotten");
        assert!(budgets.buckets.lock().map(|b| b.len()).unwrap_or(0) < MAX_SOURCES);
    }
}
