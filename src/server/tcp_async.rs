//! TCP, async: a Tokio task per connection on a few threads; upcase's default.
//!
//! An idle connection here costs a task and a socket, not a thread or a buffer: the read buffer
//! and the reply buffer belong to the worker thread ([`WorkerBuffers`]) and are lent to whichever
//! connection is ready. A connection owns memory of its own only while its client is slow to read
//! a reply, and then at most one reply (3× a read chunk).
//!
//! Connections are limited by a semaphore whose permit is taken right after `accept`; without a
//! permit, the connection is closed at once, so a flood cannot grow memory without bound.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use super::stats::add;
use super::tcp::{accept_failed, reject_over_limit, ConnectionGuard, Ending};
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

/// Accepts connections until the server stops, spawning a [`Handler`] for each on `tracker`.
pub async fn run(listener: TcpListener, context: Arc<Context>, tracker: TaskTracker) {
    let limit = context.config.max_connections;
    let permits = Arc::new(Semaphore::new(limit));
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
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            reject_over_limit(&context, peer, limit);
            continue;
        };
        let handler = Handler { stream, context: Arc::clone(&context) };
        tracker.spawn(async move {
            handler.run(peer).await;
            drop(permit);
        });
    }
}

/// One client connection: its socket and its place in the stream.
#[derive(Debug)]
struct Handler {
    stream: TcpStream,
    context: Arc<Context>,
}

impl Handler {
    async fn run(self, peer: SocketAddr) {
        let context = Arc::clone(&self.context);
        let guard = ConnectionGuard::new(&context, self.stream.local_addr().ok(), peer);
        // A panic here would be a bug; it ends this connection only, and is counted.
        let exchange = AssertUnwindSafe(self.exchange()).catch_unwind();
        let outcome = tokio::select! {
            biased;
            () = context.shutdown.force.cancelled() => Err(Ending::Shutdown),
            outcome = exchange => outcome.unwrap_or(Err(Ending::Panic)),
        };
        guard.finished(&outcome);
    }

    /// Reads, uppercases and writes back until the client shuts down its side.
    ///
    /// Every wait has one timer: the nearer of its own limit (idle or write timeout) and the end
    /// of the connection's lifetime. One timer rather than two, because every byte of this
    /// future is multiplied by the number of open connections.
    async fn exchange(mut self) -> Result<(), Ending> {
        let config = &self.context.config;
        let (idle_timeout, write_timeout) = (config.idle_timeout, config.write_timeout);
        let end_of_life = config.max_connection_time.map(|limit| Instant::now() + limit);
        self.stream.set_nodelay(true)?;
        let mut uppercaser = self.context.uppercaser();
        loop {
            within(idle_timeout, Ending::Idle, end_of_life, self.stream.readable()).await??;
            match self.read_and_answer(&mut uppercaser)? {
                Step::Again => {}
                // Boxed: a reply the client is slow to take is rare, and its state must not set the
                // size of every idle connection's future.
                Step::Unsent(rest) => Box::pin(self.write(&rest, write_timeout, end_of_life)).await?,
                Step::End(tail) => {
                    Box::pin(self.write(&tail, write_timeout, end_of_life)).await?;
                    add(&self.context.stats.invalid_bytes, uppercaser.invalid_bytes());
                    self.stream.shutdown().await?;
                    return Ok(());
                }
            }
        }
    }

    /// Without waiting: reads what is there, uppercases it in the worker's buffers and writes as
    /// much of the reply as the socket takes. Only what it does not take is copied out.
    fn read_and_answer(&self, uppercaser: &mut Uppercaser) -> io::Result<Step> {
        let stats = &self.context.stats;
        WORKER_BUFFERS.with_borrow_mut(|buffers| {
            buffers.ensure_input(self.context.config.read_chunk);
            let n = match self.stream.try_read(&mut buffers.input) {
                Ok(0) => {
                    buffers.output.clear();
                    uppercaser.finish(&mut buffers.output);
                    return Ok(Step::End(buffers.output.clone()));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Again),
                Err(e) => return Err(e),
            };
            add(&stats.tcp_bytes_in, n as u64);
            let input = buffers.input.get(..n).unwrap_or_default();
            self.context.inject_fault(input);
            buffers.output.clear();
            uppercaser.push(input, &mut buffers.output);
            let mut written = 0;
            while let Some(rest) = buffers.output.get(written..).filter(|rest| !rest.is_empty()) {
                match self.stream.try_write(rest) {
                    Ok(k) => written += k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            add(&stats.tcp_bytes_out, written as u64);
            let unsent = buffers.output.get(written..).unwrap_or_default();
            Ok(if unsent.is_empty() { Step::Again } else { Step::Unsent(unsent.to_vec()) })
        })
    }

    /// Writes all of `bytes`, waiting for the client to read, up to the write timeout.
    async fn write(
        &mut self,
        bytes: &[u8],
        timeout: Duration,
        end_of_life: Option<Instant>,
    ) -> Result<(), Ending> {
        within(Some(timeout), Ending::ReplyNotRead, end_of_life, self.stream.write_all(bytes)).await??;
        add(&self.context.stats.tcp_bytes_out, bytes.len() as u64);
        Ok(())
    }
}

/// What one read step left to do.
#[derive(Debug)]
enum Step {
    /// Nothing pending: wait for more input.
    Again,
    /// Part of the reply the socket did not take yet.
    Unsent(Vec<u8>),
    /// The client finished; the last bytes of the reply (an unfinished character, if any).
    End(Vec<u8>),
}

/// `future`, given until the nearer of `limit` from now (failing with `ending`) and
/// `end_of_life` (failing with [`Ending::Lifetime`]); `None` for either means no such limit.
///
/// A plain function returning a mapped `Timeout`, not an `async fn`: that would keep `future`
/// twice in the connection's state (once as its argument, once inside the timeout).
fn within<F: Future>(
    limit: Option<Duration>,
    ending: Ending,
    end_of_life: Option<Instant>,
    future: F,
) -> impl Future<Output = Result<F::Output, Ending>> {
    let own = limit.map(|limit| Instant::now() + limit);
    let (deadline, ending) = match (own, end_of_life) {
        (Some(own), Some(end)) if end < own => (end, Ending::Lifetime),
        (None, Some(end)) => (end, Ending::Lifetime),
        (Some(own), _) => (own, ending),
        // No limit at all: a deadline decades away costs the same timer as none.
        (None, None) => (Instant::now() + Duration::from_secs(60 * 60 * 24 * 365 * 30), ending),
    };
    tokio::time::timeout_at(deadline, future).map(move |outcome| outcome.map_err(|_| ending))
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
