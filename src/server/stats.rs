//! Counters for everything the server sees, in one place, and throttled logging.
//!
//! A network service cannot print a line for every bad packet: a flood would turn the log into the
//! bottleneck. So every class of event is counted here (cheap relaxed atomics), and the log lines
//! about it go through a [`LogThrottle`] that lets one through per interval and says how many it
//! held back. `serve` prints the counters as a summary at exit.
//!
//! The counters are kept in shards, one per worker of the async model (and one for every other
//! thread): a worker counts in its own, on its own cache lines, so that two workers counting
//! their requests never pull a line from each other's core, which cost a few hundred nanoseconds
//! per request when they shared one set. A [`Snapshot`] adds the shards up.
//!
//! This module must never block or allocate on the request path.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// One shard of a server's event counters: what the threads counting in it saw.
        #[derive(Debug, Default)]
        #[repr(align(128))]
        pub struct Counters {
            $($(#[doc = $doc])* pub $name: AtomicU64,)*
        }

        /// A point-in-time copy of [`Stats`], for reports and tests.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct Snapshot {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl Counters {
            /// Adds this shard's counts into `total` (wrapping: a gauge raised in one shard and
            /// lowered in another still adds up).
            fn add_to(&self, total: &mut Snapshot) {
                $(total.$name = total.$name.wrapping_add(self.$name.load(Ordering::Relaxed));)*
            }
        }

        impl Snapshot {
            /// `(name, value)` for every counter, in declaration order.
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)*]
            }

            /// `(name, what it counts, value)` for every counter, in declaration order: the
            /// counter's own documentation, for exporters to show beside it.
            pub fn described(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![$((stringify!($name), concat!($($doc),*).trim_start(), self.$name),)*]
            }

            /// Logs every counter, zero or not, as a field of one event, for logs read by
            /// programs (`--log-format json`).
            pub fn log_fields(&self, message: &str) {
                tracing::info!($($name = self.$name,)* "{message}");
            }
        }
    };
}

counters! {
    /// TCP connections accepted and served.
    tcp_accepted,
    /// TCP connections closed at once because `max_connections` were already open.
    tcp_rejected_over_limit,
    /// TCP connections closed at once because their source (an IPv4 address, an IPv6 /64; behind
    /// a proxy, the client it names) already had `max_connections_per_source` open.
    tcp_rejected_per_source,
    /// PROXY protocol: TCP connections closed at once because they came from an address outside
    /// `--trusted-proxy`.
    tcp_proxy_untrusted,
    /// PROXY protocol: TCP connections closed because their first bytes were not a PROXY header.
    tcp_proxy_missing,
    /// PROXY protocol: TCP connections closed because their PROXY header was malformed or too long.
    tcp_proxy_malformed,
    /// PROXY protocol: TCP connections that ended before their PROXY header was complete (a
    /// balancer's bare TCP health check, connecting and closing, counts here).
    tcp_proxy_incomplete,
    /// PROXY protocol: TCP connections closed because their PROXY header was not complete within
    /// `--proxy-header-timeout`.
    tcp_proxy_timeout,
    /// TCP connections open right now (a gauge, not a count).
    tcp_open,
    /// `accept` calls that failed (for example EMFILE); the listener backs off and goes on.
    tcp_accept_errors,
    /// TCP connections closed because the client sent nothing for `idle_timeout`.
    tcp_idle_timeouts,
    /// TCP connections dropped because the client did not read its reply for `write_timeout`.
    tcp_write_timeouts,
    /// TCP connections that ended in an error (reset by the client, broken pipe).
    tcp_errors,
    /// TCP connections closed because they were open longer than `max_connection_time`.
    tcp_lifetime_exceeded,
    /// TCP connections still open when the shutdown grace period ran out, closed by force.
    tcp_closed_at_shutdown,
    /// Bytes read from TCP clients.
    tcp_bytes_in,
    /// Bytes written to TCP clients.
    tcp_bytes_out,
    /// UDP datagrams received.
    udp_requests,
    /// UDP replies sent.
    udp_replies,
    /// UDP requests larger than `max_datagram`, dropped unanswered.
    udp_dropped_oversize_requests,
    /// UDP replies that would not fit in one datagram, dropped rather than cut.
    udp_dropped_oversize_replies,
    /// UDP datagrams ignored for their source port (below 1024, or the server's own port): the
    /// echo/chargen reflection-loop guard.
    udp_ignored_source_port,
    /// UDP replies not sent because their source address had used up its `udp_rate` budget.
    udp_rate_limited,
    /// UDP receive or send calls that failed.
    udp_errors,
    /// UDP datagrams on a socket bound to a wildcard address that came without the address they
    /// were sent to (which Linux always gives once asked): their replies left from the address
    /// the kernel picks.
    udp_destination_unknown,
    /// Bytes received in UDP datagrams.
    udp_bytes_in,
    /// Bytes sent in UDP replies.
    udp_bytes_out,
    /// Bytes that were not valid text in the configured encoding and were passed through as is.
    invalid_bytes,
    /// Panics caught while serving one connection or datagram (a bug; the server went on).
    panics,
    /// UDP replies not sent, on purpose (`--drop`).
    fault_udp_dropped,
    /// UDP replies sent late, on purpose (`--delay`).
    fault_udp_delayed,
    /// UDP replies sent twice, on purpose (`--duplicate`).
    fault_udp_duplicated,
    /// UDP replies held and sent after the next one, on purpose (`--reorder`).
    fault_udp_reordered,
    /// TCP replies whose first byte waited, on purpose (`--delay`).
    fault_tcp_delayed,
    /// TCP replies sent in segments with pauses, on purpose (`--split`, `--pause`).
    fault_tcp_split,
}

/// The event counters of one server: every socket and model counts here, each thread in its
/// shard ([`Stats::shard_for_this_thread`]); counting through `Deref` goes to the calling
/// thread's.
#[derive(Debug, Default)]
pub struct Stats {
    /// Every thread's but the workers'.
    shared: Counters,
    /// The async model's workers', one each.
    workers: Box<[Counters]>,
}

thread_local! {
    /// The shard this thread counts in: 0 unless it is a worker of the async model.
    static SHARD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Stats {
    /// Counters with `workers` shards for the async model's workers, and one for everyone else.
    pub fn with_shards(workers: usize) -> Self {
        Self { shared: Counters::default(), workers: (0..workers).map(|_| Counters::default()).collect() }
    }

    /// Makes the calling thread count in the shard of worker `index` (of those given to
    /// [`Self::with_shards`]); a worker calls this once, as it starts.
    pub fn shard_for_this_thread(index: usize) {
        SHARD.set(index + 1);
    }

    /// Reads every counter, adding up the shards (each counter read atomically; the set is not a
    /// single instant).
    pub fn snapshot(&self) -> Snapshot {
        let mut total = Snapshot::default();
        self.shared.add_to(&mut total);
        self.workers.iter().for_each(|shard| shard.add_to(&mut total));
        total
    }
}

impl std::ops::Deref for Stats {
    type Target = Counters;

    /// The calling thread's shard: a worker's own, or the shared one.
    fn deref(&self) -> &Counters {
        SHARD.get().checked_sub(1).and_then(|index| self.workers.get(index)).unwrap_or(&self.shared)
    }
}

/// Adds `n` to a counter; the one way the server bumps a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Subtracts one from a gauge.
pub(crate) fn decrement(counter: &AtomicU64) {
    counter.fetch_sub(1, Ordering::Relaxed);
}

impl fmt::Display for Snapshot {
    /// One line of the non-zero counters, `name=value`, for the exit summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, value) in self.fields() {
            if value != 0 {
                write!(f, "{}{name}={value}", if first { "" } else { " " })?;
                first = false;
            }
        }
        if first {
            f.write_str("no traffic")?;
        }
        Ok(())
    }
}

/// Lets one log line through per interval, and counts the ones it held back.
///
/// Lock-free so that a flood of bad datagrams costs one atomic load each, not a log write.
#[derive(Debug)]
pub struct LogThrottle {
    epoch: Instant,
    interval_ms: u64,
    /// Milliseconds since `epoch` after which the next line may be logged.
    next_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl LogThrottle {
    /// A throttle that allows one line per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            epoch: Instant::now(),
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            next_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when a line may be logged now, `n` being how many were held back since the
    /// last one; `None` when this one should be dropped.
    pub fn allow(&self) -> Option<u64> {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now.saturating_add(self.interval_ms),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

impl Default for LogThrottle {
    fn default() -> Self {
        Self::new(Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_lets_one_line_through_per_interval_and_counts_the_rest() {
        let throttle = LogThrottle::new(Duration::from_millis(200));
        assert_eq!(throttle.allow(), Some(0));
        assert_eq!(throttle.allow(), None);
        assert_eq!(throttle.allow(), None);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(throttle.allow(), Some(2));
    }

    #[test]
    fn summary_lists_only_non_zero_counters() {
        let stats = Stats::default();
        assert_eq!(stats.snapshot().to_string(), "no traffic");
        add(&stats.udp_requests, 3);
        add(&stats.tcp_bytes_in, 10);
        assert_eq!(stats.snapshot().to_string(), "tcp_bytes_in=10 udp_requests=3");
    }
}
