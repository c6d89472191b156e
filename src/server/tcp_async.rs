//! TCP, async: a Tokio task per connection on a few threads; upcase's default.
//!
//! An idle connection here costs a task and a socket, not a thread or a buffer: the read buffer
//! and the reply buffer belong to the worker thread ([`WorkerBuffers`]) and are lent to whichever
//! connection is ready. A connection owns memory of its own only while its client is slow to read
//! a reply, and then at most one reply (3× a read chunk).
//!
//! An idle connection costs about 920 bytes of user-space memory in all (measured by
//! `tests/faults.rs`, explained in docs/OPERATIONS.md): the task, Tokio's registration of the
//! socket, and the [`Connection`] itself, kept small on purpose.
//!
//! Connections are counted in [`Context::async_connections`] right after `accept`; beyond the
//! limit, a connection is closed at once, so a flood cannot grow memory without bound.

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, Read};
use std::net::{Shutdown as Direction, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use socket2::SockRef;
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_util::task::TaskTracker;

use super::stats::add;
use super::tcp::{
    accept_failed, closed_unserved, reject_over_limit, set_up_accepted, ConnectionGuard, Ending, Refused,
};
use super::{Context, ServerError, Transport};
use crate::transform::Uppercaser;

/// Hands a bound listener to the Tokio runtime.
pub fn register(listener: std::net::TcpListener) -> Result<TcpListener, ServerError> {
    let addr = listener.local_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let runtime_error =
        |reason| ServerError::Runtime { transport: Transport::Tcp, addr: addr.clone(), reason };
    listener.set_nonblocking(true).map_err(runtime_error)?;
    TcpListener::from_std(listener).map_err(runtime_error)
}

/// Accepts connections until the server stops, spawning a [`Connection`] for each on `tracker`.
pub async fn run(listener: TcpListener, context: Arc<Context>, tracker: TaskTracker) {
    let limit = context.config.max_connections;
    let mut consecutive_errors = 0;
    loop {
        let accepted = tokio::select! {
            biased;
            () = context.shutdown.stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                consecutive_errors += 1;
                let pause = accept_failed(&context, &e, consecutive_errors);
                tokio::select! {
                    () = context.shutdown.stop.cancelled() => break,
                    () = tokio::time::sleep(pause) => continue,
                }
            }
        };
        consecutive_errors = 0;
        let key = match context.async_connections.admit(None, limit) {
            Ok(key) => key,
            Err(Refused::OverLimit) => {
                reject_over_limit(&context, peer, limit);
                continue;
            }
            Err(Refused::Closing) => {
                closed_unserved(&context);
                continue;
            }
        };
        if let Err(e) = set_up_accepted(&stream) {
            // Only a socket that is already broken refuses; its first read will say so.
            tracing::debug!("connection from {peer}: cannot set TCP_NODELAY: {e}");
        }
        let connection = Connection::new(stream, peer, key, Arc::clone(&context));
        let task = tracker.spawn(connection);
        context.async_connections.attach(key, task.abort_handle());
    }
}

/// One client connection, written as a hand-made future rather than an `async fn`.
///
/// Every byte of it is multiplied by the number of open connections, and an `async fn` keeps
/// each wait's whole future (a readiness waiter, a fresh timer, the write state) in its state.
/// Here waiting for the socket stores nothing (the waker lives in Tokio's registration), the one
/// timer is reset in place, and the end of a shutdown aborts the task from
/// [`Context::async_connections`] instead of each connection holding a cancellation future.
///
/// Tokio allocates a task in steps of 128 bytes, so the aim is to keep the task's future, this
/// and Tokio's 8-byte wrapper for the tracker, within 152 bytes (a 256-byte task): hence the
/// boxed timer and the boxed write state.
#[derive(Debug)]
struct Connection {
    /// Counts it, and knows its key in [`Context::async_connections`].
    guard: ConnectionGuard<Arc<Context>>,
    stream: TcpStream,
    uppercaser: Uppercaser,
    phase: Phase,
    /// The deadline of the current wait: the idle timeout while reading, the write timeout while
    /// a reply waits for the client, either cut short by the end of the connection's lifetime.
    timer: Pin<Box<Sleep>>,
    /// Which limit `timer` stands for.
    timer_limit: Limit,
    end_of_life: Option<Instant>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.guard.context().async_connections.release(self.guard.key());
    }
}

/// Where a connection is in its exchange.
#[derive(Debug)]
enum Phase {
    /// Waiting for the client to send.
    Reading,
    /// Part of a reply the socket did not take at once, waiting for the client to read it.
    /// Boxed: it is rare, and its size would otherwise be every idle connection's.
    Writing(Box<Unsent>),
}

/// A reply, or its end, that the socket did not take at once.
#[derive(Debug)]
struct Unsent {
    bytes: Vec<u8>,
    written: usize,
    then: AfterWrite,
}

/// The limit a connection's timer stands for.
#[derive(Debug, Clone, Copy)]
enum Limit {
    Idle,
    ReplyNotRead,
    Lifetime,
}

impl From<Limit> for Ending {
    fn from(limit: Limit) -> Self {
        match limit {
            Limit::Idle => Self::Idle,
            Limit::ReplyNotRead => Self::ReplyNotRead,
            Limit::Lifetime => Self::Lifetime,
        }
    }
}

/// What follows a [`Phase::Writing`].
#[derive(Debug, Clone, Copy)]
enum AfterWrite {
    /// More of the stream: read again.
    Read,
    /// That was the last of the reply: shut down the server's side.
    Close,
}

impl Connection {
    fn new(stream: TcpStream, peer: SocketAddr, key: u64, context: Arc<Context>) -> Self {
        let config = &context.config;
        let end_of_life = config.max_connection_time.map(|limit| Instant::now() + limit);
        let (deadline, timer_limit) = deadline(config.idle_timeout, Limit::Idle, end_of_life);
        Self {
            uppercaser: context.uppercaser(),
            guard: ConnectionGuard::new(context, key, &stream, peer),
            stream,
            phase: Phase::Reading,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            timer_limit,
            end_of_life,
        }
    }

    fn config(&self) -> &super::Config {
        &self.guard.context().config
    }

    /// Sets the timer for the next wait. A later deadline costs Tokio no work until the timer
    /// fires, so resetting it on every read is cheap.
    fn start_timer(&mut self, limit: Option<Duration>, own: Limit) {
        let (at, limit) = deadline(limit, own, self.end_of_life);
        self.timer.as_mut().reset(at);
        self.timer_limit = limit;
    }

    /// Runs the exchange as far as it can without waiting: reads, uppercases, writes back, until
    /// the socket or the client makes it wait (then the timer decides) or the exchange ends.
    fn advance(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Ending>> {
        loop {
            let waiting = match self.phase {
                Phase::Reading => self.stream.poll_read_ready(cx),
                Phase::Writing(_) => self.stream.poll_write_ready(cx),
            };
            match waiting {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => {
                    return match self.timer.as_mut().poll(cx) {
                        Poll::Ready(()) => Poll::Ready(Err(self.timer_limit.into())),
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
            let unsent = match std::mem::replace(&mut self.phase, Phase::Reading) {
                Phase::Reading => {
                    match read_and_answer(&self.stream, &mut self.uppercaser, self.guard.context())? {
                        // Woken without data after all: keep waiting, on the same deadline.
                        Step::Nothing => continue,
                        Step::Again => None,
                        Step::Unsent(bytes) => Some(Unsent { bytes, written: 0, then: AfterWrite::Read }),
                        Step::End(bytes) => Some(Unsent { bytes, written: 0, then: AfterWrite::Close }),
                    }
                }
                Phase::Writing(mut unsent) => {
                    let rest = unsent.bytes.get(unsent.written..).unwrap_or_default();
                    unsent.written += write_some(&self.stream, rest, self.guard.context())?;
                    if unsent.written < unsent.bytes.len() {
                        self.phase = Phase::Writing(unsent);
                        continue;
                    }
                    if let AfterWrite::Close = unsent.then {
                        let stats = &self.guard.context().stats;
                        add(&stats.invalid_bytes, self.uppercaser.invalid_bytes());
                        let closed = SockRef::from(&self.stream).shutdown(Direction::Write);
                        return Poll::Ready(closed.map_err(Ending::from));
                    }
                    None
                }
            };
            match unsent {
                Some(unsent) => {
                    self.phase = Phase::Writing(Box::new(unsent));
                    let write_timeout = self.config().write_timeout;
                    self.start_timer(Some(write_timeout), Limit::ReplyNotRead);
                }
                // Some progress: the client has a fresh idle timeout.
                None => self.start_timer(self.config().idle_timeout, Limit::Idle),
            }
        }
    }
}

/// The nearer of `limit` from now (standing for `own`) and `end_of_life`; `None` for either
/// means no such limit.
fn deadline(limit: Option<Duration>, own: Limit, end_of_life: Option<Instant>) -> (Instant, Limit) {
    match (limit.map(|limit| Instant::now() + limit), end_of_life) {
        (Some(at), Some(end)) if end < at => (end, Limit::Lifetime),
        (None, Some(end)) => (end, Limit::Lifetime),
        (Some(at), _) => (at, own),
        // No limit at all: a deadline decades away costs the same timer as none.
        (None, None) => (Instant::now() + Duration::from_secs(60 * 60 * 24 * 365 * 30), own),
    }
}

/// Without waiting: reads what is there, uppercases it in the worker's buffers and writes as much
/// of the reply as the socket takes. Only what it does not take is copied out.
fn read_and_answer(stream: &TcpStream, uppercaser: &mut Uppercaser, context: &Context) -> io::Result<Step> {
    WORKER_BUFFERS.with_borrow_mut(|buffers| {
        buffers.ensure_input(context.config.read_chunk);
        buffers.output.clear();
        let n = match read_draining(stream, &mut buffers.input) {
            Ok(0) => {
                uppercaser.finish(&mut buffers.output);
                return Ok(Step::End(buffers.output.clone()));
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Nothing),
            Err(e) => return Err(e),
        };
        add(&context.stats.tcp_bytes_in, n as u64);
        let input = buffers.input.get(..n).unwrap_or_default();
        context.inject_fault(input);
        uppercaser.push(input, &mut buffers.output);
        let written = write_some(stream, &buffers.output, context)?;
        let unsent = buffers.output.get(written..).unwrap_or_default();
        Ok(if unsent.is_empty() { Step::Again } else { Step::Unsent(unsent.to_vec()) })
    })
}

/// Reads what is there without waiting, like `try_read`, but without the second read that would
/// only say "nothing more" (`EAGAIN`).
///
/// A read that fills less than `buffer` emptied the socket's queue: that is how a TCP socket
/// reads. So the socket is marked not ready at once, and the next byte to arrive marks it ready
/// again through epoll, as ever; a byte that arrives between the read and the marking is still
/// seen, because Tokio only clears the readiness it had when the read began. This saves one of
/// the three system calls of every request (nginx does the same). The C reference server does
/// it too.
fn read_draining(stream: &TcpStream, buffer: &mut [u8]) -> io::Result<usize> {
    let mut read = None;
    let outcome = stream.try_io(Interest::READABLE, || {
        let n = (&*SockRef::from(stream)).read(buffer)?;
        read = Some(n);
        if n > 0 && n < buffer.len() {
            // Clears the readiness; `read` keeps what was read.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match (read, outcome) {
        (Some(n), _) => Ok(n),
        (None, outcome) => outcome,
    }
}

/// Writes what the socket takes of `bytes` without waiting.
fn write_some(stream: &TcpStream, bytes: &[u8], context: &Context) -> io::Result<usize> {
    let mut written = 0;
    while let Some(rest) = bytes.get(written..).filter(|rest| !rest.is_empty()) {
        match stream.try_write(rest) {
            Ok(k) => written += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    add(&context.stats.tcp_bytes_out, written as u64);
    Ok(written)
}

impl Future for Connection {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.get_mut();
        // A panic here would be a bug; it ends this connection only, and is counted.
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| this.advance(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(outcome)) => outcome,
            Err(_) => Err(Ending::Panic),
        };
        this.guard.finished(&outcome);
        Poll::Ready(())
    }
}

/// What one read step left to do.
#[derive(Debug)]
enum Step {
    /// Nothing to read after all.
    Nothing,
    /// Nothing pending: wait for more input.
    Again,
    /// Part of the reply the socket did not take yet.
    Unsent(Vec<u8>),
    /// The client finished; the last bytes of the reply (an unfinished character, if any).
    End(Vec<u8>),
}

/// A worker thread's read and reply buffers, lent to one connection at a time.
#[derive(Debug, Default)]
struct WorkerBuffers {
    input: Vec<u8>,
    output: Vec<u8>,
}

impl WorkerBuffers {
    fn ensure_input(&mut self, size: usize) {
        if self.input.len() != size.max(1) {
            self.input = vec![0; size.max(1)];
        }
    }
}

thread_local! {
    static WORKER_BUFFERS: RefCell<WorkerBuffers> = RefCell::new(WorkerBuffers::default());
}
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{read_draining, Connection};
    use std::task::{Context as TaskContext, Poll, Waker};
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    /// A short read marks the socket not ready without a second read; the next bytes to arrive
    /// make it ready again. A read that fills the buffer leaves it ready: more may be waiting.
    #[test]
    fn a_short_read_waits_for_more_without_reading_again() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
            let (server, _) = listener.accept().await.unwrap();
            let ready_now = |stream: &tokio::net::TcpStream| {
                matches!(stream.poll_read_ready(&mut TaskContext::from_waker(Waker::noop())), Poll::Ready(_))
            };
            let patience = Duration::from_secs(10);
            let mut buffer = [0; 8];

            client.write_all(b"abc").await.unwrap();
            tokio::time::timeout(patience, server.readable()).await.unwrap().unwrap();
            assert_eq!(read_draining(&server, &mut buffer).unwrap(), 3);
            assert_eq!(&buffer[..3], b"abc");
            assert!(!ready_now(&server), "a short read must leave the socket waiting");

            client.write_all(b"defghijklm").await.unwrap();
            tokio::time::timeout(patience, server.readable()).await.unwrap().unwrap();
            assert_eq!(read_draining(&server, &mut buffer).unwrap(), 8);
            assert_eq!(&buffer, b"defghijk");
            assert!(ready_now(&server), "a full buffer may have more behind it");
            assert_eq!(read_draining(&server, &mut buffer).unwrap(), 2);
            assert_eq!(&buffer[..2], b"lm");
        });
    }

    /// Tokio allocates a task's cell in steps of 128 bytes; about 104 of them are its own header
    /// and trailer, and the tracker wraps the future with 8 more. At most 152 bytes here keeps
    /// each idle connection's task at 256 bytes; one byte more costs 128 bytes per connection.
    #[test]
    fn a_connection_fits_a_256_byte_task() {
        let size = std::mem::size_of::<Connection>() + 8;
        assert!(size <= 152, "connection future is {size} bytes");
    }
}
