//! One TCP connection of the async model: the exchange on it, advanced by its worker each time
//! the socket is ready, never waiting itself.
//!
//! It holds no buffer while idle: the read buffer and the reply buffer belong to the worker and
//! are lent to whichever connection is ready. It owns memory of its own only while its client is
//! slow to read a reply, and then at most one reply (3× a read chunk). Its deadline (idle, reply
//! not read, or end of its lifetime, whichever is nearest) is a field its worker checks; no timer
//! is registered anywhere, so a connection costs no allocation and no system call beyond its own
//! reads and writes. A reply the faults plan makes late or splits into segments becomes the
//! pending reply, written a segment per turn, the worker booking the next turn at its instant
//! (`exchange/pacing.rs`).
//!
//! Behind a proxy (`--proxy-protocol`) an exchange starts with a phase of its own: reading the
//! PROXY header, over as many reads as it takes, within the header timeout. What that phase
//! needs (the proxy's address, the bytes of a header that came in pieces) is boxed and exists
//! only until the header is read, so a connection being served is no larger for it.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::super::connection::{proxied, Admission, Ending};
use super::super::proxy::{Feed, HeaderReader, Rejection};
use super::super::{stream, Config, Context};
use crate::faults::Plan;
use crate::transform::Uppercaser;

mod pacing;

use self::pacing::{Pacing, Written};

/// Reads on one connection in one turn of its worker before the others get theirs: at 64 KiB a
/// read, a client streaming 1 MiB at a time cannot hold up the connections that share its worker.
const READS_PER_TURN: usize = 16;

/// A deadline so far away that it stands for "no limit" at the cost of none.
const NEVER: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);

/// The worker's buffers, lent to one connection at a time, and its faults plan.
#[derive(Debug)]
pub(super) struct Buffers {
    input: Vec<u8>,
    reply: Vec<u8>,
    /// The decisions for the replies of this worker's connections, when faults are configured.
    faults: Option<Plan>,
}

impl Buffers {
    pub(super) fn new(read_chunk: usize, faults: Option<Plan>) -> Self {
        Self { input: vec![0; read_chunk.max(1)], reply: Vec::new(), faults }
    }
}

/// Where an exchange is after a turn.
#[derive(Debug)]
pub(super) enum Progress {
    /// The socket or the client makes it wait: nothing to do until the socket's next event.
    Waiting,
    /// It has more to do than one turn allows: give it another turn soon.
    Again,
    /// It pauses on purpose (a reply sent late or in segments, by the faults plan): give it a
    /// turn at that instant.
    Later(Instant),
    /// The exchange is over, well or not; the worker closes the socket.
    Done(Result<(), Ending>),
}

/// Which limit the deadline stands for.
#[derive(Debug, Clone, Copy)]
enum Limit {
    Idle,
    ReplyNotRead,
    Lifetime,
    ProxyHeader,
}

impl From<Limit> for Ending {
    fn from(limit: Limit) -> Self {
        match limit {
            Limit::Idle => Self::Idle,
            Limit::ReplyNotRead => Self::ReplyNotRead,
            Limit::Lifetime => Self::Lifetime,
            Limit::ProxyHeader => Self::Proxy(Rejection::Timeout),
        }
    }
}

/// What the header phase needs, for as long as it lasts.
#[derive(Debug)]
struct HeaderPhase {
    /// The proxy: the connection's peer.
    proxy: SocketAddr,
    reader: HeaderReader,
}

/// How the header phase left a turn.
enum HeaderTurn {
    /// Over: the exchange goes on with the client's bytes at `start..end` of the input buffer
    /// (none when `start == end`), `end` being what the last read returned.
    Read { start: usize, end: usize },
    /// Still reading, or the exchange is over.
    Stop(Progress),
}

/// One connection's exchange.
#[derive(Debug)]
pub(super) struct Exchange {
    pub(super) socket: TcpStream,
    /// Its key in the server's connection count, which also names it in the logs, and its place
    /// under the per-source limit.
    pub(super) admission: Admission,
    /// While a PROXY header is being read.
    header: Option<Box<HeaderPhase>>,
    /// Bytes received from the client so far (for the histogram of request sizes).
    pub(super) received: u64,
    uppercaser: Uppercaser,
    /// The part of a reply the socket did not take yet; empty when none is pending.
    unsent: Vec<u8>,
    /// Once `unsent` is written: the client has finished, so end. The worker then closes the
    /// socket, which, with nothing left unread, sends the client the end of the stream after the
    /// reply, as a half-close would, for one system call less.
    closing: bool,
    /// The client shut its side down: read on to the end of the stream, even after a short read.
    client_closed: bool,
    /// A reply in `unsent` being sent slowly on purpose (faults); boxed, so that a connection
    /// without one pays a pointer.
    paced: Option<Box<Pacing>>,
    deadline: Instant,
    limit: Limit,
    end_of_life: Option<Instant>,
}

impl Exchange {
    /// The exchange on a connection just accepted from `peer`.
    pub(super) fn new(
        socket: TcpStream,
        admission: Admission,
        peer: SocketAddr,
        context: &Context,
        now: Instant,
    ) -> Self {
        let config = &context.config;
        let mut exchange = Self {
            socket,
            admission,
            header: config
                .proxy_protocol
                .as_ref()
                .map(|_| Box::new(HeaderPhase { proxy: peer, reader: HeaderReader::default() })),
            received: 0,
            uppercaser: context.uppercaser(),
            unsent: Vec::new(),
            closing: false,
            client_closed: false,
            paced: None,
            deadline: now,
            limit: Limit::Idle,
            end_of_life: config.max_connection_time.map(|limit| now + limit),
        };
        match &config.proxy_protocol {
            Some(proxy) => exchange.wait_for(Some(proxy.header_timeout), Limit::ProxyHeader, now),
            None => exchange.wait_for(config.idle_timeout, Limit::Idle, now),
        }
        exchange
    }

    /// The proxy it came through, while its header is being read.
    pub(super) fn proxy(&self) -> Option<SocketAddr> {
        self.header.as_ref().map(|phase| phase.proxy)
    }

    /// The ending due at `now`, if a deadline has passed.
    pub(super) fn expired(&self, now: Instant) -> Option<Ending> {
        (now >= self.deadline).then(|| self.limit.into())
    }

    /// Sets the deadline of the next wait: `limit` from now, or the end of the connection's
    /// lifetime if that comes first.
    fn wait_for(&mut self, limit: Option<Duration>, own: Limit, now: Instant) {
        let at = now + limit.unwrap_or(NEVER);
        (self.deadline, self.limit) = match self.end_of_life {
            Some(end) if end <= at => (end, Limit::Lifetime),
            _ => (at, own),
        };
    }

    /// Runs the exchange as far as it can without waiting: writes what is pending, reads,
    /// uppercases, writes back, until the socket or the client makes it wait, its turn is over,
    /// or the exchange ends. `client_closed` says the socket's event reported the client's FIN.
    pub(super) fn advance(
        &mut self,
        buffers: &mut Buffers,
        context: &Context,
        client_closed: bool,
        now: Instant,
    ) -> Progress {
        self.client_closed |= client_closed;
        let config = &context.config;
        let mut first = None;
        if self.header.is_some() {
            match self.read_header(buffers, context, now) {
                HeaderTurn::Stop(progress) => return progress,
                HeaderTurn::Read { start, end } if start < end => first = Some((start, end)),
                // The header alone: a short read emptied the socket's queue (see below).
                HeaderTurn::Read { end, .. } if end < buffers.input.len() && !self.client_closed => {
                    return Progress::Waiting
                }
                HeaderTurn::Read { .. } => {}
            }
        }
        let mut reads = 0;
        loop {
            if !self.unsent.is_empty() || self.closing {
                match self.write_unsent(context, now) {
                    Ok(Written::All) => {}
                    Ok(Written::Part) => return Progress::Waiting,
                    Ok(Written::Paused(Some(at))) => return Progress::Later(at),
                    Ok(Written::Paused(None)) => return Progress::Waiting,
                    Err(e) => return Progress::Done(Err(e.into())),
                }
                if self.closing {
                    return Progress::Done(Ok(()));
                }
                // The reply went through: the client has a fresh idle timeout.
                self.wait_for(config.idle_timeout, Limit::Idle, now);
            }
            if reads == READS_PER_TURN {
                return Progress::Again;
            }
            reads += 1;
            // The client's first bytes may have come with the PROXY header, in its read.
            let (start, n) = match first.take() {
                Some(range) => range,
                None => match self.socket.read(&mut buffers.input) {
                    Ok(n) => (0, n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Waiting,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Progress::Done(Err(e.into())),
                },
            };
            let chunk = buffers.input.get(start..n).unwrap_or_default();
            self.received += chunk.len() as u64;
            stream::answer_chunk(chunk, &mut self.uppercaser, &mut buffers.reply, context);
            // A read that fills less than the buffer emptied the socket's queue: that is how a TCP
            // socket reads, so reading again would only say "nothing more" (EAGAIN), a system
            // call per request for nothing; the next bytes to arrive bring a new event. And if the
            // client had already shut its side when the event came, that was the end of its
            // stream: reading the 0 would be a system call for nothing too.
            let drained = n < buffers.input.len();
            if n == 0 || (drained && self.client_closed) {
                stream::finish(&mut self.uppercaser, &mut buffers.reply, context);
                self.closing = true;
            }
            if let Some(plan) = buffers.faults.as_mut() {
                if let Some(at) = self.pace(plan, &buffers.reply, context, now) {
                    return Progress::Later(at);
                }
            }
            let written = match write_some(&self.socket, &buffers.reply, context) {
                Ok(written) => written,
                Err(e) => return Progress::Done(Err(e.into())),
            };
            let rest = buffers.reply.get(written..).unwrap_or_default();
            if !rest.is_empty() {
                self.unsent.extend_from_slice(rest);
                self.wait_for(Some(config.write_timeout), Limit::ReplyNotRead, now);
                return Progress::Waiting;
            }
            if self.closing {
                return Progress::Done(Ok(()));
            }
            self.wait_for(config.idle_timeout, Limit::Idle, now);
            if drained {
                return Progress::Waiting;
            }
        }
    }

    /// Reads the PROXY header, as far as the socket allows without waiting. Once it is complete,
    /// the phase's memory is freed and the connection takes its client's place under the
    /// per-source limit; a bad header, or the end of the stream before it, ends the exchange.
    fn read_header(&mut self, buffers: &mut Buffers, context: &Context, now: Instant) -> HeaderTurn {
        let Some(phase) = self.header.as_mut() else { return HeaderTurn::Read { start: 0, end: 0 } };
        loop {
            let n = match self.socket.read(&mut buffers.input) {
                Ok(0) => return HeaderTurn::Stop(Progress::Done(Err(Ending::Proxy(Rejection::Incomplete)))),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return HeaderTurn::Stop(Progress::Waiting)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return HeaderTurn::Stop(Progress::Done(Err(e.into()))),
            };
            match phase.reader.feed(buffers.input.get(..n).unwrap_or_default()) {
                Feed::More => {}
                Feed::Rejected(rejection) => {
                    return HeaderTurn::Stop(Progress::Done(Err(Ending::Proxy(rejection))))
                }
                Feed::Done { header, consumed } => {
                    let proxy = phase.proxy;
                    self.header = None;
                    if let Err(ending) = proxied(context, &mut self.admission, &self.socket, proxy, header) {
                        return HeaderTurn::Stop(Progress::Done(Err(ending)));
                    }
                    self.wait_for(context.config.idle_timeout, Limit::Idle, now);
                    return HeaderTurn::Read { start: consumed.min(n), end: n };
                }
            }
        }
    }
}

/// Writes what the socket takes of `bytes` without waiting.
fn write_some(mut socket: &TcpStream, bytes: &[u8], context: &Context) -> io::Result<usize> {
    let mut written = 0;
    while let Some(rest) = bytes.get(written..).filter(|rest| !rest.is_empty()) {
        match socket.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    stream::sent(context, written);
    Ok(written)
}

/// How often a worker looks for connections past their deadline: an eighth of the shortest
/// limit, so a deadline is kept to within an eighth of itself, between 10 ms and a second.
pub(super) fn deadline_tick(config: &Config) -> Duration {
    let shortest = [config.idle_timeout, Some(config.write_timeout), config.max_connection_time]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(Duration::from_secs(8));
    (shortest / 8).clamp(Duration::from_millis(10), Duration::from_secs(1))
}
