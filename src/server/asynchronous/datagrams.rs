//! One UDP socket of an async worker: datagrams received a batch per system call (`recvmmsg`)
//! and their replies sent a batch per call (`sendmmsg`).
//!
//! Answering one datagram at a time takes a `recvfrom` and a `sendto` each, and a last `recvfrom`
//! only to hear "nothing more" (EAGAIN) before the worker waits again. A batch takes one call each
//! way for all the datagrams already queued, and a batch that comes back short of full emptied the
//! queue, so no call is spent on the EAGAIN: measured per request, from about 2.5 system calls to
//! about 1 with 8 independent clients (docs/BENCHMARKS.md). Why by hand: `mio` and the standard
//! library have no `recvmmsg`; `nix` wraps it, with buffers this module owns and reuses, so a
//! request costs no allocation.
//!
//! Where no faults are configured, each socket is served by a thread of its own that sleeps in
//! `recvmmsg` itself (`MSG_WAITFORONE`: wait for one datagram, then take every one queued) instead
//! of by its worker's event loop: a wake-up then costs no `epoll_wait`, which measured 5–18% less
//! CPU per request (docs/BENCHMARKS.md) and as cheap as the iterative model's blocking loop, with
//! the batches kept. The socket still belongs to one thread only, so no request crosses threads.
//!
//! A reply the socket cannot take now (its send buffer is full) is kept with the rest of its
//! batch, and reading waits until they are sent, rather than dropping them. With faults on
//! (`serve --drop` ...), each reply goes through the faults plan instead, one at a time.
//!
//! On a wildcard address, each datagram's destination comes in a control message, read in the
//! same `recvmmsg`, and its reply leaves from there (`super::super::pktinfo`). `sendmmsg` gives
//! every message of a call the same control messages, so the replies of a batch are sorted by
//! their source and sent a call per source: one call still, when the clients all wrote to one
//! address. A socket bound to one address has no control buffers and no sorting.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use mio::net::UdpSocket;
use nix::errno::Errno;
use nix::sys::socket::{recvmmsg, sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage};
use tokio_util::task::TaskTracker;

use super::super::datagram::{answer, failed, sent, RECEIVE_ERROR_PAUSE};
use super::super::faulty_udp::FaultyReplies;
use super::super::pktinfo::{self, socket_addr, Route, Source};
use super::super::shutdown::STOP_POLL;
use super::super::Context;
use crate::net::RECEIVE_BUFFER;

/// Datagrams received, and replies sent, per system call.
const BATCH: usize = 16;
/// Batches answered on one socket in one turn before the worker's other sockets get theirs.
const BATCHES_PER_TURN: usize = 4;
/// Turns of [`Datagrams::answer`] a stopping thread takes to answer what was already queued.
const STOP_DRAIN_TURNS: usize = 64;

/// Serves `socket`, one of worker `index`'s UDP sockets, on a thread of its own, tracked by
/// `tracker` ([`Datagrams::serve_blocking`]): blocking, with timeouts that show it a stop within
/// [`STOP_POLL`].
pub(super) fn serve_on_own_thread(
    index: usize,
    socket: socket2::Socket,
    context: &Arc<Context>,
    tracker: &TaskTracker,
) -> io::Result<()> {
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(STOP_POLL))?;
    socket.set_write_timeout(Some(STOP_POLL))?;
    let datagrams = Datagrams::new(UdpSocket::from_std(socket.into()), None);
    let (context, token) = (Arc::clone(context), tracker.token());
    std::thread::Builder::new().name(format!("upcase-udp-{index}")).spawn(move || {
        let _token = token;
        super::super::Stats::shard_for_this_thread(index);
        datagrams.serve_blocking(&context);
    })?;
    Ok(())
}

/// How a turn of answering ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Turn {
    /// Nothing more queued, or replies wait for room in the send buffer: the socket's next event.
    Waiting,
    /// More may be queued: another turn soon.
    Again,
    /// Come back at this instant: a pause after a receive error, or a reply held on purpose.
    At(Instant),
}

/// A worker's UDP socket and what answering on it needs.
#[derive(Debug)]
pub(super) struct Datagrams {
    pub(super) socket: UdpSocket,
    local_port: u16,
    /// Its family, and whether it is bound to a wildcard address: which headers it uses.
    kind: Kind,
    /// `BATCH` receive buffers, one after the other, each larger than any datagram.
    requests: Vec<u8>,
    /// A reply buffer per datagram of a batch.
    replies: Vec<Vec<u8>>,
    /// The length, sender and (on a wildcard address) destination of each datagram of the batch
    /// just received.
    received: Vec<(usize, Option<SocketAddr>, Option<Source>)>,
    /// Replies of the current batch not sent yet: which buffer, to whom and from where.
    unsent: Vec<(usize, Route)>,
    /// Replies dropped, delayed, duplicated or reordered on purpose, when faults are on.
    faults: Option<Box<FaultyReplies>>,
}

impl Datagrams {
    pub(super) fn new(socket: UdpSocket, faults: Option<Box<FaultyReplies>>) -> Self {
        let local = socket.local_addr().ok();
        let kind = Kind {
            v6: local.is_some_and(|a| a.is_ipv6()),
            destinations: local.is_some_and(|local| pktinfo::asked(&socket, local)),
        };
        Self {
            socket,
            local_port: local.map_or(0, |a| a.port()),
            kind,
            requests: vec![0; BATCH * RECEIVE_BUFFER],
            replies: vec![Vec::new(); BATCH],
            received: Vec::with_capacity(BATCH),
            unsent: Vec::with_capacity(BATCH),
            faults,
        }
    }

    /// Serves the socket on this thread until the server stops, then answers what the kernel
    /// had already queued (bounded, against a flood). The socket must be blocking, with read and
    /// write timeouts, which are how often a stop is seen. Without faults only: a reply held back
    /// on purpose needs the worker's timed turns.
    pub(super) fn serve_blocking(mut self, context: &Context) {
        while !context.shutdown.stop.is_cancelled() {
            // A reply the send buffer could not take within the write timeout goes first.
            if !self.unsent.is_empty() && !self.send_unsent(context) {
                continue;
            }
            // Sleep until a datagram comes (or the read timeout), then take every one queued.
            match self.receive(MsgFlags::MSG_WAITFORONE, context) {
                Ok(received) => {
                    self.answer_batch(received, context);
                    self.send_unsent(context);
                }
                // The read timeout: a look at the stop, then back to sleep.
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(e) => {
                    failed(context, format_args!("cannot receive: {e}"));
                    // An error that repeats at once (a broken socket) must not spin a core.
                    std::thread::sleep(RECEIVE_ERROR_PAUSE);
                }
            }
        }
        for _ in 0..STOP_DRAIN_TURNS {
            if self.answer(context) != Turn::Again {
                break;
            }
        }
    }

    /// Answers what is queued, a batch at a time, up to [`BATCHES_PER_TURN`] batches.
    pub(super) fn answer(&mut self, context: &Context) -> Turn {
        if let Some(faults) = &mut self.faults {
            let socket = &self.socket;
            faults.flush(Instant::now(), context, |reply: &[u8], route| pktinfo::send(socket, reply, route));
        }
        if !self.send_unsent(context) {
            return Turn::Waiting;
        }
        let mut due = None;
        for _ in 0..BATCHES_PER_TURN {
            let received = match self.receive(MsgFlags::MSG_DONTWAIT, context) {
                Ok(received) => received,
                Err(Errno::EAGAIN) => return self.due_or(due, Turn::Waiting),
                Err(e) => {
                    failed(context, format_args!("cannot receive: {e}"));
                    // An error that repeats at once (a broken socket) must not spin a core.
                    return Turn::At(Instant::now() + RECEIVE_ERROR_PAUSE);
                }
            };
            if let Some(at) = self.answer_batch(received, context) {
                due = Some(due.map_or(at, |due: Instant| due.min(at)));
            }
            if !self.send_unsent(context) {
                return Turn::Waiting;
            }
            // A batch short of full emptied the queue: the next datagram brings a new event.
            if received < BATCH {
                return self.due_or(due, Turn::Waiting);
            }
        }
        Turn::Again
    }

    /// Answers the `count` datagrams just received: each reply joins the batch to send, or, with
    /// faults on, goes through the plan, which may say when to come back for a reply it holds.
    fn answer_batch(&mut self, count: usize, context: &Context) -> Option<Instant> {
        let Self { socket, local_port, kind, requests, replies, unsent, received, faults } = self;
        let mut due = None;
        for (index, (&(len, peer, from), reply)) in
            received.iter().zip(replies.iter_mut()).take(count).enumerate()
        {
            let Some(peer) = peer else { continue };
            let start = index * RECEIVE_BUFFER;
            let request = requests.get(start..start + len).unwrap_or_default();
            if !answer(request, peer, *local_port, context, reply) {
                continue;
            }
            let route = Route { to: peer, from };
            match faults {
                None => unsent.push((index, route)),
                Some(faults) => {
                    let send = |reply: &[u8], route| pktinfo::send(&*socket, reply, route);
                    if let Some(at) = faults.reply(reply, route, Instant::now(), context, send) {
                        due = Some(due.map_or(at, |due: Instant| due.min(at)));
                    }
                }
            }
        }
        if kind.destinations {
            // Those from one source together, each source's in the order received, for a call
            // per source (`send_unsent`). In place: no allocation.
            unsent.sort_unstable_by_key(|&(index, route)| (route.from, index));
        }
        due
    }

    /// When the faults plan holds a reply, the instant to come back for it; else `otherwise`.
    fn due_or(&self, due: Option<Instant>, otherwise: Turn) -> Turn {
        let next = self.faults.as_ref().and_then(|faults| faults.next_due());
        match due.into_iter().chain(next).min() {
            Some(at) => Turn::At(at),
            None => otherwise,
        }
    }

    /// One `recvmmsg` with `flags`: fills `received` with the length, sender and (on a wildcard
    /// address) destination of each datagram, in buffer order, and returns how many came.
    fn receive(&mut self, flags: MsgFlags, context: &Context) -> nix::Result<usize> {
        let fd = self.socket.as_raw_fd();
        let kind = self.kind;
        let (requests, received) = (&mut self.requests, &mut self.received);
        with_headers(|headers| {
            let mut buffers = requests.chunks_mut(RECEIVE_BUFFER);
            let mut slices: [[IoSliceMut<'_>; 1]; BATCH] =
                std::array::from_fn(|_| [IoSliceMut::new(buffers.next().unwrap_or(&mut []))]);
            let results = recvmmsg(fd, headers.receiving(kind), slices.iter_mut(), flags, None)?;
            let mut missing = false;
            // At most BATCH entries, into room kept from the first batch: no allocation.
            received.clear();
            received.extend(results.map(|message| {
                let from = kind.destinations.then(|| pktinfo::destination(&message, context));
                missing |= from == Some(None);
                (message.bytes, message.address.and_then(|a| socket_addr(&a)), from.flatten())
            }));
            if missing {
                // The slot that took it has less control room left for the next call (see
                // `Headers`): new headers for the next batch.
                headers.forget_receiving(kind);
            }
            Ok(received.len())
        })
    }

    /// Sends the replies not sent yet, a batch per call; `false` when the socket's send buffer is
    /// full and some wait for room (reading must wait too). A reply the kernel refuses for another
    /// reason is counted as a failed send and skipped.
    fn send_unsent(&mut self, context: &Context) -> bool {
        while !self.unsent.is_empty() {
            // On a wildcard address, the replies from the first one's source (sorted together).
            let from = self.unsent.first().and_then(|(_, route)| route.from);
            let count = if self.kind.destinations {
                self.unsent.iter().take(BATCH).take_while(|(_, route)| route.from == from).count()
            } else {
                self.unsent.len().min(BATCH)
            };
            let slices: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|at| {
                let reply = self.unsent.get(at).and_then(|&(index, _)| self.replies.get(index));
                [IoSlice::new(reply.map_or(&[][..], Vec::as_slice))]
            });
            let addresses: [Option<SockaddrStorage>; BATCH] = std::array::from_fn(|at| {
                self.unsent.get(at).map(|&(_, route)| SockaddrStorage::from(route.to))
            });
            let slices = slices.get(..count).unwrap_or_default();
            let addresses = addresses.get(..count).unwrap_or_default();
            let fd = self.socket.as_raw_fd();
            let outcome = with_headers(|headers| {
                let sending = headers.sending(from);
                match from.map(Source::info) {
                    None => {
                        let no_control: [ControlMessage<'_>; 0] = [];
                        sendmmsg(fd, sending, slices, addresses, no_control, MsgFlags::empty())
                            .map(Iterator::count)
                    }
                    Some(info) => {
                        sendmmsg(fd, sending, slices, addresses, [info.control()], MsgFlags::empty())
                            .map(Iterator::count)
                    }
                }
            });
            match outcome {
                Ok(sent_now) => {
                    for (index, route) in self.unsent.drain(..sent_now.min(count)) {
                        let len = self.replies.get(index).map_or(0, Vec::len);
                        sent(context, route.to, Ok(len));
                    }
                }
                Err(Errno::EAGAIN) => return false,
                Err(Errno::EINTR) => {}
                Err(e) => {
                    let (_, route) = self.unsent.remove(0);
                    sent(context, route.to, Err(e.into()));
                }
            }
        }
        true
    }
}

/// A socket's family, and whether it is bound to a wildcard address (and so asked for each
/// datagram's destination): which of a worker's headers it receives with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kind {
    v6: bool,
    destinations: bool,
}

type Multi = MultiHeaders<SockaddrStorage>;

/// The headers `recvmmsg` and `sendmmsg` fill in: they hold raw pointers, so they stay on the
/// worker's thread, each set made for its first batch and reused for every batch after.
///
/// The kernel writes back into each receiving header how much of its address and control room a
/// datagram used, and takes that as the room for the next call (nix does not restore it). So a
/// set receives for one [`Kind`] of socket only, whose datagrams always use the same: an IPv4
/// address after an IPv6 one would leave room for part of it only. A datagram without the
/// control message expected leaves none: those headers are made anew ([`Self::forget_receiving`]).
/// For sending, a set per kind of control message, each header's room exactly that message.
struct Headers {
    receive_v4: Option<Multi>,
    receive_v6: Option<Multi>,
    receive_v4_destinations: Option<Multi>,
    receive_v6_destinations: Option<Multi>,
    send: Option<Multi>,
    send_from_v4: Option<Multi>,
    send_from_v6: Option<Multi>,
}

impl Headers {
    const NONE: Self = Self {
        receive_v4: None,
        receive_v6: None,
        receive_v4_destinations: None,
        receive_v6_destinations: None,
        send: None,
        send_from_v4: None,
        send_from_v6: None,
    };

    fn receiving_slot(&mut self, kind: Kind) -> &mut Option<Multi> {
        match (kind.v6, kind.destinations) {
            (false, false) => &mut self.receive_v4,
            (true, false) => &mut self.receive_v6,
            (false, true) => &mut self.receive_v4_destinations,
            (true, true) => &mut self.receive_v6_destinations,
        }
    }

    /// The headers to receive with on a socket of `kind`.
    fn receiving(&mut self, kind: Kind) -> &mut Multi {
        self.receiving_slot(kind).get_or_insert_with(|| {
            MultiHeaders::preallocate(BATCH, kind.destinations.then(|| pktinfo::control_buffer(kind.v6)))
        })
    }

    /// Drops the headers of `kind`, for the next call to make new ones.
    fn forget_receiving(&mut self, kind: Kind) {
        *self.receiving_slot(kind) = None;
    }

    /// The headers to send replies from `from` with: room for its control message, or none.
    fn sending(&mut self, from: Option<Source>) -> &mut Multi {
        let (slot, v6) = match from {
            None => (&mut self.send, None),
            Some(Source::V4(_)) => (&mut self.send_from_v4, Some(false)),
            Some(Source::V6 { .. }) => (&mut self.send_from_v6, Some(true)),
        };
        slot.get_or_insert_with(|| MultiHeaders::preallocate(BATCH, v6.map(pktinfo::control_buffer)))
    }
}

thread_local! {
    static HEADERS: std::cell::RefCell<Headers> = const { std::cell::RefCell::new(Headers::NONE) };
}

fn with_headers<T>(use_them: impl FnOnce(&mut Headers) -> T) -> T {
    HEADERS.with_borrow_mut(use_them)
}
