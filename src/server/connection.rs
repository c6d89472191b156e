//! A TCP connection's life, the same in every model: admitted into the server's set of open
//! connections (the one place their number is limited), readied, counted and logged by its
//! 4-tuple while it lives, ended for a reason that is counted; and what an accept loop does when
//! `accept` itself fails.
//!
//! The lecture's point made visible: each accepted connection is its own socket, named by
//! (server IP, server port, client IP, client port), beside the one welcoming socket.
//!
//! Nothing here may end an accept loop: an error belongs to one connection or one `accept` call.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::Duration;

use super::connections::Socket;
use super::proxy::{log_rejected, Proxied, Rejection};
use super::sources::Source;
use super::stats::{add, decrement};
use super::Context;

/// A connection admitted under the limits: its key in the connection set, which also names it in
/// the logs, and the source whose place it holds under the per-source limit, if any.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admission {
    pub(crate) key: u64,
    pub(crate) source: Option<Source>,
}

/// Admits a connection just accepted from `peer` unless `limit` are already open, its source
/// has its share open, it is not from a trusted proxy when the PROXY protocol is on, or the grace
/// period is over; otherwise counts why not and returns `None`, and dropping the socket closes
/// it. Every model admits through here: the one connection limit. `socket` is how the set may
/// reach it, asked for only when the set keeps entries ([`super::connections`]).
///
/// Behind a proxy, the source is the client its header names, known only once the header is
/// read: [`proxied`] takes its place then.
pub(crate) fn admit(
    context: &Context,
    socket: impl FnOnce() -> Option<Socket>,
    peer: SocketAddr,
    limit: usize,
) -> Option<Admission> {
    let set = &context.connections;
    if set.closing() {
        add(&context.stats.tcp_accepted, 1);
        add(&context.stats.tcp_closed_at_shutdown, 1);
        return None;
    }
    let source = match &context.config.proxy_protocol {
        Some(proxy) if !proxy.trusts(peer.ip()) => {
            add(&context.stats.tcp_proxy_untrusted, 1);
            log_rejected(context, peer, &Rejection::Untrusted);
            return None;
        }
        Some(_) => None,
        None => take_source(context, peer).ok()?,
    };
    let Some(key) = set.take_place(limit) else {
        release_source(context, source);
        add(&context.stats.tcp_rejected_over_limit, 1);
        if let Some(held_back) = context.over_limit_log.allow() {
            tracing::warn!(
                limit,
                client = %peer,
                held_back,
                "connection limit reached: closing a new connection (held_back: how many more since the last message)"
            );
        }
        return None;
    };
    set.enter(key, socket);
    Some(Admission { key, source })
}

/// Takes a place for `client` under the per-source limit: `Ok(None)` when its source is not
/// limited; `Err` (counted and logged) when its source has its share open.
fn take_source(context: &Context, client: SocketAddr) -> Result<Option<Source>, ()> {
    let Some(sources) = &context.sources else { return Ok(None) };
    sources.take(client.ip()).map_err(|source| {
        add(&context.stats.tcp_rejected_per_source, 1);
        if let Some(held_back) = context.per_source_log.allow() {
            tracing::warn!(
                limit = context.config.max_connections_per_source,
                client = %client,
                %source,
                held_back,
                "per-source connection limit reached: closing a new connection (held_back: how many more since the last message)"
            );
        }
    })
}

/// A connection behind a proxy whose header `header` was just read from `proxy`: its client
/// takes a place under the per-source limit (`Err(Ending::PerSource)` when its source has its
/// share open: counted, and the connection is to be closed), is recorded for the status page,
/// and the connection is logged by its real 4-tuple. A header without a client (`LOCAL`,
/// `UNKNOWN`) stands for the proxy itself.
pub(crate) fn proxied(
    context: &Context,
    admission: &mut Admission,
    socket: &impl AsFd,
    proxy: SocketAddr,
    header: Proxied,
) -> Result<(), Ending> {
    let client = header.client.unwrap_or(proxy);
    admission.source = take_source(context, client).map_err(|()| Ending::PerSource)?;
    context.connections.record_client(admission.key, client);
    tracing::debug!(
        connection = admission.key,
        server = %display_addr(socket2::SockRef::from(socket).local_addr().ok().and_then(|a| a.as_socket())),
        client = %client,
        proxy = %proxy,
        proxy_protocol = header.version,
        "connection opened"
    );
    Ok(())
}

/// Takes back the admission of a connection that could not be served after all (no thread could
/// be started for it): its places are freed, and it counts as refused over the limit.
pub(crate) fn withdraw(context: &Context, admission: Admission) {
    context.connections.release(admission.key);
    release_source(context, admission.source);
    add(&context.stats.tcp_rejected_over_limit, 1);
}

fn release_source(context: &Context, source: Option<Source>) {
    if let (Some(sources), Some(source)) = (&context.sources, source) {
        sources.release(source);
    }
}

/// Counts a connection admitted as `key` as open, and logs its 4-tuple at debug level (behind a
/// proxy, [`proxied`] does, once the header names the client). `socket` is asked for its own
/// address only when the line that shows it is logged: that is a system call.
pub(crate) fn opened(context: &Context, key: u64, socket: &impl AsFd, peer: SocketAddr) {
    add(&context.stats.tcp_accepted, 1);
    add(&context.stats.tcp_open, 1);
    if context.config.proxy_protocol.is_none() {
        tracing::debug!(
            connection = key,
            server = %display_addr(socket2::SockRef::from(socket).local_addr().ok().and_then(|a| a.as_socket())),
            client = %peer,
            "connection opened"
        );
    }
}

/// Counts how the connection admitted as `admission` ended, having received `received` bytes,
/// and frees its places under the limits. A worker calls this before it closes the socket (see
/// [`super::connections::Socket::Worker`]).
pub(crate) fn ended(context: &Context, admission: Admission, outcome: &Result<(), Ending>, received: u64) {
    let stats = &context.stats;
    let key = admission.key;
    // Its places first, then the gauge: once `tcp_open` says it ended, its places are free.
    if let Some(lived) = context.connections.release(key) {
        context.histograms.connection_ended(lived, received);
    }
    release_source(context, admission.source);
    decrement(&stats.tcp_open);
    let counter = match outcome {
        Ok(()) => {
            tracing::debug!(connection = key, received, "connection closed");
            return;
        }
        Err(Ending::Idle) => &stats.tcp_idle_timeouts,
        Err(Ending::ReplyNotRead) => &stats.tcp_write_timeouts,
        Err(Ending::Shutdown) => &stats.tcp_closed_at_shutdown,
        Err(Ending::Lifetime) => &stats.tcp_lifetime_exceeded,
        Err(Ending::Panic) => {
            tracing::error!(connection = key, "bug: panic while serving a connection; the server goes on");
            &stats.panics
        }
        Err(Ending::Io(_)) => &stats.tcp_errors,
        Err(Ending::Proxy(Rejection::Untrusted)) => &stats.tcp_proxy_untrusted,
        Err(Ending::Proxy(Rejection::Missing)) => &stats.tcp_proxy_missing,
        Err(Ending::Proxy(Rejection::Malformed(_))) => &stats.tcp_proxy_malformed,
        Err(Ending::Proxy(Rejection::Incomplete)) => &stats.tcp_proxy_incomplete,
        Err(Ending::Proxy(Rejection::Timeout)) => &stats.tcp_proxy_timeout,
        // Counted when it was refused, as a refusal at admission is.
        Err(Ending::PerSource) => return,
    };
    add(counter, 1);
    if let Err(ending) = outcome {
        tracing::debug!(connection = key, received, reason = %ending, "connection closed");
    }
}

/// A blocking model's connection for as long as it lives: [`opened`] when made, [`ended`] when
/// dropped, however its thread leaves it (a panic included: then it counts as ended by the
/// shutdown unless [`Self::finished`] said otherwise).
#[derive(Debug)]
pub(crate) struct ConnectionGuard<'a> {
    context: &'a Context,
    admission: Admission,
    outcome: Option<Result<(), Ending>>,
    /// Bytes received from the client so far.
    received: u64,
}

impl<'a> ConnectionGuard<'a> {
    /// Takes charge of the connection admitted as `admission`, from `peer`, on `socket`.
    pub(crate) fn new(
        context: &'a Context,
        admission: Admission,
        socket: &impl AsFd,
        peer: SocketAddr,
    ) -> Self {
        opened(context, admission.key, socket, peer);
        Self { context, admission, outcome: None, received: 0 }
    }

    /// The connection came through a proxy whose header was just read: see [`proxied`].
    pub(crate) fn proxied(
        &mut self,
        socket: &impl AsFd,
        proxy: SocketAddr,
        header: Proxied,
    ) -> Result<(), Ending> {
        proxied(self.context, &mut self.admission, socket, proxy, header)
    }

    /// Counts `bytes` just received from the client.
    pub(crate) fn received(&mut self, bytes: usize) {
        self.received += bytes as u64;
    }

    /// Records how the connection ended; counted when the guard is dropped.
    pub(crate) fn finished(&mut self, outcome: Result<(), Ending>) {
        self.outcome = Some(outcome);
    }
}

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        let outcome = self.outcome.take().unwrap_or(Err(Ending::Shutdown));
        ended(self.context, self.admission, &outcome, self.received);
    }
}

fn display_addr(addr: Option<SocketAddr>) -> String {
    addr.map_or_else(|| "?".to_owned(), |a| a.to_string())
}

/// Readies a listener so that every connection accepted on it sends each reply as soon as it is
/// written, instead of waiting (Nagle's algorithm) until the client has acknowledged the one
/// before, which can hold a small reply back for the client's delayed ACK, up to 40 ms. On Linux
/// an accepted connection inherits TCP_NODELAY from its listener: one system call per listener
/// instead of one per connection.
///
/// The policy for socket options, in every model: one that only tunes (this one) is best effort,
/// and a failure is logged and serving goes on; one that enforces a limit (the blocking models'
/// timeouts) ends the connection when it cannot be set, since serving it would break the limit's
/// promise.
pub(crate) fn ready_listener(listener: &impl AsFd) {
    if let Err(e) = socket2::SockRef::from(listener).set_tcp_nodelay(true) {
        tracing::warn!(error = %e, "cannot set TCP_NODELAY on a listener: small replies may wait for ACKs");
    }
}

/// Why a connection ended other than by the client finishing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Ending {
    /// The client sent nothing for the idle timeout.
    #[error("idle for longer than the idle timeout")]
    Idle,
    /// The client did not read its reply for the write timeout.
    #[error("client did not read its reply within the write timeout")]
    ReplyNotRead,
    /// The connection was open for longer than the maximum connection time.
    #[error("open for longer than the maximum connection time")]
    Lifetime,
    /// Serving it panicked (a bug); only this connection ended.
    #[error("panic while serving")]
    Panic,
    /// The server's shutdown grace period ran out.
    #[error("server shutting down")]
    Shutdown,
    /// The connection failed (reset, broken pipe).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Behind a proxy: the connection did not start with a good PROXY header.
    #[error("{0}")]
    Proxy(Rejection),
    /// Behind a proxy: the client its header named already had its share of connections open.
    #[error("its source has --max-connections-per-source open")]
    PerSource,
}

/// Logs and counts a failed `accept`, and says how long to wait before the next one.
///
/// Running out of file descriptors or memory is not a reason to stop serving: the listener waits
/// (longer each time, up to a second) for connections to close, then tries again.
pub(crate) fn accept_failed(context: &Context, error: &io::Error, consecutive: u32) -> Duration {
    add(&context.stats.tcp_accept_errors, 1);
    if let Some(held_back) = context.accept_error_log.allow() {
        tracing::warn!(error = %error, held_back, "accept failed; retrying");
    }
    match error.kind() {
        // The client gave up between SYN and accept: nothing wrong with the server.
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted => {
            Duration::ZERO
        }
        _ => accept_pause(consecutive),
    }
}

/// The wait after the `consecutive`th failed `accept` in a row (counting from 1): 10 ms after the
/// first, doubling each time, at most a second.
fn accept_pause(consecutive: u32) -> Duration {
    let doublings = consecutive.saturating_sub(1).min(7);
    Duration::from_millis(10u64 << doublings).min(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn accept_failures_wait_10_ms_then_twice_as_long_each_time_up_to_a_second() {
        let pauses: Vec<u64> = (1..=9).map(|n| accept_pause(n).as_millis() as u64).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert_eq!(accept_pause(u32::MAX), Duration::from_secs(1));
    }

    /// A connection accepted on a readied listener has Nagle's algorithm off without a system
    /// call of its own, whether accepted by the standard library (blocking models) or by mio (the
    /// async model).
    #[test]
    fn connections_inherit_nodelay_from_their_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (before, _) = listener.accept().unwrap();
        assert!(!before.nodelay().unwrap(), "the kernel's default changed; this test proves nothing");
        ready_listener(&listener);
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (blocking, _) = listener.accept().unwrap();
        assert!(blocking.nodelay().unwrap());

        listener.set_nonblocking(true).unwrap();
        let listener = mio::net::TcpListener::from_std(listener);
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let accepted = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert!(accepted.nodelay().unwrap());
    }

    /// The limit, the refusal after the grace period, and a released slot, the same for every
    /// model; counted where the exit summary shows them.
    #[test]
    fn one_limit_for_every_model() {
        let context = Context::new(super::super::Config::default());
        let peer = SocketAddr::from(([127, 0, 0, 1], 5000));
        let first = admit(&context, || None, peer, 2).unwrap();
        assert!(admit(&context, || None, peer, 2).is_some());
        assert!(admit(&context, || None, peer, 2).is_none(), "over the limit");
        assert_eq!(context.stats.snapshot().tcp_rejected_over_limit, 1);
        context.connections.release(first.key);
        assert!(admit(&context, || None, peer, 2).is_some(), "a released slot is free again");
        assert_eq!(context.connections.open(), 2);
        context.connections.close_all();
        assert!(admit(&context, || None, peer, 2).is_none(), "closing: refused");
        let stats = context.stats.snapshot();
        assert_eq!((stats.tcp_accepted, stats.tcp_closed_at_shutdown), (1, 1));
    }
}
