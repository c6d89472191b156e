//! The async model, upcase's default: one event loop per core, each owning its sockets and its
//! connections (`--model async`, `--workers N`).
//!
//! Each worker is an OS thread with its own epoll instance (through `mio`), its own UDP socket and
//! TCP listener on every address (an SO_REUSEPORT group, so the kernel spreads clients over the
//! workers: see `bind::join`), and its own connections in a slab. A worker's UDP sockets are
//! served by a thread of their own that sleeps in `recvmmsg` (`datagrams`), except with faults. Nothing moves between threads
//! and no worker ever wakes another: a request is read, uppercased and answered by the thread the
//! kernel woke for it. Workers are woken from outside only to stop.
//!
//! Why not Tokio here: its tasks and socket registrations cost allocations and atomic reference
//! counts per connection, and its work-stealing scheduler wakes threads across cores, which
//! measured as the most expensive UDP server upcase shipped (docs/BENCHMARKS.md). A connection
//! here is a slab entry (`exchange::Exchange`, about 150 bytes, reused) and its socket: no
//! allocation, no timer, no system call beyond its own I/O and one `epoll_ctl`. (Behind a proxy,
//! one small allocation more while its PROXY header is read.)
//!
//! One turn of a worker: wait for events (or the next deadline check), then accept new
//! connections, answer queued datagrams and advance each ready connection, each within a budget
//! so that none starves the others; every so often, close connections past their deadline.
//! A panic while serving one connection ends that connection only.
//!
//! Faults on purpose ([`super::Config::faults`]): a UDP reply held back waits in its socket's
//! queue, and a TCP connection sending a reply late or in segments asks for a turn at an instant
//! (`Progress::Later`); both come back through the worker's `later` list, never by blocking it.
//! Without faults, a reply costs one `Option` check more.

mod datagrams;
mod exchange;
#[cfg(test)]
mod tests;

use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use tokio_util::task::TaskTracker;

use self::datagrams::{Datagrams, Turn};
use self::exchange::{deadline_tick, Buffers, Exchange, Progress};
use super::bind::join;
use super::connection::{accept_failed, admit, ended, opened, Ending};
use super::connections::Socket;
use super::datagram::RECEIVE_ERROR_PAUSE;
use super::faulty_udp::FaultyReplies;
use super::proxy::log_rejected;
use super::{Context, ServerError, Sockets};
use crate::net::Transport;

/// Connections accepted, or datagrams answered, on one socket in one turn before the worker
/// moves on: a flood on one socket cannot starve the rest.
const BATCH: usize = 64;
/// The waker's token; listeners and UDP sockets count up from 0, connections from [`CONNECTIONS`].
const WAKE: Token = Token(usize::MAX);
const CONNECTIONS: usize = 1 << 20;
/// Turns of [`BATCH`] a stopping worker gives each socket to take what is already queued on it.
const STOP_DRAIN_TURNS: usize = 64;

/// Starts [`super::Config::workers`] workers on `sockets`, each a thread tracked by `tracker`.
/// Every worker's sockets are bound before this returns, so clients are spread from the first.
pub(crate) fn start(
    sockets: Sockets,
    context: &Arc<Context>,
    tracker: &TaskTracker,
) -> Result<(), ServerError> {
    let failed = |index| move |reason| ServerError::Worker { index, reason };
    // Workers after the first join the port groups the given sockets founded.
    let mut own_sockets = Vec::new();
    for index in 1..context.config.workers.max(1) {
        let tcp = sockets.tcp.iter().map(|l| join(l, Transport::Tcp, sockets.backlog));
        let udp = sockets.udp.iter().map(|s| join(s, Transport::Udp, sockets.backlog));
        own_sockets.push((
            tcp.collect::<io::Result<_>>().map_err(failed(index))?,
            udp.collect::<io::Result<_>>().map_err(failed(index))?,
        ));
    }
    let founders = (
        sockets.tcp.into_iter().map(Into::into).collect(),
        sockets.udp.into_iter().map(Into::into).collect(),
    );
    let mut wakers = Vec::new();
    let mut workers = Vec::new();
    // Without faults, each UDP socket gets a thread of its own (see `datagrams`); with them, the
    // worker's loop serves it, for the timed turns that held replies need.
    let own_udp_threads = context.config.faults.is_none();
    for (index, (tcp, udp)) in std::iter::once(founders).chain(own_sockets).enumerate() {
        let udp = if own_udp_threads {
            for socket in udp {
                datagrams::serve_on_own_thread(index, socket, context, tracker).map_err(failed(index))?;
            }
            Vec::new()
        } else {
            udp
        };
        let (worker, waker) = Worker::new(index, Arc::clone(context), tcp, udp).map_err(failed(index))?;
        workers.push(worker);
        wakers.push(waker);
    }
    context.set_wakers(wakers);
    for worker in workers {
        let token = tracker.token();
        let index = worker.index;
        let spawned = std::thread::Builder::new().name(format!("upcase-worker-{index}")).spawn(move || {
            let _token = token;
            super::Stats::shard_for_this_thread(index);
            worker.run();
        });
        spawned.map_err(failed(index))?;
    }
    Ok(())
}

/// A listener or a UDP socket of one worker.
#[derive(Debug)]
enum Source {
    Listener(TcpListener),
    Datagrams(Datagrams),
}

/// One event loop: its sockets, its connections, and what it must come back to.
#[derive(Debug)]
struct Worker {
    index: usize,
    context: Arc<Context>,
    poll: Poll,
    /// Listeners and UDP sockets, by token; `None` once closed at a stop.
    sources: Vec<Option<Source>>,
    connections: Slab<Exchange>,
    buffers: Buffers,
    /// Tokens with more to do than one turn allowed: served again before the next wait.
    again: Vec<Token>,
    /// Tokens to serve again at an instant: a source pausing after an error or holding a reply
    /// back on purpose, a connection pausing between two segments of a reply (faults).
    later: Vec<(Instant, Token)>,
    /// How often deadlines are checked, and when next.
    tick: Duration,
    next_check: Instant,
    stopped: bool,
    /// Failed `accept` calls in a row, for the back-off.
    accept_errors: u32,
}

impl Worker {
    /// A worker serving `tcp` and `udp`, and the waker that interrupts its wait.
    fn new(
        index: usize,
        context: Arc<Context>,
        tcp: Vec<socket2::Socket>,
        udp: Vec<socket2::Socket>,
    ) -> io::Result<(Self, Waker)> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKE)?;
        let mut sources = Vec::new();
        for socket in tcp {
            socket.set_nonblocking(true)?;
            let mut listener = TcpListener::from_std(socket.into());
            poll.registry().register(&mut listener, Token(sources.len()), Interest::READABLE)?;
            sources.push(Some(Source::Listener(listener)));
        }
        for socket in udp {
            socket.set_nonblocking(true)?;
            let mut socket = UdpSocket::from_std(socket.into());
            poll.registry().register(
                &mut socket,
                Token(sources.len()),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            let plan = context.fault_plan(Transport::Udp, index as u64);
            let faults = plan.map(|plan| Box::new(FaultyReplies::new(plan)));
            sources.push(Some(Source::Datagrams(Datagrams::new(socket, faults))));
        }
        let tick = deadline_tick(&context.config);
        let buffers =
            Buffers::new(context.config.read_chunk, context.fault_plan(Transport::Tcp, index as u64));
        let worker = Self {
            index,
            poll,
            sources,
            connections: Slab::new(),
            buffers,
            again: Vec::new(),
            later: Vec::new(),
            tick,
            next_check: Instant::now() + tick,
            stopped: false,
            accept_errors: 0,
            context,
        };
        Ok((worker, waker))
    }

    /// Serves until the server has stopped and the last of this worker's connections has ended.
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let (stop, force) =
                (self.context.shutdown.stop.is_cancelled(), self.context.shutdown.force.is_cancelled());
            if stop && !self.stopped {
                self.stop();
            }
            if force {
                self.close_all(|| Ending::Shutdown);
            }
            if self.stopped && self.connections.is_empty() {
                self.context.liveness.waiting(self.index);
                return;
            }
            self.context.liveness.waiting(self.index);
            if let Err(e) = self.poll.poll(&mut events, self.timeout()) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!("worker {}: cannot wait for events: {e}", self.index);
                    std::thread::sleep(RECEIVE_ERROR_PAUSE);
                }
                continue;
            }
            let now = Instant::now();
            self.context.liveness.working(self.index, now);
            for event in &events {
                self.serve(event.token(), event.is_read_closed(), now);
            }
            for token in std::mem::take(&mut self.again) {
                self.serve(token, false, now);
            }
            let due: Vec<Token> = self.later.iter().filter(|(at, _)| *at <= now).map(|(_, t)| *t).collect();
            self.later.retain(|(at, _)| *at > now);
            for token in due {
                self.serve(token, false, now);
            }
            if now >= self.next_check {
                self.close_expired(now);
                self.next_check = now + self.tick;
            }
        }
    }

    /// How long to wait for events: not at all with work left over, else until the next thing due
    /// (forever with nothing open, until a stop wakes the worker).
    fn timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        let check = (!self.connections.is_empty()).then_some(self.next_check);
        let next = self.later.iter().map(|(at, _)| *at).chain(check).min()?;
        Some(next.saturating_duration_since(Instant::now()))
    }

    fn serve(&mut self, token: Token, client_closed: bool, now: Instant) {
        match token {
            WAKE => {}
            Token(n) if n >= CONNECTIONS => self.advance(n - CONNECTIONS, client_closed, now),
            Token(n) => match self.sources.get_mut(n) {
                Some(Some(Source::Listener(_))) => {
                    self.accept(n, now);
                }
                Some(Some(Source::Datagrams(_))) => {
                    self.answer_datagrams(n);
                }
                _ => {}
            },
        }
    }

    /// Accepts what is queued on listener `n`, admitting each connection under the server's limit;
    /// `true` when its turn ended with more perhaps queued.
    fn accept(&mut self, n: usize, now: Instant) -> bool {
        let context = Arc::clone(&self.context);
        let limit = context.config.max_connections;
        for _ in 0..BATCH {
            let Some(Some(Source::Listener(listener))) = self.sources.get(n) else { return false };
            let (mut socket, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) => {
                    // Out of descriptors or memory: wait (longer each time) for connections to close.
                    self.accept_errors = self.accept_errors.saturating_add(1);
                    self.later.push((now + accept_failed(&context, &e, self.accept_errors), Token(n)));
                    return false;
                }
            };
            self.accept_errors = 0;
            let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
            let Some(admission) = admit(&context, || Some(Socket::Worker(fd)), peer, limit) else { continue };
            opened(&context, admission.key, &socket, peer);
            let entry = self.connections.vacant_entry();
            let token = Token(CONNECTIONS + entry.key());
            if let Err(e) =
                self.poll.registry().register(&mut socket, token, Interest::READABLE | Interest::WRITABLE)
            {
                ended(&context, admission, &Err(e.into()), 0);
                continue;
            }
            entry.insert(Exchange::new(socket, admission, peer, &context, now));
        }
        self.again.push(Token(n));
        true
    }

    /// Advances connection `slot`; closes it when its exchange is over.
    fn advance(&mut self, slot: usize, client_closed: bool, now: Instant) {
        let Some(exchange) = self.connections.get_mut(slot) else { return };
        let (buffers, context) = (&mut self.buffers, &*self.context);
        let turn = std::panic::catch_unwind(AssertUnwindSafe(|| {
            exchange.advance(buffers, context, client_closed, now)
        }));
        match turn.unwrap_or(Progress::Done(Err(Ending::Panic))) {
            Progress::Waiting => {}
            Progress::Again => self.again.push(Token(CONNECTIONS + slot)),
            Progress::Later(at) => self.later.push((at, Token(CONNECTIONS + slot))),
            Progress::Done(outcome) => self.close(slot, &outcome),
        }
    }

    fn close(&mut self, slot: usize, outcome: &Result<(), Ending>) {
        if let Some(exchange) = self.connections.try_remove(slot) {
            if let (Err(Ending::Proxy(rejection)), Some(proxy)) = (outcome, exchange.proxy()) {
                log_rejected(&self.context, proxy, rejection);
            }
            // Counted and out of the connection set first, then closed (dropped), which also takes
            // the socket out of the epoll set: see `connections::Socket::Worker`.
            ended(&self.context, exchange.admission, outcome, exchange.received);
            drop(exchange);
        }
    }

    fn close_expired(&mut self, now: Instant) {
        let expired: Vec<(usize, Ending)> = self
            .connections
            .iter()
            .filter_map(|(slot, exchange)| exchange.expired(now).map(|ending| (slot, ending)))
            .collect();
        for (slot, ending) in expired {
            self.close(slot, &Err(ending));
        }
    }

    fn close_all(&mut self, ending: fn() -> Ending) {
        let slots: Vec<usize> = self.connections.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            self.close(slot, &Err(ending()));
        }
    }

    /// Answers what is queued on UDP socket `n` ([`Datagrams::answer`]), and books its next turn;
    /// `true` when its turn ended with more perhaps queued.
    fn answer_datagrams(&mut self, n: usize) -> bool {
        let Some(Some(Source::Datagrams(datagrams))) = self.sources.get_mut(n) else { return false };
        match datagrams.answer(&self.context) {
            Turn::Waiting => false,
            Turn::Again => {
                self.again.push(Token(n));
                true
            }
            Turn::At(at) => {
                self.later.push((at, Token(n)));
                false
            }
        }
    }

    /// Stops accepting and answering: the listeners and UDP sockets are closed; connections go on.
    /// What the kernel already queued on them is taken first (bounded, against a flood): a
    /// connection it completed is served within the grace, instead of being reset when its
    /// listener closes (a balancer in front would have passed it a client already), and a
    /// datagram that arrived is answered.
    fn stop(&mut self) {
        let now = Instant::now();
        for n in 0..self.sources.len() {
            for _ in 0..STOP_DRAIN_TURNS {
                let more = match self.sources.get(n) {
                    Some(Some(Source::Listener(_))) => self.accept(n, now),
                    Some(Some(Source::Datagrams(_))) => self.answer_datagrams(n),
                    _ => false,
                };
                if !more {
                    break;
                }
            }
            // Closed at once: the longer a drained listener stays open, the more connections the
            // kernel completes that no one will accept.
            if let Some(source) = self.sources.get_mut(n) {
                *source = None;
            }
        }
        self.stopped = true;
        self.sources.iter_mut().for_each(|source| *source = None);
        // A connection sending a reply slowly on purpose comes back at its time.
        self.later.retain(|(_, token)| token.0 >= CONNECTIONS);
        self.again.retain(|token| token.0 >= CONNECTIONS);
    }
}

impl Drop for Worker {
    /// A worker ends with its connections closed and counted, even one stopped by a bug.
    fn drop(&mut self) {
        self.close_all(if std::thread::panicking() { || Ending::Panic } else { || Ending::Shutdown });
    }
}
