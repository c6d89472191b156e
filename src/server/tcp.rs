//! What every TCP model shares: the blocking connection handler, the per-connection bookkeeping,
//! the accept-error policy and the set of open connections closed at the end of a shutdown.
//!
//! The protocol is the same in every model: read what arrives, write back its uppercase, and when
//! the client shuts down its side, finish and close. Reading again only after the reply is
//! written is what gives backpressure: a client that does not read stops the server reading from
//! it, so one connection never holds more than one read chunk and its uppercase in memory.
//!
//! Nothing here may end an accept loop: an error belongs to one connection or one `accept` call.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown as Direction, SocketAddr, TcpStream};
use std::ops::Deref;
use std::panic::AssertUnwindSafe;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::stats::{add, decrement};
use super::Context;

/// How long the blocking accept loops wait in `accept` before checking for a stop.
pub(crate) const STOP_POLL: Duration = Duration::from_millis(100);

/// Counts a connection open for as long as it lives, counts how it ended, and logs its 4-tuple
/// at debug level. `C` is how it holds the server's context: borrowed on a blocking thread, an
/// `Arc` in an async task.
///
/// The lecture's point made visible: each accepted connection is its own socket, named by
/// (server IP, server port, client IP, client port).
#[derive(Debug)]
pub(crate) struct ConnectionGuard<C: Deref<Target = Context>> {
    context: C,
    /// Its key in its [`ConnectionSet`], which also names it in the logs: 8 bytes, where its
    /// client's address would take 32 for each open connection.
    key: u64,
    /// Whether [`Self::finished`] has counted the ending; one dropped without it was closed by
    /// the end of a shutdown.
    counted: bool,
}

impl<C: Deref<Target = Context>> ConnectionGuard<C> {
    /// Counts a connection from `peer` just accepted on `socket`. `socket` is asked for its own
    /// address only when the line that shows it is logged: that is a system call.
    pub(crate) fn new(context: C, key: u64, socket: &impl std::os::fd::AsFd, peer: SocketAddr) -> Self {
        add(&context.stats.tcp_accepted, 1);
        add(&context.stats.tcp_open, 1);
        tracing::debug!(
            connection = key,
            server = %display_addr(socket2::SockRef::from(socket).local_addr().ok().and_then(|a| a.as_socket())),
            client = %peer,
            "connection opened"
        );
        Self { context, key, counted: false }
    }

    /// Its key in its [`ConnectionSet`].
    pub(crate) fn key(&self) -> u64 {
        self.key
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
    }
}

fn display_addr(addr: Option<SocketAddr>) -> String {
    addr.map_or_else(|| "?".to_owned(), |a| a.to_string())
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

/// Counts a connection accepted after the grace period ended; dropping its stream closes it.
pub(crate) fn closed_unserved(context: &Context) {
    add(&context.stats.tcp_accepted, 1);
    add(&context.stats.tcp_closed_at_shutdown, 1);
}

/// Closes a connection that arrived over the limit, and says so at most once a second.
pub(crate) fn reject_over_limit(context: &Context, peer: SocketAddr, limit: usize) {
    add(&context.stats.tcp_rejected_over_limit, 1);
    if let Some(held_back) = context.over_limit_log.allow() {
        tracing::warn!(
            "connection limit of {limit} reached: closing new connection from {peer} \
             ({held_back} more closed since the last message)"
        );
    }
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

/// Per-thread buffers of the blocking models, reused from one connection to the next.
#[derive(Debug)]
pub(crate) struct Buffers {
    input: Vec<u8>,
    output: Vec<u8>,
}

impl Buffers {
    pub(crate) fn new(read_chunk: usize) -> Self {
        Self { input: vec![0; read_chunk.max(1)], output: Vec::new() }
    }
}

/// Serves one TCP connection to the end on the calling thread (iterative and threaded models).
pub(crate) fn serve_blocking(stream: TcpStream, peer: SocketAddr, context: &Context, buffers: &mut Buffers) {
    let set = &context.blocking_connections;
    let Ok(key) = set.admit(stream.try_clone().ok(), usize::MAX) else {
        return closed_unserved(context);
    };
    let _registration = Registration { set, key };
    let mut guard = ConnectionGuard::new(context, key, &stream, peer);
    let exchange = AssertUnwindSafe(|| BlockingExchange::new(stream, context).run(buffers));
    let outcome = std::panic::catch_unwind(exchange).unwrap_or(Err(Ending::Panic));
    guard.finished(&outcome);
}

/// One connection served on the calling thread, with its timeouts.
///
/// Socket timeouts (SO_RCVTIMEO, SO_SNDTIMEO) are set before each call to the lower of the
/// idle or write timeout and what is left of the connection's maximum lifetime, so a blocked
/// call can tell which limit it hit.
struct BlockingExchange<'a> {
    stream: TcpStream,
    context: &'a Context,
    deadline: Option<Instant>,
}

/// Readies an accepted connection, the same way in every model: each reply goes out as soon as
/// it is written, instead of waiting (Nagle's algorithm) until the client has acknowledged the
/// one before, which can hold a small reply back for the client's delayed ACK, up to 40 ms.
pub(crate) fn set_up_accepted(stream: &impl std::os::fd::AsFd) -> io::Result<()> {
    socket2::SockRef::from(stream).set_tcp_nodelay(true)
}

impl<'a> BlockingExchange<'a> {
    fn new(stream: TcpStream, context: &'a Context) -> Self {
        let deadline = context.config.max_connection_time.map(|limit| Instant::now() + limit);
        Self { stream, context, deadline }
    }

    fn run(mut self, buffers: &mut Buffers) -> Result<(), Ending> {
        let config = &self.context.config;
        set_up_accepted(&self.stream)?;
        let mut uppercaser = self.context.uppercaser();
        loop {
            let timeout = self.limit(config.idle_timeout)?;
            self.stream.set_read_timeout(timeout)?;
            let n = match self.stream.read(&mut buffers.input) {
                // `close_all` shuts the socket down, which a blocked read sees as end of stream.
                Ok(0) if self.context.shutdown.force.is_cancelled() => return Err(Ending::Shutdown),
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => return Err(self.timed_out(Ending::Idle)),
                Err(e) => return Err(self.closed_or(e)),
            };
            add(&self.context.stats.tcp_bytes_in, n as u64);
            let input = buffers.input.get(..n).unwrap_or_default();
            self.context.inject_fault(input);
            buffers.output.clear();
            uppercaser.push(input, &mut buffers.output);
            self.write(&buffers.output)?;
        }
        buffers.output.clear();
        uppercaser.finish(&mut buffers.output);
        self.write(&buffers.output)?;
        add(&self.context.stats.invalid_bytes, uppercaser.invalid_bytes());
        Ok(self.stream.shutdown(Direction::Write)?)
    }

    /// Writes all of `bytes` within the write timeout. SO_SNDTIMEO bounds each `send` call, not
    /// the reply, so it is set again before each call to what is left of one deadline; a client
    /// that takes a little at a time cannot stretch the timeout.
    fn write(&mut self, bytes: &[u8]) -> Result<(), Ending> {
        let deadline = Instant::now() + self.context.config.write_timeout;
        let mut rest = bytes;
        while !rest.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timed_out(Ending::ReplyNotRead));
            }
            let timeout = self.limit(Some(left))?;
            self.stream.set_write_timeout(timeout)?;
            match self.stream.write(rest) {
                Ok(0) => return Err(Ending::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    add(&self.context.stats.tcp_bytes_out, n as u64);
                    rest = rest.get(n..).unwrap_or_default();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => return Err(self.timed_out(Ending::ReplyNotRead)),
                Err(e) => return Err(self.closed_or(e)),
            }
        }
        Ok(())
    }

    /// The lower of `own` and the time left to live; fails once no time is left.
    fn limit(&self, own: Option<Duration>) -> Result<Option<Duration>, Ending> {
        let Some(deadline) = self.deadline else { return Ok(own) };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Ending::Lifetime);
        }
        Ok(Some(own.map_or(left, |own| own.min(left))))
    }

    /// Which limit a timed-out call hit: the lifetime if it is over, else `own`.
    fn timed_out(&self, own: Ending) -> Ending {
        match self.deadline {
            Some(deadline) if Instant::now() >= deadline => Ending::Lifetime,
            _ => own,
        }
    }

    /// An I/O error, unless it is the server itself closing the socket at the end of a shutdown.
    fn closed_or(&self, error: io::Error) -> Ending {
        if self.context.shutdown.force.is_cancelled() {
            Ending::Shutdown
        } else {
            Ending::Io(error)
        }
    }
}

/// SO_RCVTIMEO and SO_SNDTIMEO report expiry as EAGAIN.
fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// How the end of a shutdown closes one open connection.
pub(crate) trait Close {
    /// Ends the connection now, wherever it is waiting.
    fn close(&self);
}

/// Blocking models: a handle on the connection's socket. A blocked `read` or `write` on another
/// thread returns as soon as its socket is shut down, the only way to interrupt it without polling.
impl Close for TcpStream {
    fn close(&self) {
        // Fails only if the client already closed, which is what we want anyway.
        let _ = self.shutdown(Direction::Both);
    }
}

/// The async model: the connection's task, which aborting drops (closing its socket) at its next
/// wake-up or at once if it is waiting.
impl Close for tokio::task::AbortHandle {
    fn close(&self) {
        self.abort();
    }
}

/// Why a [`ConnectionSet`] did not take a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// It already holds the limit.
    OverLimit,
    /// The server is closing everything.
    Closing,
}

/// The open connections of one kind, so the end of a shutdown can close them, and (in the async
/// model) so their number can be limited.
///
/// Each entry costs a key and a handle (16 bytes for a task handle): far less than the
/// cancellation future each connection would otherwise have to hold and poll.
#[derive(Debug)]
pub(crate) struct ConnectionSet<H> {
    state: Mutex<SetState<H>>,
    emptied: Condvar,
}

impl<H> Default for ConnectionSet<H> {
    fn default() -> Self {
        Self {
            state: Mutex::new(SetState { next_key: 0, open: HashMap::new(), closing: false }),
            emptied: Condvar::new(),
        }
    }
}

#[derive(Debug)]
struct SetState<H> {
    next_key: u64,
    /// A handle on each open connection; `None` until it is attached, or where it could not be
    /// made (out of file descriptors), and that connection ends by its own timeouts instead.
    open: HashMap<u64, Option<H>>,
    closing: bool,
}

impl<H: Close> ConnectionSet<H> {
    fn lock(&self) -> std::sync::MutexGuard<'_, SetState<H>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a connection unless `limit` are already open or the server is closing everything;
    /// returns its key, for [`Self::attach`] and [`Self::release`].
    pub(crate) fn admit(&self, handle: Option<H>, limit: usize) -> Result<u64, Refused> {
        let mut state = self.lock();
        if state.closing {
            return Err(Refused::Closing);
        }
        if state.open.len() >= limit {
            return Err(Refused::OverLimit);
        }
        let key = state.next_key;
        state.next_key += 1;
        state.open.insert(key, handle);
        Ok(key)
    }

    /// Gives an admitted connection its handle, once it has one. If the connection already ended
    /// the handle is not kept; if everything is being closed, it is closed at once.
    pub(crate) fn attach(&self, key: u64, handle: H) {
        let mut state = self.lock();
        if state.closing {
            drop(state);
            handle.close();
        } else if let Some(slot) = state.open.get_mut(&key) {
            *slot = Some(handle);
        }
    }

    /// Removes a connection that has ended.
    pub(crate) fn release(&self, key: u64) {
        let mut state = self.lock();
        state.open.remove(&key);
        if state.open.is_empty() {
            self.emptied.notify_all();
        }
    }

    /// Closes every open connection and refuses new ones.
    pub(crate) fn close_all(&self) {
        let mut state = self.lock();
        state.closing = true;
        // Closed under the lock, so a connection ending meanwhile cannot be missed; neither kind
        // of close runs the connection's code on this thread, so it cannot come back for the lock.
        for handle in state.open.values().flatten() {
            handle.close();
        }
    }

    /// Blocks until no connection is open.
    pub(crate) fn wait_until_empty(&self) {
        let mut state = self.lock();
        while !state.open.is_empty() {
            state = self.emptied.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Removes its blocking connection from the set when the connection ends.
#[derive(Debug)]
struct Registration<'a> {
    set: &'a ConnectionSet<TcpStream>,
    key: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.set.release(self.key);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::set_up_accepted;

    /// Both kinds of accepted socket, the blocking models' and the async model's, come out of
    /// `set_up_accepted` with Nagle's algorithm off.
    #[test]
    fn accepted_connections_send_replies_at_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (blocking, _) = listener.accept().unwrap();
        assert!(!blocking.nodelay().unwrap(), "the kernel's default changed; this test proves nothing");
        set_up_accepted(&blocking).unwrap();
        assert!(blocking.nodelay().unwrap());

        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
            let (asynchronous, _) = listener.accept().await.unwrap();
            set_up_accepted(&asynchronous).unwrap();
            assert!(asynchronous.nodelay().unwrap());
        });
    }
}
