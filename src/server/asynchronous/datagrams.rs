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
//! A reply the socket cannot take now (its send buffer is full) is kept with the rest of its
//! batch, and reading waits until they are sent, rather than dropping them. With faults on
//! (`serve --drop` ...), each reply goes through the faults plan instead, one at a time.

use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::Instant;

use mio::net::UdpSocket;
use nix::errno::Errno;
use nix::sys::socket::{recvmmsg, sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage};

use super::super::datagram::{answer, failed, sent, RECEIVE_ERROR_PAUSE};
use super::super::faulty_udp::FaultyReplies;
use super::super::Context;
use crate::net::RECEIVE_BUFFER;

/// Datagrams received, and replies sent, per system call.
const BATCH: usize = 16;
/// Batches answered on one socket in one turn before the worker's other sockets get theirs.
const BATCHES_PER_TURN: usize = 4;

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
    /// `BATCH` receive buffers, one after the other, each larger than any datagram.
    requests: Vec<u8>,
    /// A reply buffer per datagram of a batch.
    replies: Vec<Vec<u8>>,
    /// The length and sender of each datagram of the batch just received.
    received: Vec<(usize, Option<SocketAddr>)>,
    /// Replies of the current batch not sent yet: which buffer, and to whom.
    unsent: Vec<(usize, SocketAddr)>,
    /// Replies dropped, delayed, duplicated or reordered on purpose, when faults are on.
    faults: Option<Box<FaultyReplies>>,
}

impl Datagrams {
    pub(super) fn new(socket: UdpSocket, faults: Option<Box<FaultyReplies>>) -> Self {
        let local_port = socket.local_addr().map_or(0, |a| a.port());
        Self {
            socket,
            local_port,
            requests: vec![0; BATCH * RECEIVE_BUFFER],
            replies: vec![Vec::new(); BATCH],
            received: Vec::with_capacity(BATCH),
            unsent: Vec::with_capacity(BATCH),
            faults,
        }
    }

    /// Answers what is queued, a batch at a time, up to [`BATCHES_PER_TURN`] batches.
    pub(super) fn answer(&mut self, context: &Context) -> Turn {
        if let Some(faults) = &mut self.faults {
            let socket = &self.socket;
            faults.flush(Instant::now(), context, |reply: &[u8], peer| socket.send_to(reply, peer));
        }
        if !self.send_unsent(context) {
            return Turn::Waiting;
        }
        let mut due = None;
        for _ in 0..BATCHES_PER_TURN {
            let received = match self.receive() {
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
        let Self { socket, local_port, requests, replies, unsent, received, faults, .. } = self;
        let mut due = None;
        for (index, (&(len, peer), reply)) in received.iter().zip(replies.iter_mut()).take(count).enumerate()
        {
            let Some(peer) = peer else { continue };
            let start = index * RECEIVE_BUFFER;
            let request = requests.get(start..start + len).unwrap_or_default();
            if !answer(request, peer, *local_port, context, reply) {
                continue;
            }
            match faults {
                None => unsent.push((index, peer)),
                Some(faults) => {
                    let send = |reply: &[u8], peer| socket.send_to(reply, peer);
                    if let Some(at) = faults.reply(reply, peer, Instant::now(), context, send) {
                        due = Some(due.map_or(at, |due: Instant| due.min(at)));
                    }
                }
            }
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

    /// One `recvmmsg`: fills `received` with the length and sender of each datagram, in buffer
    /// order, and returns how many came.
    fn receive(&mut self) -> nix::Result<usize> {
        let fd = self.socket.as_raw_fd();
        let (requests, received) = (&mut self.requests, &mut self.received);
        with_headers(|headers| {
            let mut buffers = requests.chunks_mut(RECEIVE_BUFFER);
            let mut slices: [[IoSliceMut<'_>; 1]; BATCH] =
                std::array::from_fn(|_| [IoSliceMut::new(buffers.next().unwrap_or(&mut []))]);
            let results =
                recvmmsg(fd, &mut headers.receiving, slices.iter_mut(), MsgFlags::MSG_DONTWAIT, None)?;
            // At most BATCH entries, into room kept from the first batch: no allocation.
            received.clear();
            received.extend(
                results.map(|message| (message.bytes, message.address.and_then(|a| socket_addr(&a)))),
            );
            Ok(received.len())
        })
    }

    /// Sends the replies not sent yet, a batch per call; `false` when the socket's send buffer is
    /// full and some wait for room (reading must wait too). A reply the kernel refuses for another
    /// reason is counted as a failed send and skipped.
    fn send_unsent(&mut self, context: &Context) -> bool {
        while !self.unsent.is_empty() {
            let count = self.unsent.len().min(BATCH);
            let slices: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|at| {
                let reply = self.unsent.get(at).and_then(|&(index, _)| self.replies.get(index));
                [IoSlice::new(reply.map_or(&[][..], Vec::as_slice))]
            });
            let addresses: [Option<SockaddrStorage>; BATCH] =
                std::array::from_fn(|at| self.unsent.get(at).map(|&(_, peer)| SockaddrStorage::from(peer)));
            let slices = slices.get(..count).unwrap_or_default();
            let addresses = addresses.get(..count).unwrap_or_default();
            let no_control: [ControlMessage<'_>; 0] = [];
            let fd = self.socket.as_raw_fd();
            let outcome = with_headers(|headers| {
                sendmmsg(fd, &mut headers.sending, slices, addresses, no_control, MsgFlags::empty())
                    .map(Iterator::count)
            });
            match outcome {
                Ok(sent_now) => {
                    for (index, peer) in self.unsent.drain(..sent_now.min(count)) {
                        let len = self.replies.get(index).map_or(0, Vec::len);
                        sent(context, peer, Ok(len));
                    }
                }
                Err(Errno::EAGAIN) => return false,
                Err(Errno::EINTR) => {}
                Err(e) => {
                    let (_, peer) = self.unsent.remove(0);
                    sent(context, peer, Err(e.into()));
                }
            }
        }
        true
    }
}

/// The headers `recvmmsg` and `sendmmsg` fill in: they hold raw pointers, so they stay on the
/// worker's thread, made for its first batch and reused for every batch after.
struct Headers {
    receiving: MultiHeaders<SockaddrStorage>,
    sending: MultiHeaders<SockaddrStorage>,
}

thread_local! {
    static HEADERS: std::cell::RefCell<Option<Headers>> = const { std::cell::RefCell::new(None) };
}

fn with_headers<T>(use_them: impl FnOnce(&mut Headers) -> T) -> T {
    HEADERS.with_borrow_mut(|headers| {
        use_them(headers.get_or_insert_with(|| Headers {
            receiving: MultiHeaders::preallocate(BATCH, None),
            sending: MultiHeaders::preallocate(BATCH, None),
        }))
    })
}

/// A sender's address as the standard library writes it.
fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::new(v4.ip(), v4.port())));
    }
    let v6 = address.as_sockaddr_in6()?;
    Some(SocketAddr::V6(SocketAddrV6::new(v6.ip(), v6.port(), v6.flowinfo(), v6.scope_id())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn addresses_of_both_families_are_read_back() {
        for addr in ["127.0.0.1:12000", "[::1]:7"] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(socket_addr(&SockaddrStorage::from(addr)), Some(addr));
        }
    }
}
