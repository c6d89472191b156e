//! The admin endpoint (`upcase serve --admin ADDR`): a separate HTTP/1.1 listener that lets an
//! operator, a balancer or Prometheus see the server without touching the service.
//!
//! - `GET /metrics` ([`metrics`]): Prometheus text of every counter, the open connections and
//!   their limit, histograms of TCP connection duration and request size, build information.
//! - `GET /health`: `200 serving` until a drain starts, then `503 draining`, so a balancer stops
//!   sending new clients before the grace period ends.
//! - `GET /` and `GET /status.json` ([`status`]): a live page of the listening sockets, every open
//!   TCP connection's 4-tuple with its age and bytes, and the counters.
//!
//! It runs as its own tasks on the runtime of the main thread, which supervises the server and
//! serves none of its clients, and reads what the server keeps anyway
//! (through [`Observer`]): the service does no work for it, and nothing a client of the admin
//! port does (garbage, huge headers, slow clients, thousands of connections: see `http`) can
//! reach the service. It must never share a port with the service, and never change the server.

mod http;
pub mod metrics;
pub mod status;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::server::Observer;

pub use metrics::metric_name;

/// The limits of the admin endpoint, each with its one default; none can be exceeded by a client.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Most admin connections open at once; one more is closed as soon as it is accepted. A
    /// scraper, a balancer's probes and a few pages need far fewer.
    pub max_connections: usize,
    /// A request's head (request line and headers) must arrive within this long, or the
    /// connection is closed: the slowloris guard. It applies to each request on a connection.
    pub header_read_timeout: Duration,
    /// Largest request head in bytes; a larger one gets 431 and a close.
    pub max_head_bytes: usize,
    /// Most headers in one request.
    pub max_headers: usize,
    /// Requests one connection may make; the last is answered with `Connection: close`.
    pub max_requests_per_connection: u32,
    /// How long one connection may stay open, however busy.
    pub max_connection_time: Duration,
    /// `/health` answers 503 once a worker has been inside one turn of its loop for this long
    /// (a bug that loops or blocks: a turn normally takes microseconds).
    pub stuck_after: Duration,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            max_connections: 64,
            stuck_after: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(5),
            max_head_bytes: 8 * 1024,
            max_headers: 32,
            max_requests_per_connection: 1_000,
            max_connection_time: Duration::from_secs(120),
        }
    }
}

/// Serves the admin endpoint on `listener` (bound by the caller, never a service port) as tasks
/// on the current Tokio runtime, until it shuts down. Returns where it listens.
///
/// # Errors
/// When the listener cannot be handed to the runtime (called outside one).
pub fn start(
    listener: std::net::TcpListener,
    observer: Observer,
    config: AdminConfig,
) -> io::Result<SocketAddr> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let addr = listener.local_addr()?;
    tokio::spawn(http::serve(listener, observer, config));
    Ok(addr)
}
