//! The TCP flows of independent clients, each on its own thread with a blocking socket, the way
//! the lecture's client is written: `rr` on a connection kept open, `crr` with a connection per
//! request (connect, send, half-close, read until the server closes).
//!
//! The same checks and the same failure accounting as the multiplexed flows (`bench::tcp`):
//! every reply compared with the expected uppercase as it arrives, a fresh connection after any
//! failure, no wait longer than the timeout (each read and write is bounded by the socket's own
//! timeout, and the exchange by its deadline).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use tokio::time::Instant;

use super::back_off;
use crate::bench::flow::{Pacer, Problem, Run, Tally};
use crate::bench::mismatch;
use crate::bench::payload::Payload;
use crate::bench::tcp::failed_rr;
use crate::net::{describe_io, is_timeout, RECEIVE_BUFFER};

/// Requests up to this size are written whole and then the reply is read, as a plain blocking
/// client does: the request fits in the server's receive buffer whatever the server does. A
/// larger one is written while the reply is read ([`duplex`]), or a server that answers as it
/// reads could fill both directions' buffers and wait on us forever.
const WRITE_THEN_READ: usize = 16 * 1024;

/// Connects within `timeout`, Nagle's algorithm off, every read and write bounded by `timeout`.
pub(super) fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// How an exchange failed.
enum Failed {
    /// The reply did not end within the timeout.
    TimedOut,
    /// The connection failed.
    Io(io::Error),
}

impl From<io::Error> for Failed {
    fn from(error: io::Error) -> Self {
        if is_timeout(&error) {
            Self::TimedOut
        } else {
            Self::Io(error)
        }
    }
}

/// Where a reply ends: after as many bytes as expected (`rr`), or where the server closes (`crr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    Length,
    Close,
}

/// `rr`: request, reply, next request, on one connection (opened again after any failure).
pub(super) fn rr(
    live: Arc<Run>,
    flow: usize,
    addr: SocketAddr,
    mut payload: Payload,
    initial: io::Result<TcpStream>,
) -> Tally {
    let mut tally = Tally::for_flow(Arc::clone(&live), flow);
    let mut pacer = Pacer::new(Arc::clone(&live), flow);
    let cannot_connect = |e: &io::Error| format!("cannot connect to tcp {addr}: {}", describe_io(e));
    let mut stream = match initial {
        Ok(stream) => Some(stream),
        Err(e) => {
            tally.problem(Problem::Connection, || cannot_connect(&e));
            None
        }
    };
    let mut reply = Reply::new(payload.expected().len());
    let mut sequence = 0u32;
    // Correct replies on the current connection, to tell a server that closes after one.
    let mut answered_here = 0u64;
    while let Some(due) = pacer.next_blocking(&mut tally) {
        let connection = match stream.as_mut() {
            Some(connection) => connection,
            None => match connect(addr, live.timeout) {
                Ok(connection) => {
                    answered_here = 0;
                    stream.insert(connection)
                }
                Err(e) => {
                    tally.problem(Problem::Connection, || cannot_connect(&e));
                    back_off(&live);
                    continue;
                }
            },
        };
        payload.stamp(sequence);
        sequence = sequence.wrapping_add(1);
        let sent = Instant::now();
        let (request, expected) = (payload.request(), payload.expected());
        let outcome = exchange(connection, request, expected, &mut reply, Until::Length, sent + live.timeout);
        tally.bytes_sent += request.len() as u64;
        tally.bytes_received += reply.bytes.len() as u64;
        let got = &reply.bytes;
        match outcome {
            Ok(()) if got == expected => {
                tally.ok(due, sent);
                answered_here += 1;
                continue;
            }
            Ok(()) => tally.problem(Problem::Wrong, || format!("tcp {addr}: {}", mismatch(expected, got))),
            Err(Failed::Io(e)) => tally.problem(Problem::Connection, || {
                failed_rr(addr, &e, answered_here, got.len(), expected.len())
            }),
            Err(Failed::TimedOut) if !expected.starts_with(got) => {
                tally.problem(Problem::Wrong, || format!("tcp {addr}: {}", mismatch(expected, got)));
            }
            Err(Failed::TimedOut) => tally.problem(Problem::Timeout, || {
                format!(
                    "tcp {addr}: {} of {} reply bytes within {:?}, then nothing",
                    got.len(),
                    expected.len(),
                    live.timeout
                )
            }),
        }
        stream = None;
    }
    tally
}

/// `crr`: the lecture's client for every request.
pub(super) fn crr(live: Arc<Run>, flow: usize, addr: SocketAddr, mut payload: Payload) -> Tally {
    let mut tally = Tally::for_flow(Arc::clone(&live), flow);
    let mut pacer = Pacer::new(Arc::clone(&live), flow);
    let mut reply = Reply::new(payload.expected().len());
    let mut sequence = 0u32;
    while let Some(due) = pacer.next_blocking(&mut tally) {
        payload.stamp(sequence);
        sequence = sequence.wrapping_add(1);
        let sent = Instant::now();
        let mut connection = match connect(addr, live.timeout) {
            Ok(connection) => connection,
            Err(e) => {
                tally.problem(Problem::Connection, || {
                    format!("cannot connect to tcp {addr}: {}", describe_io(&e))
                });
                back_off(&live);
                continue;
            }
        };
        let (request, expected) = (payload.request(), payload.expected());
        let outcome =
            exchange(&mut connection, request, expected, &mut reply, Until::Close, sent + live.timeout);
        let got = &reply.bytes;
        tally.bytes_received += got.len() as u64;
        match outcome {
            Ok(()) if got == expected => {
                tally.bytes_sent += request.len() as u64;
                tally.ok(due, sent);
            }
            Ok(()) => tally.problem(Problem::Wrong, || format!("tcp {addr}: {}", mismatch(expected, got))),
            Err(Failed::Io(e)) => tally.problem(Problem::Connection, || {
                format!("tcp {addr}: {} after {} reply bytes", describe_io(&e), got.len())
            }),
            Err(Failed::TimedOut) => tally.problem(Problem::Timeout, || {
                format!("tcp {addr}: no end of reply within {:?} ({} bytes came)", live.timeout, got.len())
            }),
        }
    }
    tally
}

/// Sends `request` and reads its reply into `reply` until it ends (`until`), differs from
/// `expected`, or `give_up` passes.
fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    expected: &[u8],
    reply: &mut Reply,
    until: Until,
    give_up: Instant,
) -> Result<(), Failed> {
    reply.bytes.clear();
    if request.len() > WRITE_THEN_READ {
        stream.set_nonblocking(true)?;
        let outcome = duplex(stream, request, expected, reply, until, give_up);
        stream.set_nonblocking(false)?;
        return outcome;
    }
    let written = stream.write_all(request).and_then(|()| match until {
        Until::Close => stream.shutdown(Shutdown::Write),
        Until::Length => Ok(()),
    });
    // Read even when the write failed: a server may answer, wrongly, before reading it all, and
    // the reply says more than the write.
    loop {
        if reply.read_from(stream, expected, until)? {
            break;
        }
        if Instant::now() >= give_up {
            return Err(Failed::TimedOut);
        }
    }
    written?;
    if Instant::now() > give_up {
        return Err(Failed::TimedOut);
    }
    Ok(())
}

/// [`exchange`] on a non-blocking socket: writes and reads whichever the socket is ready for.
fn duplex(
    stream: &mut TcpStream,
    request: &[u8],
    expected: &[u8],
    reply: &mut Reply,
    until: Until,
    give_up: Instant,
) -> Result<(), Failed> {
    let pending = |e: &io::Error| matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted);
    let mut written = 0;
    loop {
        if let Some(rest) = request.get(written..).filter(|rest| !rest.is_empty()) {
            match stream.write(rest) {
                Ok(n) => {
                    written += n;
                    if written == request.len() && until == Until::Close {
                        stream.shutdown(Shutdown::Write)?;
                    }
                }
                Err(e) if pending(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match reply.read_from(stream, expected, until) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) if pending(&e) => {}
            Err(e) => return Err(e.into()),
        }
        let now = Instant::now();
        if now >= give_up {
            return Err(Failed::TimedOut);
        }
        let events =
            if written < request.len() { PollFlags::POLLIN | PollFlags::POLLOUT } else { PollFlags::POLLIN };
        let wait = PollTimeout::try_from(give_up - now).unwrap_or(PollTimeout::MAX);
        match poll(&mut [PollFd::new(std::os::fd::AsFd::as_fd(&*stream), events)], wait) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Failed::Io(e.into())),
        }
    }
}

/// A flow's reply so far, and the buffer it reads into (both allocated once per flow).
struct Reply {
    bytes: Vec<u8>,
    buffer: Vec<u8>,
}

impl Reply {
    fn new(expected: usize) -> Self {
        let most = expected.saturating_add(1);
        Self { bytes: Vec::with_capacity(most), buffer: vec![0; most.min(RECEIVE_BUFFER)] }
    }

    /// Reads once. `Ok(true)` when the reply is complete, or longer than `expected` (`crr`
    /// reads one byte more, to see that), or differs from it.
    fn read_from(&mut self, stream: &mut TcpStream, expected: &[u8], until: Until) -> io::Result<bool> {
        let start = self.bytes.len();
        let room = match until {
            Until::Length => expected.len().saturating_sub(start),
            Until::Close => (expected.len() + 1).saturating_sub(start),
        };
        let space = self.buffer.get_mut(..room.min(RECEIVE_BUFFER)).unwrap_or_default();
        let n = stream.read(space)?;
        self.bytes.extend_from_slice(space.get(..n).unwrap_or_default());
        if n == 0 {
            return match until {
                Until::Close => Ok(true),
                Until::Length => {
                    Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"))
                }
            };
        }
        let end = self.bytes.len();
        Ok(match until {
            Until::Length => end == expected.len() || self.bytes.get(start..) != expected.get(start..end),
            Until::Close => end > expected.len(),
        })
    }
}
