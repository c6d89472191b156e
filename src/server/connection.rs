//! A TCP connection's life, the same in every model: admitted into the server's set of open
//! connections (the one place their number is limited), readied, counted and logged by its
//! 4-tuple while it lives, ended for a reason that is counted; and what an accept loop does when
//! `accept` itself fails.
//!
//! The lecture's point made visible: each accepted connection is its own socket, named by
//! (server IP, server port, client IP, client port), beside the one welcoming socket.
//!
//! Nothing here may end an accept loop: an error belongs to one connection or one `accept` call.

use std::collections::hash_map::{Entry as Slot, HashMap};
use std::io;
use std::net::SocketAddr;
use std::ops::Deref;
use std::os::fd::RawFd;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

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
    /// next wake-up, or at once if it is waiting; and its socket's descriptor, which the status
    /// page asks the kernel about. The task owns the socket, and drops its place in the set
    /// before the socket: while the entry is in the set (and the set is locked), the descriptor
    /// is that connection's.
    Task(tokio::task::AbortHandle, RawFd),
}

impl Handle {
    /// Ends the connection now, wherever it is waiting. Never runs the connection's own code on
    /// the calling thread.
    fn close(&self) {
        match self {
            // Fails only if the client already closed, which is what we want anyway.
            Self::Socket(stream) => drop(stream.shutdown(std::net::Shutdown::Both)),
            Self::Task(task, _) => task.abort(),
        }
    }
}

/// The open connections of one server: their number is limited here, the end of a shutdown
/// closes them from here, and the status page lists them from here.
///
/// Each entry costs a key, a handle and when it opened (32 bytes, about 50 with the table's
/// spare room): far less than the cancellation future each connection would otherwise have to
/// hold and poll. What the status page shows beyond that (the 4-tuple, the bytes) is asked of the
/// kernel when a page asks ([`super::tcp_info`]), never recorded per connection.
#[derive(Debug)]
pub(crate) struct ConnectionSet {
    state: Mutex<SetState>,
    /// Connections record when they opened, in milliseconds since this instant, only when the
    /// server is observed: otherwise admitting one reads no clock.
    epoch: Instant,
    observed: bool,
}

#[derive(Debug, Default)]
struct SetState {
    next_key: u32,
    open: HashMap<u32, Entry>,
    closing: bool,
}

/// One open connection in the set.
#[derive(Debug)]
pub(crate) struct Entry {
    /// A handle on it; `None` until it is attached, or where it could not be made (out of file
    /// descriptors), and that connection ends by its own timeouts instead.
    handle: Option<Handle>,
    /// When it opened, in milliseconds since the set's epoch, wrapping every 49.7 days (ages are
    /// computed with wrapping arithmetic, so they are right for any connection younger than that);
    /// 0 when the server is not observed.
    opened_ms: u32,
}

/// Whose key a connection has in the set, and whose name it has in the logs. Keys wrap after
/// 2³² connections; one still in use is skipped.
pub(crate) type Key = u32;

impl ConnectionSet {
    /// An empty set; `observed`: record when each connection opened.
    pub(crate) fn new(observed: bool) -> Self {
        Self { state: Mutex::default(), epoch: Instant::now(), observed }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SetState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long since the set was made (with the server).
    pub(crate) fn age(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Milliseconds since the epoch, truncated to 32 bits on purpose (see [`Entry::opened_ms`]).
    fn now_ms(&self) -> u32 {
        self.epoch.elapsed().as_millis() as u32
    }

    /// Gives an admitted connection its handle, once it has one. If the connection already ended
    /// the handle is not kept; if everything is being closed, it is closed at once.
    pub(crate) fn attach(&self, key: Key, handle: Handle) {
        let mut state = self.lock();
        if state.closing {
            drop(state);
            handle.close();
        } else if let Some(entry) = state.open.get_mut(&key) {
            entry.handle = Some(handle);
        }
    }

    /// Removes a connection that has ended; returns how long it was open when the server is
    /// observed.
    fn release(&self, key: Key) -> Option<Duration> {
        let entry = self.lock().open.remove(&key)?;
        self.observed.then(|| Duration::from_millis(self.now_ms().wrapping_sub(entry.opened_ms).into()))
    }

    /// Calls `visit` with the age of every open connection and its key, under the lock: `visit`
    /// must only copy what it needs.
    pub(crate) fn each_age(&self, mut visit: impl FnMut(Duration, Key)) {
        let now = self.now_ms();
        for (&key, entry) in &self.lock().open {
            visit(Duration::from_millis(now.wrapping_sub(entry.opened_ms).into()), key);
        }
    }

    /// Calls `inspect` with the socket of the connection `key` while it is certainly open (the set
    /// stays locked meanwhile, so `inspect` must be brief: a few system calls); `None` if it has
    /// ended or has no handle.
    pub(crate) fn inspect<T>(
        &self,
        key: Key,
        inspect: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> T,
    ) -> Option<T> {
        use std::os::fd::AsFd;
        let state = self.lock();
        match &state.open.get(&key)?.handle {
            Some(Handle::Socket(stream)) => Some(inspect(stream.as_fd())),
            Some(Handle::Task(_, fd)) => {
                // SAFETY: the task owns this descriptor and closes it only after its guard has
                // released the entry, which takes this lock: while the entry is here and the lock
                // is held, the descriptor is open and is this connection's socket.
                let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(*fd) };
                Some(inspect(fd))
            }
            None => None,
        }
    }

    /// Closes every open connection and refuses new ones.
    pub(crate) fn close_all(&self) {
        let mut state = self.lock();
        state.closing = true;
        // Closed under the lock, so a connection ending meanwhile cannot be missed; no close runs
        // the connection's code on this thread, so it cannot come back for the lock.
        for handle in state.open.values().filter_map(|entry| entry.handle.as_ref()) {
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
) -> Option<Key> {
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
                limit,
                client = %peer,
                held_back,
                "connection limit reached: closing a new connection (held_back: how many more since the last message)"
            );
        }
        return None;
    }
    let set = &context.connections;
    let opened_ms = if set.observed { set.now_ms() } else { 0 };
    loop {
        let key = state.next_key;
        state.next_key = key.wrapping_add(1);
        // Taken only after 2³² connections, by one that has stayed open all along.
        if let Slot::Vacant(slot) = state.open.entry(key) {
            slot.insert(Entry { handle, opened_ms });
            return Some(key);
        }
    }
}

/// Takes back the admission of a connection that could not be served after all (no thread could
/// be started for it): its place is freed, and it counts as refused over the limit.
pub(crate) fn withdraw(context: &Context, key: Key) {
    context.connections.release(key);
    add(&context.stats.tcp_rejected_over_limit, 1);
}

/// An admitted connection for as long as it lives: counted open, logged by its 4-tuple at debug
/// level, its ending counted, and released from the connection set when dropped. `C` is how it
/// holds the server's context: borrowed on a blocking thread, an `Arc` in an async task.
#[derive(Debug)]
pub(crate) struct ConnectionGuard<C: Deref<Target = Context>> {
    context: C,
    /// Bytes received from the client so far, for the histogram of request sizes.
    received: u64,
    /// Its key in the connection set, which also names it in the logs: 4 bytes, where its
    /// client's address would take 32 for each open connection.
    key: Key,
    /// Whether [`Self::finished`] has counted the ending; one dropped without it was closed by
    /// the end of a shutdown.
    counted: bool,
}

impl<C: Deref<Target = Context>> ConnectionGuard<C> {
    /// Takes charge of the connection admitted as `key`, from `peer`, on `socket`, and readies the
    /// socket ([`ready`]). `socket` is asked for its own address only when the line that shows it
    /// is logged: that is a system call.
    pub(crate) fn new(context: C, key: Key, socket: &impl std::os::fd::AsFd, peer: SocketAddr) -> Self {
        add(&context.stats.tcp_accepted, 1);
        add(&context.stats.tcp_open, 1);
        tracing::debug!(
            connection = key,
            server = %display_addr(socket2::SockRef::from(socket).local_addr().ok().and_then(|a| a.as_socket())),
            client = %peer,
            "connection opened"
        );
        ready(socket, key);
        Self { context, received: 0, key, counted: false }
    }

    /// The server's context.
    pub(crate) fn context(&self) -> &Context {
        &self.context
    }

    /// Counts `bytes` just read from the client.
    pub(crate) fn received(&mut self, bytes: usize) {
        add(&self.context.stats.tcp_bytes_in, bytes as u64);
        self.received += bytes as u64;
    }

    /// Records how the connection ended, counting errors and timeouts.
    pub(crate) fn finished(&mut self, outcome: &Result<(), Ending>) {
        self.counted = true;
        let stats = &self.context.stats;
        let counter = match outcome {
            Ok(()) => {
                tracing::debug!(connection = self.key, received = self.received, "connection closed");
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
            tracing::debug!(connection = self.key, received = self.received, reason = %ending, "connection closed");
        }
    }
}

impl<'c> ConnectionGuard<&'c Context> {
    /// The server's context, for as long as the blocking model's thread borrows it.
    pub(crate) fn shared(&self) -> &'c Context {
        self.context
    }
}

impl<C: Deref<Target = Context>> Drop for ConnectionGuard<C> {
    fn drop(&mut self) {
        if !self.counted {
            self.finished(&Err(Ending::Shutdown));
        }
        decrement(&self.context.stats.tcp_open);
        if let Some(lived) = self.context.connections.release(self.key) {
            self.context.histograms.connection_ended(lived, self.received);
        }
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
fn ready(socket: &impl std::os::fd::AsFd, key: Key) {
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
        tracing::warn!(error = %error, held_back, "accept failed; retrying");
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
