//! The uppercase service over UDP and TCP, in the lecture's concurrency models side by side.
//!
//! - [`Model::Iterative`]: one client at a time, the lecture's first servers
//!   ([`tcp_iterative`], [`udp_iterative`]).
//! - [`Model::Threaded`]: the lecture's thread per TCP connection, capped ([`tcp_threaded`]);
//!   for UDP, a fixed pool of threads reading one socket ([`udp_threaded`]).
//! - [`Model::Async`]: tasks on a small Tokio runtime, the default ([`tcp_async`], [`udp_async`]).
//!
//! Every model speaks the same protocol (`docs/PROTOCOL.md`) through the same pieces: [`bind`]
//! opens sockets, [`tcp`] and [`udp`] hold what all models of one transport share, [`stats`]
//! counts events. [`Server`] starts the loops on sockets it is given (it never binds) and runs
//! the shutdown sequence: stop accepting, let open streams finish for a grace period, then close
//! what is left.
//!
//! Nothing a client sends may crash, hang or exhaust the server: every limit is a [`Config`]
//! field, and errors on one connection or datagram are counted and logged, never propagated.

pub mod bind;
pub mod rate_limit;
pub mod stats;
pub mod tcp;
pub mod tcp_async;
pub mod tcp_iterative;
pub mod tcp_threaded;
pub mod udp;
pub mod udp_async;
pub mod udp_iterative;
pub mod udp_threaded;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::transform::Encoding;
pub use bind::{bind, BindOptions, Sockets};
pub use stats::{Snapshot, Stats};

/// The port of the lecture's examples, and upcase's default.
pub const DEFAULT_PORT: u16 = 12000;

/// How a server handles many clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Model {
    /// One client at a time: while a TCP connection is open, others wait.
    Iterative,
    /// TCP: a thread per connection, up to [`Config::max_threads`]. UDP: [`Config::udp_threads`]
    /// threads reading one socket.
    Threaded,
    /// Tokio tasks on a few threads; scales to tens of thousands of connections.
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

/// UDP or TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Datagrams: one request, one reply.
    Udp,
    /// A byte stream, uppercased as it arrives.
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
        })
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
    /// The threaded model's own cap on connection threads (the lower of the two applies).
    pub max_threads: usize,
    /// Threads reading the UDP socket in the threaded model.
    pub udp_threads: usize,
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
    pub udp_rate: Option<rate_limit::RateLimit>,
    /// Apply `udp_rate` to loopback clients too (by default only to others, so local
    /// benchmarks are not throttled).
    pub udp_rate_loopback: bool,
    /// Test-only fault injection: panic while handling any read or datagram that contains these
    /// bytes, to prove a panic in one handler does not take down the server. Always `None` in
    /// the binary.
    #[doc(hidden)]
    pub panic_on: Option<Vec<u8>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            model: Model::default(),
            encoding: Encoding::default(),
            max_connections: 10_000,
            max_threads: 4_096,
            udp_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            idle_timeout: Some(Duration::from_secs(60)),
            write_timeout: Duration::from_secs(30),
            max_connection_time: None,
            grace: Duration::from_secs(5),
            max_datagram: crate::net::MAX_IPV4_PAYLOAD,
            read_chunk: 64 * 1024,
            udp_allow_low_ports: false,
            udp_rate: Some(rate_limit::RateLimit::default()),
            udp_rate_loopback: false,
            panic_on: None,
        }
    }
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A `--listen` value did not resolve to any address.
    #[error("cannot resolve listen address {spec:?}: {reason} (use host:port, e.g. 127.0.0.1:12000 or [::1]:12000)")]
    Resolve {
        /// The address as given.
        spec: String,
        /// Why resolution failed.
        reason: io::Error,
    },
    /// A socket could not be bound or set up.
    #[error("cannot bind {transport} {addr}: {reason}{hint}", hint = bind_hint(reason))]
    Bind {
        /// Which socket.
        transport: Transport,
        /// Where.
        addr: SocketAddr,
        /// The operating system's reason.
        reason: io::Error,
    },
    /// The async runtime could not take the socket (it must be called within a Tokio runtime).
    #[error("cannot register {transport} {addr} with the async runtime: {reason}")]
    Runtime {
        /// Which socket.
        transport: Transport,
        /// Where.
        addr: String,
        /// The runtime's reason.
        reason: io::Error,
    },
}

fn bind_hint(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::AddrInUse => {
            " (another server, perhaps another upcase or the lecture's, is using this port: stop it or pick another with --listen HOST:PORT)"
        }
        io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges: use a port above 1023)",
        io::ErrorKind::AddrNotAvailable => " (this machine has no such address: try 127.0.0.1 or 0.0.0.0)",
        _ => "",
    }
}

/// Two-step shutdown shared by every loop and connection of one server.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Stop accepting and stop answering UDP; open TCP streams carry on.
    pub stop: CancellationToken,
    /// The grace period is over: close every TCP connection now.
    pub force: CancellationToken,
}

/// State shared by all of one server's loops and connections.
#[derive(Debug)]
pub struct Context {
    /// The configuration it was started with.
    pub config: Config,
    /// Its counters.
    pub stats: Stats,
    /// Its shutdown signals.
    pub shutdown: Shutdown,
    /// Open connections of the blocking models, so they can be closed when the grace runs out.
    pub(crate) blocking_connections: tcp::ConnectionSet<std::net::TcpStream>,
    /// Open connections of the async model: their number is limited here, and their tasks are
    /// aborted when the grace runs out.
    pub(crate) async_connections: tcp::ConnectionSet<tokio::task::AbortHandle>,
    /// Limits how often over-limit connections are logged.
    pub(crate) over_limit_log: stats::LogThrottle,
    /// Limits how often accept errors are logged.
    pub(crate) accept_error_log: stats::LogThrottle,
    /// Limits how often UDP drops and errors are logged.
    pub(crate) udp_log: stats::LogThrottle,
    /// Per-source budgets of UDP reply bytes, when `udp_rate` is set.
    pub(crate) udp_budgets: Option<rate_limit::Budgets>,
    /// A fresh uppercaser for the configured encoding, built once: cloning it copies two
    /// references, where building one looks up the encoding's tables under a lock.
    fresh_uppercaser: crate::transform::Uppercaser,
}

impl Context {
    fn new(config: Config) -> Self {
        Self {
            udp_budgets: config.udp_rate.map(rate_limit::Budgets::new),
            fresh_uppercaser: crate::transform::Uppercaser::new(config.encoding),
            config,
            stats: Stats::default(),
            shutdown: Shutdown::default(),
            blocking_connections: tcp::ConnectionSet::default(),
            async_connections: tcp::ConnectionSet::default(),
            over_limit_log: stats::LogThrottle::default(),
            accept_error_log: stats::LogThrottle::default(),
            udp_log: stats::LogThrottle::default(),
        }
    }
}

impl Context {
    /// An uppercaser at the start of a stream, for one connection or one datagram.
    pub(crate) fn uppercaser(&self) -> crate::transform::Uppercaser {
        self.fresh_uppercaser.clone()
    }

    /// Test-only fault injection: panics if `bytes` contain [`Config::panic_on`].
    pub(crate) fn inject_fault(&self, bytes: &[u8]) {
        if let Some(trigger) = self.config.panic_on.as_deref().filter(|t| !t.is_empty()) {
            if bytes.windows(trigger.len()).any(|window| window == trigger) {
                panic!("fault injected: input contained the test's panic trigger");
            }
        }
    }
}

/// A running server: its loops, its counters and its shutdown handle.
///
/// Must be started inside a Tokio runtime (even the blocking models are supervised from it).
#[derive(Debug)]
pub struct Server {
    context: Arc<Context>,
    tracker: TaskTracker,
    local_addrs: Vec<(Transport, SocketAddr)>,
}

impl Server {
    /// Starts serving `sockets` with `config` in the background.
    pub fn start(sockets: Sockets, config: Config) -> Result<Self, ServerError> {
        let local_addrs = sockets.local_addrs();
        let context = Arc::new(Context::new(config));
        let tracker = TaskTracker::new();
        for listener in sockets.tcp {
            match context.config.model {
                Model::Iterative => spawn_blocking(&tracker, &context, tcp_iterative::run, listener),
                Model::Threaded => spawn_blocking(&tracker, &context, tcp_threaded::run, listener),
                Model::Async => {
                    let listener = tcp_async::register(listener)?;
                    tracker.spawn(tcp_async::run(listener, Arc::clone(&context), tracker.clone()));
                }
            }
        }
        for socket in sockets.udp {
            match context.config.model {
                Model::Iterative => spawn_blocking(&tracker, &context, udp_iterative::run, socket),
                Model::Threaded => spawn_blocking(&tracker, &context, udp_threaded::run, socket),
                Model::Async => {
                    let socket = udp_async::register(socket)?;
                    tracker.spawn(udp_async::run(socket, Arc::clone(&context)));
                }
            }
        }
        tracker.close();
        Ok(Self { context, tracker, local_addrs })
    }

    /// Where it listens, TCP first.
    pub fn local_addrs(&self) -> &[(Transport, SocketAddr)] {
        &self.local_addrs
    }

    /// Its counters, live.
    pub fn stats(&self) -> &Stats {
        &self.context.stats
    }

    /// The token that starts the shutdown sequence when cancelled (from a signal handler, say).
    pub fn stop_token(&self) -> CancellationToken {
        self.context.shutdown.stop.clone()
    }

    /// Starts the shutdown sequence and waits for it to finish; returns the final counters.
    pub async fn shutdown(self) -> Snapshot {
        self.context.shutdown.stop.cancel();
        self.wait().await
    }

    /// Waits until the server is stopped (through [`Self::stop_token`]) and has shut down: open
    /// TCP streams get [`Config::grace`] to finish, then are closed. Returns the final counters.
    pub async fn wait(self) -> Snapshot {
        let shutdown = &self.context.shutdown;
        shutdown.stop.cancelled().await;
        let grace = self.context.config.grace;
        if tokio::time::timeout(grace, self.tracker.wait()).await.is_err() {
            let open = self.context.stats.tcp_open.load(std::sync::atomic::Ordering::Relaxed);
            tracing::info!("grace period of {grace:?} over: closing {open} open connection(s)");
            shutdown.force.cancel();
            self.context.blocking_connections.close_all();
            self.context.async_connections.close_all();
            self.tracker.wait().await;
        }
        self.context.stats.snapshot()
    }
}

/// Runs a blocking serving loop on its own thread, tracked like an async task.
fn spawn_blocking<S: Send + 'static>(
    tracker: &TaskTracker,
    context: &Arc<Context>,
    run: fn(S, &Context),
    socket: S,
) {
    let context = Arc::clone(context);
    tracker.spawn_blocking(move || run(socket, &context));
}
