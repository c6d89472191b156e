//! What an admin endpoint may see of a running server, and nothing it could change: the counters,
//! the histograms, the limits, the listening sockets, the open connections, and whether a drain
//! has started.
//!
//! Everything is read when asked, from what the server keeps anyway. Listing the open
//! connections is the only work that grows with their number: one pass over the connection set
//! under its lock, copying each one's age and key; then, for each connection listed (a bounded
//! number), a few system calls with the set locked for that one connection. This module must
//! never hold the set's lock across more than one connection's system calls, nor change anything.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::histogram::Histograms;
use super::tcp_info::{view, SocketView};
use super::{Config, Context, Model, Snapshot};
use crate::net::Transport;

/// A read-only view of one running server, cheap to clone; from [`super::Server::observer`].
#[derive(Debug, Clone)]
pub struct Observer {
    context: Arc<Context>,
    listening: Arc<[(Transport, SocketAddr)]>,
}

/// The open TCP connections, the oldest first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Connections {
    /// How many are open in all.
    pub open: usize,
    /// The oldest of them, up to the number asked for; one that ended while they were being
    /// listed is left out.
    pub listed: Vec<OpenConnection>,
}

/// One open TCP connection: the lecture's "connection socket", one per 4-tuple.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpenConnection {
    /// The number the server's debug log names it by.
    pub id: u64,
    /// How long it has been open, in milliseconds.
    pub age_ms: u64,
    /// Its socket, as the kernel sees it now; behind a proxy (`--proxy-protocol`), `client` is
    /// the client the proxy named.
    #[serde(flatten)]
    pub socket: SocketView,
    /// Behind a proxy, the proxy's end of the connection: the kernel's peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<SocketAddr>,
}

impl Observer {
    pub(super) fn new(context: Arc<Context>, listening: &[(Transport, SocketAddr)]) -> Self {
        Self { context, listening: listening.into() }
    }

    /// The counters, now.
    pub fn stats(&self) -> Snapshot {
        self.context.stats.snapshot()
    }

    /// The histograms; they are filled only when the server was started with
    /// [`Config::observed`].
    pub fn histograms(&self) -> &Histograms {
        &self.context.histograms
    }

    /// The configuration the server was started with.
    pub fn config(&self) -> &Config {
        &self.context.config
    }

    /// Most TCP connections open at once, as the model applies it.
    pub fn connection_limit(&self) -> usize {
        let config = &self.context.config;
        match config.model {
            Model::Threaded => config.max_threads.min(config.max_connections),
            Model::Iterative | Model::Async => config.max_connections,
        }
    }

    /// The welcoming sockets: where the server listens, TCP first.
    pub fn listening(&self) -> &[(Transport, SocketAddr)] {
        &self.listening
    }

    /// Whether a drain has started: the server has stopped accepting and answering, and open
    /// streams are finishing within the grace period.
    pub fn is_draining(&self) -> bool {
        self.context.shutdown.stop.is_cancelled()
    }

    /// A worker of the async model that has been inside one turn of its loop for longer than
    /// `limit` (a bug that loops or blocks), and for how long; `None` when every worker waits or
    /// turns normally, and always for the blocking models.
    pub fn stuck_worker(&self, limit: std::time::Duration) -> Option<(usize, std::time::Duration)> {
        self.context.liveness.stuck(limit)
    }

    /// Waits until a drain starts.
    pub async fn drain_started(&self) {
        self.context.shutdown.stop.cancelled().await;
    }

    /// How long the server has been running.
    pub fn uptime(&self) -> Duration {
        self.context.connections.age()
    }

    /// The open TCP connections, the `at_most` oldest of them listed with what the kernel says
    /// of each. Ages are right only when the server is [`Config::observed`].
    pub fn connections(&self, at_most: usize) -> Connections {
        let set = &self.context.connections;
        let open_now = self.context.stats.snapshot().tcp_open;
        // Room for the connections that open while the set is being read, so that the pass under
        // the lock seldom has to grow the list.
        let mut ages = Vec::with_capacity(usize::try_from(open_now).unwrap_or(0).saturating_add(64));
        set.each_age(|age, key| ages.push((age, key)));
        let open = ages.len();
        if ages.len() > at_most {
            ages.select_nth_unstable_by_key(at_most, oldest_first);
            ages.truncate(at_most);
        }
        ages.sort_unstable_by_key(oldest_first);
        let listed = ages
            .into_iter()
            .filter_map(|(age, key)| {
                let (socket, proxy) = set.inspect(key, |fd, named| {
                    let mut socket = view(fd);
                    let proxy = named.and_then(|client| socket.client.replace(client));
                    (socket, proxy)
                })?;
                Some(OpenConnection {
                    id: key,
                    age_ms: u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
                    socket,
                    proxy,
                })
            })
            .collect();
        Connections { open, listed }
    }
}

/// Orders connections the oldest first; of those opened in the same millisecond, the first
/// admitted first.
fn oldest_first(&(age, key): &(Duration, u64)) -> (std::cmp::Reverse<Duration>, u64) {
    (std::cmp::Reverse(age), key)
}
