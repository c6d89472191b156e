//! Everything that shapes how a server behaves: the concurrency model and every limit, each with
//! its one default (which `upcase serve --help` shows). No limit is buried in a loop.

use std::fmt;
use std::time::Duration;

use super::{ProxyProtocol, RateLimit};
use crate::faults::Faults;
use crate::transform::Encoding;

/// How a server handles many clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Model {
    /// One client at a time: while a TCP connection is open, others wait.
    Iterative,
    /// TCP: a thread per connection, up to [`Config::max_threads`]. UDP: [`Config::workers`]
    /// threads reading one socket.
    Threaded,
    /// An event loop per core ([`Config::workers`]), each with its own sockets and connections;
    /// scales to tens of thousands of connections.
    #[default]
    Async,
}

impl Model {
    /// Every model, in the order the lecture introduces them.
    pub const ALL: [Self; 3] = [Self::Iterative, Self::Threaded, Self::Async];

    /// The name used on the command line and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Iterative => "iterative",
            Self::Threaded => "threaded",
            Self::Async => "async",
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that shapes how the server behaves; every limit is here, none is buried in a loop.
#[derive(Debug, Clone)]
pub struct Config {
    /// The concurrency model.
    pub model: Model,
    /// How request bytes are read as text.
    pub encoding: Encoding,
    /// Most TCP connections open at once; beyond it a new connection is closed at once.
    pub max_connections: usize,
    /// Most TCP connections one source (an IPv4 address, an IPv6 /64) may have open at once, so
    /// that one client cannot take every place under `max_connections`. `None`: no such limit.
    pub max_connections_per_source: Option<usize>,
    /// Apply `max_connections_per_source` to loopback clients too (by default only to others:
    /// local benchmarks, and the users of a shared lab machine, all come from one address).
    pub per_source_loopback: bool,
    /// Every TCP connection must come from a trusted proxy and start with a PROXY protocol
    /// header, whose client address then stands for the connection's. `None`: off.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// The threaded model's own cap on connection threads (the lower of the two applies).
    pub max_threads: usize,
    /// Threads that serve: the async model's workers, each with its own sockets, event loop and
    /// connections; and the threaded model's threads reading each UDP socket. The default
    /// ([`default_workers`]) leaves one core to the rest of the machine.
    pub workers: usize,
    /// A TCP connection that sends nothing for this long is closed. `None`: never.
    pub idle_timeout: Option<Duration>,
    /// A TCP client that does not read its reply for this long is dropped.
    pub write_timeout: Duration,
    /// A TCP connection open this long is closed, however active. `None`: no limit. Bounds what a
    /// slow client (one byte every few seconds, never idle long enough) can hold.
    pub max_connection_time: Option<Duration>,
    /// After a stop, how long open TCP streams may take to finish before they are closed.
    pub grace: Duration,
    /// Largest UDP request answered and largest reply sent, in bytes.
    pub max_datagram: usize,
    /// Bytes read from a TCP connection at a time; the transform's output is at most 3× this.
    pub read_chunk: usize,
    /// Answer UDP datagrams from source ports below 1024. Off by default: those are system
    /// services (echo on 7, chargen on 19), and answering them lets a spoofed datagram start an
    /// endless loop between two servers. Datagrams from the server's own port are never answered.
    pub udp_allow_low_ports: bool,
    /// Budget of UDP reply bytes per source address. `None`: unlimited.
    pub udp_rate: Option<RateLimit>,
    /// Apply `udp_rate` to loopback clients too (by default only to others, so local
    /// benchmarks are not throttled).
    pub udp_rate_loopback: bool,
    /// An admin endpoint watches this server: record what only it shows (when each connection
    /// opened; the histograms of connection durations and request sizes). Off, serving does
    /// nothing per connection or request beyond the counters.
    pub observed: bool,
    /// Faults injected into replies on purpose, for testing a client (`upcase serve --drop`,
    /// `--delay`, `--split`, ...). `None`, the default: every reply is sent at once, whole, once.
    pub faults: Option<Faults>,
    /// Test-only fault injection: panic while handling any read or datagram that contains these
    /// bytes, to prove a panic in one handler does not take down the server. Always `None` in
    /// the binary.
    #[doc(hidden)]
    pub panic_on: Option<Vec<u8>>,
    /// Test-only fault injection: hold the thread handling any read or datagram that contains
    /// these bytes for this long, as a bug that loops would, to prove the watchdog and `/health`
    /// see it. Always `None` in the binary.
    #[doc(hidden)]
    pub stall_on: Option<(Vec<u8>, Duration)>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            model: Model::default(),
            encoding: Encoding::default(),
            max_connections: 10_000,
            max_connections_per_source: Some(1_000),
            per_source_loopback: false,
            proxy_protocol: None,
            max_threads: 4_096,
            workers: default_workers(),
            idle_timeout: Some(Duration::from_secs(60)),
            write_timeout: Duration::from_secs(30),
            max_connection_time: None,
            grace: Duration::from_secs(5),
            max_datagram: crate::net::MAX_IPV4_PAYLOAD,
            read_chunk: 64 * 1024,
            udp_allow_low_ports: false,
            udp_rate: Some(RateLimit::default()),
            udp_rate_loopback: false,
            observed: false,
            faults: None,
            panic_on: None,
            stall_on: None,
        }
    }
}

/// One worker per core but one (and at least one): the core left over is for what shares the
/// machine with the server, which on the small machines upcase is measured on is its clients (a
/// load generator, a balancer) and the kernel's network processing for both. On 2 cores, a second
/// worker competing with them cost 10-25% more CPU per request and, with all clients on one
/// thread, a p99 of 2 ms instead of 0.1 (docs/BENCHMARKS.md); where the clients are elsewhere,
/// `--workers` with the number of cores uses them all.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get().saturating_sub(1).max(1))
}
