//! The blocking I/O of the iterative and threaded models: an accept loop, one TCP connection
//! served to its end on the calling thread with socket timeouts, and the UDP receive loop.
//!
//! A blocked call cannot see a stop, so every wait here is bounded: `accept` and `recv_from` wake
//! every [`STOP_POLL`], and a connection's socket timeouts are set before each call to the nearest
//! of its limits, so a blocked call can tell which limit it hit. Behind a proxy, a connection's
//! PROXY header is read first, within its own deadline. Nothing here may end a loop on an error
//! that belongs to one connection, one `accept` or one datagram.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use socket2::SockRef;

use super::connection::{accept_failed, Admission, ConnectionGuard, Ending};
use super::datagram::{answer, failed, sent, RECEIVE_ERROR_PAUSE};
use super::faulty_udp::FaultyReplies;
use super::pktinfo::{self, Route};
use super::proxy::{log_rejected, Feed, HeaderReader, Proxied, ProxyProtocol, Rejection};
use super::shutdown::STOP_POLL;
use super::stats::add;
use super::{stream, Context};
use crate::faults::Plan;
use crate::net::{is_timeout, Transport, RECEIVE_BUFFER};

/// Hands each connection accepted on `listener` to `serve`, until the server stops, and then
/// those the kernel had already completed (bounded): served within the grace rather than reset
/// when the listener closes, which the caller does as soon as this returns. Never ends on an
/// accept error: it backs off and tries again.
pub(crate) fn accept_loop(
    listener: &TcpListener,
    context: &Context,
    mut serve: impl FnMut(TcpStream, SocketAddr),
) {
    // Linux applies SO_RCVTIMEO to accept(), so the loop wakes to notice a stop.
    if let Err(e) = SockRef::from(listener).set_read_timeout(Some(STOP_POLL)) {
        tracing::warn!("cannot set a timeout on the listener, so stopping may hang: {e}");
    }
    let mut consecutive_errors = 0;
    while !context.shutdown.stop.is_cancelled() {
        match listener.accept() {
            Ok((stream, peer)) => {
                consecutive_errors = 0;
                serve(stream, peer);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                consecutive_errors += 1;
                std::thread::sleep(accept_failed(context, &e, consecutive_errors));
            }
        }
    }
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    for _ in 0..STOP_DRAIN {
        let Ok((stream, peer)) = listener.accept() else { break };
        if stream.set_nonblocking(false).is_ok() {
            serve(stream, peer);
        }
    }
}

/// Connections or datagrams a stopping loop takes from what is already queued, at most: the
/// queue as it was (a listen backlog is 4,096 by default), not a flood that goes on.
const STOP_DRAIN: usize = 4096;

/// A serving thread's buffers, reused from one connection to the next, and its faults plan.
#[derive(Debug)]
pub(crate) struct Buffers {
    input: Vec<u8>,
    reply: Vec<u8>,
    /// The decisions for the replies this thread sends, when faults are configured.
    faults: Option<Plan>,
}

impl Buffers {
    /// Buffers for the `nth` serving thread (its faults plan's number).
    pub(crate) fn new(context: &Context, nth: u64) -> Self {
        let input = vec![0; context.config.read_chunk.max(1)];
        Self { input, reply: Vec::new(), faults: context.fault_plan(Transport::Tcp, nth) }
    }
}

/// Serves the connection admitted as `admission` to its end on the calling thread, its PROXY
/// header first when there must be one. A panic while serving ends this connection only, and is
/// counted.
pub(crate) fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    admission: Admission,
    context: &Context,
    buffers: &mut Buffers,
) {
    let mut guard = ConnectionGuard::new(context, admission, &stream, peer);
    let mut received = 0;
    let exchange = AssertUnwindSafe(|| {
        let first = match &context.config.proxy_protocol {
            Some(proxy) => {
                let (header, first) = read_proxy_header(&stream, proxy, context, &mut buffers.input)
                    .inspect_err(|ending| {
                        if let Ending::Proxy(rejection) = ending {
                            log_rejected(context, peer, rejection);
                        }
                    })?;
                guard.proxied(&stream, peer, header)?;
                first
            }
            None => 0..0,
        };
        Exchange::new(stream, context).run(buffers, &mut received, first)
    });
    let outcome = std::panic::catch_unwind(exchange).unwrap_or(Err(Ending::Panic));
    guard.received(received);
    guard.finished(outcome);
}

/// Reads the PROXY header that opens a connection, within the header timeout; returns what it
/// says and where in `input` the client's first bytes are (those that came in the header's read).
fn read_proxy_header(
    mut stream: &TcpStream,
    proxy: &ProxyProtocol,
    context: &Context,
    input: &mut [u8],
) -> Result<(Proxied, Range<usize>), Ending> {
    let deadline = Instant::now() + proxy.header_timeout;
    let mut reader = HeaderReader::default();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Ending::Proxy(Rejection::Timeout));
        }
        stream.set_read_timeout(Some(left))?;
        let n = match stream.read(input) {
            Ok(0) if context.shutdown.force.is_cancelled() => return Err(Ending::Shutdown),
            Ok(0) => return Err(Ending::Proxy(Rejection::Incomplete)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => return Err(Ending::Proxy(Rejection::Timeout)),
            Err(e) => return Err(Ending::Io(e)),
        };
        match reader.feed(input.get(..n).unwrap_or_default()) {
            Feed::More => {}
            Feed::Rejected(rejection) => return Err(Ending::Proxy(rejection)),
            Feed::Done { header, consumed } => return Ok((header, consumed.min(n)..n)),
        }
    }
}

/// One connection served on the calling thread, with its timeouts.
///
/// Socket timeouts (SO_RCVTIMEO, SO_SNDTIMEO) are set before each call to the lower of the
/// idle or write timeout and what is left of the connection's maximum lifetime. They enforce
/// limits, so a socket that refuses one ends the connection (see `connection::ready` for the
/// policy).
struct Exchange<'a> {
    stream: TcpStream,
    context: &'a Context,
    deadline: Option<Instant>,
}

impl<'a> Exchange<'a> {
    fn new(stream: TcpStream, context: &'a Context) -> Self {
        let deadline = context.config.max_connection_time.map(|limit| Instant::now() + limit);
        Self { stream, context, deadline }
    }

    /// Serves the connection to its end, counting the bytes it receives in `received`; `first`:
    /// where in the input buffer the client's first bytes already are (those that came with its
    /// PROXY header).
    fn run(mut self, buffers: &mut Buffers, received: &mut usize, first: Range<usize>) -> Result<(), Ending> {
        let mut uppercaser = self.context.uppercaser();
        let mut first = Some(first).filter(|range| !range.is_empty());
        loop {
            let range = match first.take() {
                Some(range) => range,
                None => {
                    let timeout = self.limit(self.context.config.idle_timeout)?;
                    self.stream.set_read_timeout(timeout)?;
                    match self.stream.read(&mut buffers.input) {
                        // `close_all` shuts the socket down, which a blocked read sees as end of stream.
                        Ok(0) if self.context.shutdown.force.is_cancelled() => return Err(Ending::Shutdown),
                        Ok(0) => break,
                        Ok(n) => 0..n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) if is_timeout(&e) => return Err(self.timed_out(Ending::Idle)),
                        Err(e) => return Err(self.closed_or(e)),
                    }
                }
            };
            let chunk = buffers.input.get(range).unwrap_or_default();
            *received += chunk.len();
            stream::answer_chunk(chunk, &mut uppercaser, &mut buffers.reply, self.context);
            self.reply(&buffers.reply, &mut buffers.faults)?;
        }
        buffers.reply.clear();
        stream::finish(&mut uppercaser, &mut buffers.reply, self.context);
        self.reply(&buffers.reply, &mut buffers.faults)?;
        // Dropping the stream closes it: the end of the stream follows the reply.
        Ok(())
    }

    /// Writes a reply, late or in segments with pauses when the faults plan says so. Sleeping is
    /// what a blocking thread does while it waits; a shutdown ends the exchange at the next write.
    fn reply(&mut self, bytes: &[u8], faults: &mut Option<Plan>) -> Result<(), Ending> {
        let Some(plan) = faults.as_mut().filter(|_| !bytes.is_empty()) else { return self.write(bytes) };
        let fate = plan.tcp_reply();
        if let Some(delay) = fate.delay {
            add(&self.context.stats.fault_tcp_delayed, 1);
            std::thread::sleep(delay);
        }
        let Some((size, pause)) = fate.segments else { return self.write(bytes) };
        add(&self.context.stats.fault_tcp_split, 1);
        for (i, segment) in bytes.chunks(size).enumerate() {
            if i > 0 {
                std::thread::sleep(pause);
            }
            self.write(segment)?;
        }
        Ok(())
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
                    stream::sent(self.context, n);
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

/// Answers datagrams on `socket` until the server stops, and then those already queued
/// (bounded): the whole of the iterative UDP server, and each thread of the threaded one (the
/// `nth`, for its faults plan). On a wildcard address, each datagram comes with its destination
/// and its reply leaves from there (`super::pktinfo`); on one address, a plain `recv_from` and
/// `send_to`.
pub(crate) fn answer_datagrams(socket: &UdpSocket, nth: u64, context: &Context) {
    if let Err(e) = socket.set_read_timeout(Some(STOP_POLL)) {
        tracing::warn!("cannot set a timeout on the UDP socket, so stopping may hang: {e}");
    }
    let mut request = vec![0; RECEIVE_BUFFER];
    let mut reply = Vec::new();
    let local = socket.local_addr().ok();
    let local_port = local.map_or(0, |a| a.port());
    let mut control =
        local.filter(|a| pktinfo::asked(socket, *a)).map(|a| pktinfo::control_buffer(a.is_ipv6()));
    let mut receive = |request: &mut [u8]| match &mut control {
        None => socket.recv_from(request).map(|(n, peer)| (n, Some(peer), None)),
        Some(control) => pktinfo::recv_from(socket, request, control, context),
    };
    let mut faults = context.fault_plan(Transport::Udp, nth).map(FaultyReplies::new);
    let send = |reply: &[u8], route| pktinfo::send(socket, reply, route);
    while !context.shutdown.stop.is_cancelled() {
        match receive(&mut request) {
            Ok((n, Some(peer), from)) => {
                if answer(request.get(..n).unwrap_or_default(), peer, local_port, context, &mut reply) {
                    let route = Route { to: peer, from };
                    match &mut faults {
                        None => sent(context, peer, send(&reply, route)),
                        Some(faults) => {
                            faults.reply(&reply, route, Instant::now(), context, send);
                            wake_for_held_replies(socket, faults, context, send);
                        }
                    }
                }
            }
            // A sender that is not an IP address has no reply to get.
            Ok((_, None, _)) => {}
            Err(e) if is_timeout(&e) => {
                if let Some(faults) = &mut faults {
                    wake_for_held_replies(socket, faults, context, send);
                }
            }
            Err(e) => {
                failed(context, format_args!("cannot receive: {e}"));
                // An error that repeats at once (a broken socket) must not spin a core.
                std::thread::sleep(RECEIVE_ERROR_PAUSE);
            }
        }
    }
    if socket.set_nonblocking(true).is_err() {
        return;
    }
    for _ in 0..STOP_DRAIN {
        let Ok((n, peer, from)) = receive(&mut request) else { break };
        let Some(peer) = peer else { continue };
        if answer(request.get(..n).unwrap_or_default(), peer, local_port, context, &mut reply) {
            sent(context, peer, send(&reply, Route { to: peer, from }));
        }
    }
}

/// Sends the held replies that are due, and sets the socket's timeout so that the loop wakes for
/// the next one (or to see a stop): a held reply never waits for a datagram to arrive.
fn wake_for_held_replies(
    socket: &UdpSocket,
    faults: &mut FaultyReplies,
    context: &Context,
    send: impl Fn(&[u8], Route) -> io::Result<usize>,
) {
    let now = Instant::now();
    faults.flush(now, context, send);
    let until_due = faults.next_due().map_or(STOP_POLL, |due| due.saturating_duration_since(now));
    // A zero timeout means "block forever" to the socket.
    let wait = until_due.clamp(Duration::from_millis(1), STOP_POLL);
    if let Err(e) = socket.set_read_timeout(Some(wait)) {
        tracing::warn!("cannot set a timeout on the UDP socket, so held replies may be late: {e}");
    }
}
