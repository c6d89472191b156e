//! A TCP connection's life, the same in every model: admitted into the server's set of open
//! connections (the one place their number is limited), readied, counted and logged by its
//! 4-tuple while it lives, ended for a reason that is counted; and what an accept loop does when
//! `accept` itself fails.
//!
//! The lecture's point made visible: each accepted connection is its own socket, named by
//! (server IP, server port, client IP, client port), beside the one welcoming socket.
//!
//! Nothing here may end an accept loop: an error belongs to one connection or one `accept` call.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::stats::{add, decrement};
use super::Context;

/// How the end of a shutdown reaches one open connection.
#[derive(Debug)]
pub(crate) enum Handle {
    /// Blocking models: a second handle on the connection's socket. Shutting it down makes a
    /// blocked `read` or `write` on the serving thread return at once, the only way to interrupt
    /// it without polling.
    Socket(std::net::TcpStream),
    /// The async model: the connection's task, which aborting drops (closing its socket) at its
    /// next wake-up, or at once if it is waiting.
    Task(tokio::task::AbortHandle),
}

impl Handle {
    /// Ends the connection now, wherever it is waiting. Never runs the connection's own code on
    /// the calling thread.
    fn close(&self) {
        match self {
            // Fails only if the client already closed, which is what we want anyway.
            Self::Socket(stream) => drop(stream.shutdown(std::net::Shutdown::Both)),
            Self::Task(task) => task.abort(),
        }
    }
}

/// The open connections of one server: their number is limited here, and the end of a shutdown
/// closes them from here.
///
/// Each entry costs a key and a handle (about 30 bytes): far less than the cancellation future
/// each connection would otherwise have to hold and poll.
#[derive(Debug, Default)]
pub(crate) struct ConnectionSet {
    state: Mutex<SetState>,
}

#[derive(Debug, Default)]
struct SetState {
    next_key: u64,
    /// A handle on each open connection; `None` until it is attached, or where it could not be
    /// made (out of file descriptors), and that connection ends by its own timeouts instead.
    open: HashMap<u64, Option<Handle>>,
    closing: bool,
}

impl ConnectionSet {
    fn lock(&self) -> std::sync::MutexGuard<'_, SetState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives an admitted connection its handle, once it has one. If the connection already ended
    /// the handle is not kept; if everything is being closed, it is closed at once.
    pub(crate) fn attach(&self, key: u64, handle: Handle) {
        let mut state = self.lock();
        if state.closing {
            drop(state);
            handle.close();
        } else if let Some(slot) = state.open.get_mut(&key) {
            *slot = Some(handle);
        }
    }

    /// Removes a connection that has ended.
    fn release(&self, key: u64) {
        self.lock().open.remove(&key);
    }

    /// Closes every open connection and refuses new ones.
    pub(crate) fn close_all(&self) {
        let mut state = self.lock();
        state.closing = true;
        // Closed under the lock, so a connection ending meanwhile cannot be missed; no close runs
        // the connection's code on this thread, so it cannot come back for the lock.
        for handle in state.open.values().flatten() {
            handle.close();
        }
    }
}

/// Admits a connection just accepted from `peer` unless `limit` are already open or the grace
/// period is over, and returns its key; otherwise counts why not and returns `None`, and dropping
/// the socket closes it. Every model admits through here: the one connection limit.
pub(crate) fn admit(
    context: &Context,
    handle: Option<Handle>,
    peer: SocketAddr,
    limit: usize,
) -> Option<u64> {
    let mut state = context.connections.lock();
    if state.closing {
        drop(state);
        add(&context.stats.tcp_accepted, 1);
        add(&context.stats.tcp_closed_at_shutdown, 1);
        return None;
    }
    if state.open.len() >= limit {
        drop(state);
        add(&context.stats.tcp_rejected_over_limit, 1);
        if let Some(held_back) = context.over_limit_log.allow() {
            tracing::warn!(
                "connection limit of {limit} reached: closing new connection from {peer} \
                 ({held_back} more closed since the last message)"
            );
        }
        return None;
    }
    let key = state.next_key;
    state.next_key += 1;
    state.open.insert(key, handle);
    Some(key)
}

/// Takes back the admission of a connection that could not be served after all (no thread could
/// be started for it): its place is freed, and it counts as refused over the limit.
pub(crate) fn withdraw(context: &Context, key: u64) {
    context.connections.release(key);
    add(&context.stats.tcp_rejected_over_limit, 1);
}

/// An admitted connection for as long as it lives: counted open, logged by its 4-tuple at debug
/// level, its ending counted, and released from the connection set when dropped. `C` is how it
/// holds the server's context: borrowed on a blocking thread, an `Arc` in an async task.
#[derive(Debug)]
pub(crate) struct ConnectionGuard<C: Deref<Target = Context>> {
    context: C,
    /// Its key in the connection set, which also names it in the logs: 8 bytes, where its
    /// client's address would take 32 for each open connection.
    key: u64,
    /// Whether [`Self::finished`] has counted the ending; one dropped without it was closed by
    /// the end of a shutdown.
    counted: bool,
}

impl<C: Deref<Target = Context>> ConnectionGuard<C> {
    /// Takes charge of the connection admitted as `key`, from `peer`, on `socket`, and readies the
    /// socket ([`ready`]). `socket` is asked for its own address only when the line that shows it
    /// is logged: that is a system call.
    pub(crate) fn new(context: C, key: u64, socket: &impl std::os::fd::AsFd, peer: SocketAddr) -> Self {
        add(&context.stats.tcp_accepted, 1);
        add(&context.stats.tcp_open, 1);
        tracing::debug!(
            connection = key,
            server = %display_addr(socket2::SockRef::from(socket).local_addr().ok().and_then(|a| a.as_socket())),
            client = %peer,
            "connection opened"
        );
        ready(socket, key);
        Self { context, key, counted: false }
    }

    /// The server's context.
    pub(crate) fn context(&self) -> &Context {
        &self.context
    }

    /// Records how the connection ended, counting errors and timeouts.
    pub(crate) fn finished(&mut self, outcome: &Result<(), Ending>) {
        self.counted = true;
        let stats = &self.context.stats;
        let counter = match outcome {
            Ok(()) => {
                tracing::debug!(connection = self.key, "connection closed");
                return;
            }
            Err(Ending::Idle) => &stats.tcp_idle_timeouts,
            Err(Ending::ReplyNotRead) => &stats.tcp_write_timeouts,
            Err(Ending::Shutdown) => &stats.tcp_closed_at_shutdown,
            Err(Ending::Lifetime) => &stats.tcp_lifetime_exceeded,
            Err(Ending::Panic) => {
                tracing::error!(
                    connection = self.key,
                    "bug: panic while serving a connection; the server goes on"
                );
                &stats.panics
            }
            Err(Ending::Io(_)) => &stats.tcp_errors,
        };
        add(counter, 1);
        if let Err(ending) = outcome {
            tracing::debug!(connection = self.key, "connection closed: {ending}");
        }
    }
}

impl<C: Deref<Target = Context>> Drop for ConnectionGuard<C> {
    fn drop(&mut self) {
        if !self.counted {
            self.finished(&Err(Ending::Shutdown));
        }
        decrement(&self.context.stats.tcp_open);
        self.context.connections.release(self.key);
    }
}

fn display_addr(addr: Option<SocketAddr>) -> String {
    addr.map_or_else(|| "?".to_owned(), |a| a.to_string())
}

/// Readies an accepted connection: each reply goes out as soon as it is written, instead of
/// waiting (Nagle's algorithm) until the client has acknowledged the one before, which can hold a
/// small reply back for the client's delayed ACK, up to 40 ms.
///
/// The policy for socket options, in every model: one that only tunes the connection (this one)
/// is best effort, and a failure is logged and the connection served, since only a socket that
/// is already broken refuses it and its first read will say so; one that enforces a limit (the
/// blocking models' timeouts) ends the connection when it cannot be set, since serving it would
/// break the limit's promise.
fn ready(socket: &impl std::os::fd::AsFd, key: u64) {
    if let Err(e) = socket2::SockRef::from(socket).set_tcp_nodelay(true) {
        tracing::debug!(connection = key, "cannot set TCP_NODELAY: {e}");
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
}

/// Logs and counts a failed `accept`, and says how long to wait before the next one.
///
/// Running out of file descriptors or memory is not a reason to stop serving: the listener waits
/// (longer each time, up to a second) for connections to close, then tries again.
pub(crate) fn accept_failed(context: &Context, error: &io::Error, consecutive: u32) -> Duration {
    add(&context.stats.tcp_accept_errors, 1);
    if let Some(held_back) = context.accept_error_log.allow() {
        tracing::warn!("accept failed: {error} ({held_back} more since the last message); retrying");
    }
    match error.kind() {
        // The client gave up between SYN and accept: nothing wrong with the server.
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted => {
            Duration::ZERO
        }
        _ => Duration::from_millis(10u64.saturating_mul(1 << consecutive.min(7))).min(Duration::from_secs(1)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Both kinds of accepted socket, the blocking models' and the async model's, come out of
    /// `ready` with Nagle's algorithm off.
    #[test]
    fn accepted_connections_send_replies_at_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (blocking, _) = listener.accept().unwrap();
        assert!(!blocking.nodelay().unwrap(), "the kernel's default changed; this test proves nothing");
        ready(&blocking, 0);
        assert!(blocking.nodelay().unwrap());

        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
            let (asynchronous, _) = listener.accept().await.unwrap();
            ready(&asynchronous, 1);
            assert!(asynchronous.nodelay().unwrap());
        });
    }

    /// The limit, the refusal after the grace period, and a released slot, the same for every
    /// model; counted where the exit summary shows them.
    #[test]
    fn one_limit_for_every_model() {
        let context = Context::new(super::super::Config::default());
        let peer = SocketAddr::from(([127, 0, 0, 1], 5000));
        let first = admit(&context, None, peer, 2).unwrap();
        let second = admit(&context, None, peer, 2);
        assert!(second.is_some());
        assert_eq!(admit(&context, None, peer, 2), None, "over the limit");
        assert_eq!(context.stats.snapshot().tcp_rejected_over_limit, 1);
        context.connections.release(first);
        assert!(admit(&context, None, peer, 2).is_some(), "a released slot is free again");
        context.connections.close_all();
        assert_eq!(admit(&context, None, peer, 2), None, "closing: refused");
        let stats = context.stats.snapshot();
        assert_eq!((stats.tcp_accepted, stats.tcp_closed_at_shutdown), (1, 1));
    }
}
