//! The async model, upcase's default: a Tokio task per TCP connection and per UDP socket, on a
//! few threads.
//!
//! An idle connection here costs a task and a socket, not a thread or a buffer: the read buffer
//! and the reply buffer belong to the worker thread ([`WorkerBuffers`]) and are lent to whichever
//! connection is ready. A connection owns memory of its own only while its client is slow to read
//! a reply, and then at most one reply (3× a read chunk). In all, an idle connection costs about
//! 960 bytes (measured by the resource tests, explained in docs/OPERATIONS.md): the task, Tokio's
//! registration of the socket, and the [`Connection`] itself, kept small on purpose.
//!
//! Connections are admitted under the server's one connection limit right after `accept`; beyond
//! it, a connection is closed at once, so a flood cannot grow memory without bound.
//!
//! The UDP task answers every datagram already queued before it waits again: a waiting receive
//! costs a registration with the runtime (and, with the stop signal beside it, two more), an
//! immediate one only the system call. It hands the thread back to the runtime every
//! [`UDP_BATCH`] datagrams, so a flood cannot starve the TCP connections that share its worker.

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use socket2::SockRef;
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::time::{Instant, Sleep};
use tokio_util::task::TaskTracker;

use super::connection::{accept_failed, admit, ConnectionGuard, Ending, Handle, Key};
use super::datagram::{answer, failed, sent, RECEIVE_ERROR_PAUSE};
use super::{stream, Config, Context, ServerError, Sockets};
use crate::net::{Transport, RECEIVE_BUFFER};
use crate::transform::Uppercaser;

/// Datagrams answered in a row before the UDP task yields to the runtime (and checks for a stop).
const UDP_BATCH: usize = 64;

/// Hands every socket to the runtime and spawns its task on `tracker`.
pub(crate) fn start(
    sockets: Sockets,
    context: &Arc<Context>,
    tracker: &TaskTracker,
) -> Result<(), ServerError> {
    for listener in sockets.tcp {
        let listener = register(listener, Transport::Tcp, TcpListener::from_std)?;
        tracker.spawn(accept_connections(listener, Arc::clone(context), tracker.clone()));
    }
    for socket in sockets.udp {
        let socket = register(socket, Transport::Udp, UdpSocket::from_std)?;
        tracker.spawn(answer_datagrams(socket, Arc::clone(context)));
    }
    Ok(())
}

/// Hands a bound socket to the Tokio runtime.
fn register<S, T>(socket: S, transport: Transport, from_std: fn(S) -> io::Result<T>) -> Result<T, ServerError>
where
    S: std::os::fd::AsFd,
{
    let addr = SockRef::from(&socket)
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map_or_else(|| "?".to_owned(), |a| a.to_string());
    let runtime_error = |reason| ServerError::Runtime { transport, addr: addr.clone(), reason };
    SockRef::from(&socket).set_nonblocking(true).map_err(runtime_error)?;
    from_std(socket).map_err(runtime_error)
}

/// Accepts connections until the server stops, spawning a [`Connection`] for each on `tracker`.
async fn accept_connections(listener: TcpListener, context: Arc<Context>, tracker: TaskTracker) {
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
        let Some(key) = admit(&context, None, peer, limit) else { continue };
        let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
        let connection = Connection::new(stream, peer, key, Arc::clone(&context));
        let task = tracker.spawn(connection);
        context.connections.attach(key, Handle::Task(task.abort_handle(), fd));
    }
}

/// Answers datagrams on `socket` until the server stops.
async fn answer_datagrams(socket: UdpSocket, context: Arc<Context>) {
    let mut request = vec![0; RECEIVE_BUFFER];
    let mut reply = Vec::new();
    let local_port = socket.local_addr().map_or(0, |a| a.port());
    let mut answered_in_a_row = 0;
    while !context.shutdown.stop.is_cancelled() {
        match socket.try_recv_from(&mut request) {
            Ok((n, peer)) => {
                if answer(request.get(..n).unwrap_or_default(), peer, local_port, &context, &mut reply) {
                    let result = match socket.try_send_to(&reply, peer) {
                        // The send buffer is full: wait for room rather than drop the reply.
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket.send_to(&reply, peer).await,
                        result => result,
                    };
                    sent(&context, peer, result);
                }
                answered_in_a_row += 1;
                if answered_in_a_row == UDP_BATCH {
                    answered_in_a_row = 0;
                    tokio::task::yield_now().await;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                answered_in_a_row = 0;
                let ready = tokio::select! {
                    biased;
                    () = context.shutdown.stop.cancelled() => break,
                    ready = socket.readable() => ready,
                };
                if let Err(e) = ready {
                    failed(&context, format_args!("cannot wait for datagrams: {e}"));
                    tokio::time::sleep(RECEIVE_ERROR_PAUSE).await;
                }
            }
            Err(e) => {
                failed(&context, format_args!("cannot receive: {e}"));
                // An error that repeats at once (a broken socket) must not spin a core.
                tokio::time::sleep(RECEIVE_ERROR_PAUSE).await;
            }
        }
    }
}

/// One client connection, written as a hand-made future rather than an `async fn`.
///
/// Every byte of it is multiplied by the number of open connections, and an `async fn` keeps
/// each wait's whole future (a readiness waiter, a fresh timer, the write state) in its state.
/// Here waiting for the socket stores nothing (the waker lives in Tokio's registration), the one
/// timer is reset in place, and the end of a shutdown aborts the task from
/// the server's connection set instead of each connection holding a cancellation future.
///
/// Tokio allocates a task in steps of 128 bytes, so the aim is to keep the task's future, this
/// and Tokio's 8-byte wrapper for the tracker, within 152 bytes (a 256-byte task): hence the
/// boxed timer and the boxed write state.
///
/// `guard` comes before `stream`, and fields drop in order: a connection leaves the set before
/// its socket closes, which is what lets the status page ask the kernel about a socket in the set.
#[derive(Debug)]
struct Connection {
    /// Counts it, and releases its place in the connection set when it ends.
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
    fn new(stream: TcpStream, peer: SocketAddr, key: Key, context: Arc<Context>) -> Self {
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

    fn config(&self) -> &Config {
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
    fn advance(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), Ending>> {
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
                    match read_and_answer(&self.stream, &mut self.uppercaser, &mut self.guard)? {
                        // Woken without data after all: keep waiting, on the same deadline.
                        Step::NotReady => continue,
                        Step::Answered => None,
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
                        return Poll::Ready(stream::half_close(&self.stream).map_err(Ending::from));
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
fn read_and_answer(
    socket: &TcpStream,
    uppercaser: &mut Uppercaser,
    connection: &mut ConnectionGuard<Arc<Context>>,
) -> io::Result<Step> {
    WORKER_BUFFERS.with_borrow_mut(|buffers| {
        let context = connection.context();
        buffers.ensure_input(context.config.read_chunk);
        let n = match read_draining(socket, &mut buffers.input) {
            Ok(0) => {
                stream::finish(uppercaser, &mut buffers.reply, context);
                return Ok(Step::End(buffers.reply.clone()));
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::NotReady),
            Err(e) => return Err(e),
        };
        let chunk = buffers.input.get(..n).unwrap_or_default();
        stream::answer_chunk(chunk, uppercaser, &mut buffers.reply, connection);
        let written = write_some(socket, &buffers.reply, connection.context())?;
        let unsent = buffers.reply.get(written..).unwrap_or_default();
        Ok(if unsent.is_empty() { Step::Answered } else { Step::Unsent(unsent.to_vec()) })
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
fn write_some(socket: &TcpStream, bytes: &[u8], context: &Context) -> io::Result<usize> {
    let mut written = 0;
    while let Some(rest) = bytes.get(written..).filter(|rest| !rest.is_empty()) {
        match socket.try_write(rest) {
            Ok(k) => written += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    stream::sent(context, written);
    Ok(written)
}

impl Future for Connection {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
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
    /// Woken, but nothing to read after all: keep waiting on the same deadline.
    NotReady,
    /// The chunk read was answered in full: wait for more input, with a fresh idle timeout.
    Answered,
    /// Part of the reply the socket did not take yet.
    Unsent(Vec<u8>),
    /// The client finished; the last bytes of the reply (an unfinished character, if any).
    End(Vec<u8>),
}

/// A worker thread's read and reply buffers, lent to one connection at a time.
#[derive(Debug, Default)]
struct WorkerBuffers {
    input: Vec<u8>,
    reply: Vec<u8>,
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
mod tests;
