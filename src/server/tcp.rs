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
use std::panic::AssertUnwindSafe;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::stats::{add, decrement};
use super::Context;

/// How long the blocking accept loops wait in `accept` before checking for a stop.
pub(crate) const STOP_POLL: Duration = Duration::from_millis(100);

/// Counts a connection open for as long as it lives, and logs its 4-tuple at debug level.
///
/// The lecture's point made visible: each accepted connection is its own socket, named by
/// (server IP, server port, client IP, client port).
#[derive(Debug)]
pub(crate) struct ConnectionGuard<'a> {
    context: &'a Context,
    peer: SocketAddr,
}

impl<'a> ConnectionGuard<'a> {
    pub(crate) fn new(context: &'a Context, local: Option<SocketAddr>, peer: SocketAddr) -> Self {
        add(&context.stats.tcp_accepted, 1);
        add(&context.stats.tcp_open, 1);
        tracing::debug!(server = %display_addr(local), client = %peer, "connection opened");
        Self { context, peer }
    }

    /// Records how the connection ended, counting errors and timeouts.
    pub(crate) fn finished(&self, outcome: &Result<(), Ending>) {
        let stats = &self.context.stats;
        let counter = match outcome {
            Ok(()) => {
                tracing::debug!(client = %self.peer, "connection closed");
                return;
            }
            Err(Ending::Idle) => &stats.tcp_idle_timeouts,
            Err(Ending::ReplyNotRead) => &stats.tcp_write_timeouts,
            Err(Ending::Shutdown) => &stats.tcp_closed_at_shutdown,
            Err(Ending::Lifetime) => &stats.tcp_lifetime_exceeded,
            Err(Ending::Panic) => {
                tracing::error!(client = %self.peer, "bug: panic while serving a connection; the server goes on");
                &stats.panics
            }
            Err(Ending::Io(_)) => &stats.tcp_errors,
        };
        add(counter, 1);
        if let Err(ending) = outcome {
            tracing::debug!(client = %self.peer, "connection closed: {ending}");
        }
    }
}

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
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
    let guard = ConnectionGuard::new(context, stream.local_addr().ok(), peer);
    let outcome = match context.blocking_connections.register(&stream) {
        Some(_registration) => {
            let exchange = AssertUnwindSafe(|| BlockingExchange::new(stream, context).run(buffers));
            std::panic::catch_unwind(exchange).unwrap_or(Err(Ending::Panic))
        }
        None => Err(Ending::Shutdown),
    };
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

impl<'a> BlockingExchange<'a> {
    fn new(stream: TcpStream, context: &'a Context) -> Self {
        let deadline = context.config.max_connection_time.map(|limit| Instant::now() + limit);
        Self { stream, context, deadline }
    }

    fn run(mut self, buffers: &mut Buffers) -> Result<(), Ending> {
        let config = &self.context.config;
        self.stream.set_nodelay(true)?;
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

/// The open connections of the blocking models, so the end of a shutdown can close them.
///
/// A blocked `read` or `write` on another thread returns as soon as its socket is shut down,
/// which is the only way to interrupt it without polling.
#[derive(Debug, Default)]
pub(crate) struct ConnectionSet {
    state: Mutex<SetState>,
    emptied: Condvar,
}

#[derive(Debug, Default)]
struct SetState {
    next_id: u64,
    /// A handle on each open connection's socket; `None` where the handle could not be made
    /// (out of file descriptors), and that connection ends by its own timeouts instead.
    open: HashMap<u64, Option<TcpStream>>,
    closing: bool,
}

/// Removes its connection from the set when the connection ends.
#[derive(Debug)]
pub(crate) struct Registration<'a> {
    set: &'a ConnectionSet,
    id: u64,
}

impl ConnectionSet {
    /// Adds a connection; `None` if the server is already closing everything.
    pub(crate) fn register(&self, stream: &TcpStream) -> Option<Registration<'_>> {
        let handle = stream.try_clone().ok();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.closing {
            return None;
        }
        let id = state.next_id;
        state.next_id += 1;
        state.open.insert(id, handle);
        Some(Registration { set: self, id })
    }

    /// Shuts down every open connection and refuses new ones.
    pub(crate) fn close_all(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.closing = true;
        for stream in state.open.values().flatten() {
            // Fails only if the client already closed, which is what we want anyway.
            let _ = stream.shutdown(Direction::Both);
        }
    }

    /// Blocks until no connection is open.
    pub(crate) fn wait_until_empty(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while !state.open.is_empty() {
            state = self.emptied.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut state = self.set.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.open.remove(&self.id);
        if state.open.is_empty() {
            self.set.emptied.notify_all();
        }
    }
}
