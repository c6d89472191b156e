//! The server `upcase check --client` plays for the client under test: bound once at the address
//! the client talks to (every address it resolves to: `localhost` is 127.0.0.1 and ::1), then, for
//! each scenario, answering every request with its uppercase as an [`Act`] says: a reply lost,
//! late, sent in segments with pauses, or in Latin-1. The faults are decided by the same seeded
//! plan as `upcase serve`'s ([`crate::faults`]).
//!
//! What it sees (each request) is kept for the evidence. It never waits without a bound: every
//! wait is a poll of at most [`POLL`], and a scenario's end (`stop`) ends every connection within
//! one. It serves nothing but the client under test, on loopback or wherever `--to` points.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::super::CheckError;
use crate::faults::{Faults, TcpFate, UdpFate};
use crate::net::{is_timeout, Transport, RECEIVE_BUFFER};

/// The longest any wait of the stage lasts before it looks at `stop` again.
const POLL: Duration = Duration::from_millis(20);
/// After a request as long as the sentence, how long more bytes (a newline) may take to follow.
const SETTLE: Duration = Duration::from_millis(50);
/// After a shorter request, how long a silence means the client has sent all it will.
const QUIET: Duration = Duration::from_secs(1);
/// After the reply, how long the client has to close before the connection is dropped.
const LINGER: Duration = Duration::from_secs(1);
/// The most of one request kept for the evidence.
const KEPT: usize = 64 * 1024;
/// Connections accepted, or datagrams answered, per socket in one turn of the stage.
const BATCH: usize = 64;
/// Connections answered in one scenario; later ones are closed at once.
const MAX_CONNECTIONS: usize = 32;

/// What the stage does in one scenario.
#[derive(Debug, Clone)]
pub(super) struct Act {
    /// What happens to replies, decided reply by reply.
    pub(super) faults: Faults,
    /// How many replies, from the first, the faults apply to; the rest are sent as they are.
    pub(super) faulty: usize,
    /// The reply to a request.
    pub(super) reply: fn(&[u8]) -> Vec<u8>,
    /// The length of the sentence the client was given: a TCP request this long is complete.
    pub(super) sentence_len: usize,
}

/// What the stage saw in one scenario.
#[derive(Debug, Clone, Default)]
pub(super) struct Seen {
    /// Requests: datagrams, or connections with what each sent before its reply.
    pub(super) requests: usize,
    /// The first request (at most 64 KiB of it), for the evidence.
    pub(super) first: Option<Vec<u8>>,
    /// Replies sent (lost ones not counted).
    pub(super) replies: usize,
}

impl Seen {
    fn request(&mut self, request: &[u8]) {
        self.requests += 1;
        self.first.get_or_insert_with(|| request.get(..KEPT.min(request.len())).unwrap_or_default().to_vec());
    }
}

/// The sockets the client's requests arrive on.
#[derive(Debug)]
pub(super) struct Stage {
    listeners: Vec<TcpListener>,
    sockets: Vec<UdpSocket>,
    addrs: Vec<SocketAddr>,
}

impl Stage {
    /// Binds `transport` on every address `target` resolves to (an address this machine lacks,
    /// such as ::1 without IPv6, is skipped).
    ///
    /// # Errors
    /// [`CheckError::Net`] when `target` does not resolve, [`CheckError::Stage`] when an address
    /// cannot be bound (most often: a server already runs there).
    pub(super) fn bind(target: &str, transport: Transport) -> Result<Self, CheckError> {
        let mut stage = Self { listeners: Vec::new(), sockets: Vec::new(), addrs: Vec::new() };
        let mut first_error = None;
        for addr in crate::net::resolve(target)? {
            let bound = match transport {
                Transport::Tcp => TcpListener::bind(addr).map(|l| stage.listeners.push(l)),
                Transport::Udp => UdpSocket::bind(addr).map(|s| stage.sockets.push(s)),
            };
            match bound {
                Ok(()) => stage.addrs.push(addr),
                Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
                    first_error.get_or_insert(CheckError::Stage { transport, addr, reason: e });
                }
                Err(reason) => return Err(CheckError::Stage { transport, addr, reason }),
            }
        }
        if stage.addrs.is_empty() {
            let unavailable = io::Error::from(io::ErrorKind::AddrNotAvailable);
            let none = || CheckError::Stage {
                transport,
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                reason: unavailable,
            };
            return Err(first_error.unwrap_or_else(none));
        }
        for listener in &stage.listeners {
            listener.set_nonblocking(true).map_err(|reason| setup("make a listener non-blocking", reason))?;
        }
        for socket in &stage.sockets {
            socket.set_nonblocking(true).map_err(|reason| setup("make a UDP socket non-blocking", reason))?;
        }
        Ok(stage)
    }

    /// The first address played at.
    pub(super) fn addr(&self) -> Option<SocketAddr> {
        self.addrs.first().copied()
    }

    /// Plays `act` until `stop` is set, and says what it saw. What an earlier scenario's client
    /// left queued (a connection, a datagram) is thrown away first.
    pub(super) fn play(&self, act: &Act, stop: &AtomicBool) -> Seen {
        self.forget_leftovers();
        let seen = Mutex::new(Seen::default());
        let mut plan = act.faults.plan(0);
        let mut faulty = act.faulty;
        let mut late: Vec<(Instant, usize, SocketAddr, Vec<u8>)> = Vec::new();
        let mut buffer = vec![0; RECEIVE_BUFFER];
        let mut accepted = 0;
        thread::scope(|scope| {
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                for (_, index, peer, reply) in take_due(&mut late, now) {
                    if let Some(socket) = self.sockets.get(index) {
                        let _ = socket.send_to(&reply, peer);
                    }
                }
                let next = late.iter().map(|(due, ..)| due.saturating_duration_since(now)).min();
                self.wait(next.map_or(POLL, |next| next.min(POLL)));
                for listener in &self.listeners {
                    // At most a batch a turn: a client that floods cannot keep the stage from `stop`.
                    for (stream, _) in std::iter::from_fn(|| listener.accept().ok()).take(BATCH) {
                        accepted += 1;
                        if accepted > MAX_CONNECTIONS {
                            // A client connecting over and over gets closed connections, not a
                            // thread each.
                            continue;
                        }
                        let fate = if faulty > 0 { plan.tcp_reply() } else { TcpFate::default() };
                        faulty = faulty.saturating_sub(1);
                        let seen = &seen;
                        scope.spawn(move || answer_connection(stream, fate, act, stop, seen));
                    }
                }
                for (index, socket) in self.sockets.iter().enumerate() {
                    for _ in 0..BATCH {
                        let Ok((len, peer)) = socket.recv_from(&mut buffer) else { break };
                        let request = buffer.get(..len).unwrap_or_default();
                        let fate = if faulty > 0 { plan.udp_reply() } else { UdpFate::default() };
                        faulty = faulty.saturating_sub(1);
                        let mut seen = lock(&seen);
                        seen.request(request);
                        // A client that floods gets no more late replies held than a batch.
                        if fate.drop || (fate.delay.is_some() && late.len() >= BATCH) {
                            continue;
                        }
                        seen.replies += 1;
                        let reply = (act.reply)(request);
                        match fate.delay {
                            Some(delay) => late.push((Instant::now() + delay, index, peer, reply)),
                            None => drop(socket.send_to(&reply, peer)),
                        }
                    }
                }
            }
        });
        seen.into_inner().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits, at most `within`, until a socket of the stage has something to read.
    fn wait(&self, within: Duration) {
        let fds = self.listeners.iter().map(AsFd::as_fd).chain(self.sockets.iter().map(AsFd::as_fd));
        let mut fds: Vec<PollFd<'_>> = fds.map(|fd| PollFd::new(fd, PollFlags::POLLIN)).collect();
        let timeout = PollTimeout::try_from(within.max(Duration::from_millis(1))).unwrap_or(PollTimeout::MAX);
        // An error (EINTR) only makes the stage look again sooner.
        let _ = poll(&mut fds, timeout);
    }

    /// Throws away connections and datagrams queued since the last scenario.
    fn forget_leftovers(&self) {
        for listener in &self.listeners {
            while listener.accept().is_ok() {}
        }
        let mut buffer = vec![0; RECEIVE_BUFFER];
        for socket in &self.sockets {
            while socket.recv_from(&mut buffer).is_ok() {}
        }
    }
}

fn setup(what: &'static str, reason: io::Error) -> CheckError {
    CheckError::Setup { what, reason }
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The late replies due at `now`, taken out of `late`.
fn take_due<T>(
    late: &mut Vec<(Instant, T, SocketAddr, Vec<u8>)>,
    now: Instant,
) -> Vec<(Instant, T, SocketAddr, Vec<u8>)> {
    let (due, later) = std::mem::take(late).into_iter().partition(|(at, ..)| *at <= now);
    *late = later;
    due
}

/// One TCP connection: reads the request (to the client's half-close, or until it has sent the
/// sentence, or falls quiet), answers it as `fate` says, half-closes, and waits a moment for the
/// client to close. Errors end the connection: the client's behaviour is the evidence, not ours.
fn answer_connection(mut stream: TcpStream, fate: TcpFate, act: &Act, stop: &AtomicBool, seen: &Mutex<Seen>) {
    let timeouts = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(POLL)))
        .and_then(|()| stream.set_write_timeout(Some(POLL)));
    if timeouts.is_err() {
        return;
    }
    let _ = stream.set_nodelay(true);
    let (request, open) = read_request(&mut stream, act.sentence_len, stop);
    lock(seen).request(&request);
    if request.is_empty() || !open {
        return;
    }
    let reply = (act.reply)(&request);
    if let Some(delay) = fate.delay {
        pause(delay, stop);
    }
    let (size, gap) = fate.segments.unwrap_or((reply.len().max(1), Duration::ZERO));
    for (i, segment) in reply.chunks(size).enumerate() {
        if i > 0 && !pause(gap, stop) {
            return;
        }
        if !write_all(&mut stream, segment, stop) {
            return;
        }
    }
    lock(seen).replies += 1;
    let _ = stream.shutdown(Shutdown::Write);
    let until = Instant::now() + LINGER;
    let mut sink = [0; 4096];
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(_) => return,
        }
    }
}

/// The request of one connection, and whether the client can still be answered (it did not
/// reset the connection, and the scenario goes on).
fn read_request(stream: &mut TcpStream, sentence_len: usize, stop: &AtomicBool) -> (Vec<u8>, bool) {
    let mut request = Vec::new();
    let mut chunk = vec![0; 16 * 1024];
    let mut last = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            return (request, false);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return (request, true),
            Ok(n) => {
                let room = KEPT.saturating_sub(request.len());
                request.extend_from_slice(chunk.get(..n.min(room)).unwrap_or_default());
                last = Instant::now();
            }
            Err(e) if is_timeout(&e) => {
                let quiet = last.elapsed();
                let complete = request.len() >= sentence_len && quiet >= SETTLE;
                if !request.is_empty() && (complete || quiet >= QUIET) {
                    return (request, true);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return (request, false),
        }
    }
}

/// Writes all of `bytes`, waiting for a client that reads slowly (or not at all) only until the
/// scenario ends; whether it all went.
fn write_all(stream: &mut TcpStream, mut bytes: &[u8], stop: &AtomicBool) -> bool {
    while !bytes.is_empty() {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        match stream.write(bytes) {
            Ok(0) => return false,
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Sleeps `span` in steps of [`POLL`]; `false` if the scenario ended meanwhile.
fn pause(span: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + span;
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        thread::sleep(left.min(POLL));
    }
    false
}
