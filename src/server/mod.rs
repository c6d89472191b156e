//! The uppercase service over UDP and TCP, in the lecture's concurrency models side by side.
//!
//! # Layout
//!
//! Each model reads top to bottom in one file, UDP and TCP together:
//!
//! - `iterative`: one client at a time, the lecture's first servers.
//! - `threaded`: the lecture's thread per TCP connection, capped; a pool of threads for UDP.
//! - `asynchronous`: an event loop per core, each with its own sockets and connections, the
//!   default (`--model async`).
//!
//! What the models share sits in files named for what it is, never in a sibling model's file:
//!
//! - `config`: [`Config`] and [`Model`]: every limit, with its one default.
//! - [`bind`](mod@bind): opening the sockets (the caller binds; a model only ever receives ready sockets).
//! - `datagram`: the rule for answering one datagram; `stream`: what is done with each chunk a
//!   TCP client sends, and at the end of its stream.
//! - `connection`: a TCP connection's life in every model: admitted under the one connection
//!   limit, counted and logged by its 4-tuple, ended for a reason; the accept-error and
//!   socket-option policies. `connections`: the set of open connections itself: the count the
//!   limit holds, what the end of a shutdown closes, what the status page lists.
//! - `blocking`: the blocking I/O of the iterative and threaded models (accept loop, a
//!   connection served with socket timeouts, the UDP receive loop).
//! - `shutdown`: stop, grace period, force-close, and the signals that start them.
//! - [`proxy`]: the PROXY protocol header a balancer opens each TCP connection with;
//!   [`sources`]: the per-source limit on open TCP connections.
//! - [`stats`]: the counters; [`rate_limit`]: per-source budgets of UDP reply bytes.
//! - [`histogram`]: connection durations and request sizes, kept only when observed;
//!   [`observe`]: the read-only [`Observer`] an admin endpoint gets; [`tcp_info`]: what the
//!   kernel says of one open connection, asked only when a status page asks.
//! - [`systemd`]: sockets handed over by systemd, and the notifications it waits for.
//! - `pktinfo`: UDP replies from the address each request was sent to, on a socket bound to a
//!   wildcard address.
//! - `faulty_udp`: UDP replies dropped, delayed, duplicated or reordered on purpose, when
//!   [`Config::faults`] asks for it (TCP's slow replies are in each model's write path).
//!
//! Every model speaks the same protocol (`docs/PROTOCOL.md`). Nothing a client sends may crash,
//! hang or exhaust the server: every limit is a [`Config`] field, and errors on one connection or
//! datagram are counted and logged, never propagated.

mod asynchronous;
pub mod bind;
mod blocking;
mod config;
mod connection;
mod connections;
mod datagram;
mod faulty_udp;
pub mod histogram;
mod iterative;
mod liveness;
pub mod observe;
mod pktinfo;
pub mod proxy;
pub mod rate_limit;
mod shutdown;
pub mod sources;
pub mod stats;
mod stream;
pub mod systemd;
pub mod tcp_info;
mod threaded;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use bind::{bind, BindOptions, Sockets};
pub use config::{default_workers, Config, Model};
pub use observe::Observer;
pub use proxy::ProxyProtocol;
pub use rate_limit::RateLimit;
pub use shutdown::Signals;
pub use stats::{Snapshot, Stats};

use crate::net::{NetError, Transport};

/// The port of the lecture's examples, and upcase's default.
pub const DEFAULT_PORT: u16 = 12000;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A `--listen` value did not resolve to any address.
    #[error(transparent)]
    Net(#[from] NetError),
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
    /// A worker of the async model could not be set up: its sockets, its event loop, its thread.
    #[error("cannot start worker {index} of the async model: {reason} (try fewer --workers)")]
    Worker {
        /// Which worker.
        index: usize,
        /// The operating system's reason.
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

/// State shared by all of one server's loops and connections.
#[derive(Debug)]
pub(crate) struct Context {
    /// The configuration it was started with.
    pub(crate) config: Config,
    /// Its counters.
    pub(crate) stats: Stats,
    /// Its histograms, filled only when [`Config::observed`].
    pub(crate) histograms: histogram::Histograms,
    /// Its shutdown signals.
    pub(crate) shutdown: shutdown::Shutdown,
    /// Its open TCP connections, whatever the model: the one place their number is limited, and
    /// how they are closed when the grace period runs out.
    pub(crate) connections: connections::ConnectionSet,
    /// Open TCP connections per source, when `max_connections_per_source` is set.
    pub(crate) sources: Option<sources::Sources>,
    /// Limits how often over-limit connections are logged.
    pub(crate) over_limit_log: stats::LogThrottle,
    /// Limits how often connections refused for their source are logged.
    pub(crate) per_source_log: stats::LogThrottle,
    /// Limits how often connections closed for their PROXY header are logged.
    pub(crate) proxy_log: stats::LogThrottle,
    /// Limits how often accept errors are logged.
    pub(crate) accept_error_log: stats::LogThrottle,
    /// Limits how often UDP drops and errors are logged.
    pub(crate) udp_log: stats::LogThrottle,
    /// Per-source budgets of UDP reply bytes, when `udp_rate` is set.
    pub(crate) udp_budgets: Option<rate_limit::Budgets>,
    /// A fresh uppercaser for the configured encoding, built once: cloning it copies two
    /// references, where building one looks up the encoding's tables under a lock.
    fresh_uppercaser: crate::transform::Uppercaser,
    /// Wakes the async model's workers, each blocked in its own event loop, to see a stop.
    wakers: std::sync::OnceLock<Vec<mio::Waker>>,
    /// Whether the async model's workers are still turning (none for the blocking models).
    pub(crate) liveness: liveness::Liveness,
}

impl Context {
    fn new(config: Config) -> Self {
        Self {
            udp_budgets: config.udp_rate.map(rate_limit::Budgets::new),
            sources: config
                .max_connections_per_source
                .map(|limit| sources::Sources::new(limit, config.per_source_loopback)),
            fresh_uppercaser: crate::transform::Uppercaser::new(config.encoding),
            connections: connections::ConnectionSet::new(
                config.model != Model::Async,
                config.observed,
                config.proxy_protocol.is_some(),
            ),
            stats: Stats::with_shards(if config.model == Model::Async { config.workers.max(1) } else { 0 }),
            liveness: liveness::Liveness::new(if config.model == Model::Async {
                config.workers.max(1)
            } else {
                0
            }),
            config,
            histograms: histogram::Histograms::default(),
            shutdown: shutdown::Shutdown::default(),
            over_limit_log: stats::LogThrottle::default(),
            per_source_log: stats::LogThrottle::default(),
            proxy_log: stats::LogThrottle::default(),
            accept_error_log: stats::LogThrottle::default(),
            udp_log: stats::LogThrottle::default(),
            wakers: std::sync::OnceLock::new(),
        }
    }

    /// The decisions for the replies of one serving loop, when faults are configured (`None`
    /// otherwise): `nth` numbers the loop among those of its transport (a worker, a UDP thread, a
    /// connection's thread). A loop's UDP sockets (IPv4 and IPv6) draw the same decisions, so a
    /// client meets the same faults whichever family it uses.
    pub(crate) fn fault_plan(&self, transport: Transport, nth: u64) -> Option<crate::faults::Plan> {
        let faults = self.config.faults.as_ref()?;
        let parity = match transport {
            Transport::Udp => 0,
            Transport::Tcp => 1,
        };
        Some(faults.plan(nth.saturating_mul(2).saturating_add(parity)))
    }

    /// Keeps the wakers of the async model's workers, for [`Self::wake_workers`].
    pub(crate) fn set_wakers(&self, wakers: Vec<mio::Waker>) {
        if self.wakers.set(wakers).is_err() {
            tracing::error!("bug: workers started twice");
        }
    }

    /// Wakes every worker of the async model, so that it sees a stop or the end of the grace.
    pub(crate) fn wake_workers(&self) {
        for waker in self.wakers.get().into_iter().flatten() {
            if let Err(e) = waker.wake() {
                tracing::warn!("cannot wake a worker to stop it: {e}");
            }
        }
    }

    /// An uppercaser at the start of a stream, for one connection or one datagram.
    pub(crate) fn uppercaser(&self) -> crate::transform::Uppercaser {
        self.fresh_uppercaser.clone()
    }

    /// Test-only fault injection: panics if `bytes` contain [`Config::panic_on`], stalls the
    /// thread if they contain [`Config::stall_on`]'s trigger.
    pub(crate) fn inject_fault(&self, bytes: &[u8]) {
        let contains =
            |trigger: &[u8]| !trigger.is_empty() && bytes.windows(trigger.len()).any(|w| w == trigger);
        if self.config.panic_on.as_deref().is_some_and(contains) {
            panic!("fault injected: input contained the test's panic trigger");
        }
        if let Some((_, stall)) = self.config.stall_on.as_ref().filter(|(trigger, _)| contains(trigger)) {
            std::thread::sleep(*stall);
        }
    }
}

/// A running server: its loops, its counters and its shutdown handle.
///
/// Must be started inside a Tokio runtime, which supervises the models' threads (the blocking
/// models' loops run on its blocking pool; the async model's workers are threads of their own).
#[derive(Debug)]
pub struct Server {
    context: Arc<Context>,
    tracker: TaskTracker,
    local_addrs: Vec<(Transport, SocketAddr)>,
    /// Held while the server runs: see [`bind::Claim`].
    _claims: Vec<bind::Claim>,
}

impl Server {
    /// Starts serving `sockets` with `config` in the background, each socket in the configured
    /// model.
    pub fn start(mut sockets: Sockets, config: Config) -> Result<Self, ServerError> {
        let local_addrs = sockets.local_addrs();
        sockets.tcp.iter().for_each(connection::ready_listener);
        let claims = std::mem::take(&mut sockets.claims);
        let context = Arc::new(Context::new(config));
        let tracker = TaskTracker::new();
        match context.config.model {
            Model::Iterative => {
                for listener in sockets.tcp {
                    spawn_blocking(&tracker, &context, iterative::serve_tcp, listener);
                }
                for socket in sockets.udp {
                    spawn_blocking(&tracker, &context, iterative::serve_udp, socket);
                }
            }
            Model::Threaded => {
                for listener in sockets.tcp {
                    spawn_blocking(&tracker, &context, threaded::serve_tcp, listener);
                }
                for socket in sockets.udp {
                    spawn_blocking(&tracker, &context, threaded::serve_udp, socket);
                }
            }
            Model::Async => asynchronous::start(sockets, &context, &tracker)?,
        }
        tracker.close();
        Ok(Self { context, tracker, local_addrs, _claims: claims })
    }

    /// Where it listens, TCP first.
    pub fn local_addrs(&self) -> &[(Transport, SocketAddr)] {
        &self.local_addrs
    }

    /// Its counters, live.
    pub fn stats(&self) -> &Stats {
        &self.context.stats
    }

    /// A read-only view for an admin endpoint: counters, histograms, open connections, drain.
    pub fn observer(&self) -> Observer {
        Observer::new(Arc::clone(&self.context), &self.local_addrs)
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
        shutdown::drain(&self.context, &self.tracker).await;
        self.context.stats.snapshot()
    }
}

/// Runs a blocking serving loop on its own thread, tracked like an async task.
fn spawn_blocking<S: Send + 'static>(
    tracker: &TaskTracker,
    context: &Arc<Context>,
    serve: fn(S, &Context),
    socket: S,
) {
    let context = Arc::clone(context);
    tracker.spawn_blocking(move || serve(socket, &context));
}
