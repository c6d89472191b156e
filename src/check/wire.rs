//! Bounded exchanges with the server under test: every wait ends after the check's timeout (or
//! sooner, when the check's budget runs out), and every read is capped, so no server can hang or
//! flood a probe.
//!
//! Nothing here judges a reply; it only reports what came back and how the exchange ended.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use super::Ctx;
use crate::net::{is_timeout, RECEIVE_BUFFER};

/// The most a probe reads back: far more than any probe's correct reply.
const MAX_REPLY: usize = 256 * 1024;

/// How a TCP exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// The server closed the connection (read returned 0).
    Closed,
    /// The connection was reset, or another error ended it.
    Reset,
    /// Nothing arrived for a whole timeout.
    Quiet,
    /// The reply was complete (the connection is still open).
    Complete,
}

/// What came back on a TCP connection.
#[derive(Debug)]
pub(super) struct Reply {
    /// Every byte read.
    pub(super) bytes: Vec<u8>,
    /// Why reading stopped.
    pub(super) end: End,
}

/// Says in a few words why a reply ended where it did.
pub(super) fn ending(reply: &Reply, ctx: &Ctx) -> String {
    match reply.end {
        End::Closed => "then the server closed the connection".to_owned(),
        End::Reset => "then the connection was reset".to_owned(),
        End::Quiet => format!("then nothing for {:?}", ctx.timeout),
        End::Complete => "the connection still open".to_owned(),
    }
}

/// Connects within the timeout, with read and write timeouts set.
pub(super) fn connect(ctx: &Ctx) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&ctx.addr, ctx.wait())?;
    stream.set_read_timeout(Some(ctx.wait()))?;
    stream.set_write_timeout(Some(ctx.wait()))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Reads until the peer closes, `want` bytes have arrived, or nothing arrives for a timeout
/// (and in any case within four timeouts).
pub(super) fn read_reply(ctx: &Ctx, stream: &mut TcpStream, want: Option<usize>) -> Reply {
    read_until(ctx, stream, |bytes| want.is_some_and(|want| bytes.len() >= want))
}

/// Reads until `complete` says the bytes so far are the whole reply, the peer closes, or nothing
/// arrives for a timeout (and in any case within four timeouts).
pub(super) fn read_until(ctx: &Ctx, stream: &mut TcpStream, complete: impl Fn(&[u8]) -> bool) -> Reply {
    let deadline = ctx.until(ctx.timeout * 4);
    let mut bytes = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    let end = loop {
        if complete(&bytes) {
            break End::Complete;
        }
        if Instant::now() >= deadline || bytes.len() >= MAX_REPLY {
            break End::Quiet;
        }
        // Near the end of the budget, a read may not wait a whole timeout.
        if ctx.left() < ctx.timeout {
            let _ = stream.set_read_timeout(Some(ctx.wait()));
        }
        match stream.read(&mut chunk) {
            Ok(0) => break End::Closed,
            Ok(n) => bytes.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => break End::Quiet,
            Err(_) => break End::Reset,
        }
    };
    Reply { bytes, end }
}

/// After a reply is complete, whatever else arrives within [`LINGER`]: the NUL padding or stale
/// bytes of a server that sends more than the reply.
const LINGER: Duration = Duration::from_millis(50);

/// Reads what follows a complete reply, for [`LINGER`] at most after the last byte.
pub(super) fn read_rest(ctx: &Ctx, stream: &mut TcpStream, reply: &mut Reply) {
    if reply.end != End::Complete {
        return;
    }
    let _ = stream.set_read_timeout(Some(LINGER.min(ctx.wait())));
    let mut chunk = vec![0; 64 * 1024];
    while reply.bytes.len() < MAX_REPLY && !ctx.spent() {
        match stream.read(&mut chunk) {
            Ok(0) => {
                reply.end = End::Closed;
                break;
            }
            Ok(n) => reply.bytes.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => break,
            Err(_) => {
                reply.end = End::Reset;
                break;
            }
        }
    }
    let _ = stream.set_read_timeout(Some(ctx.wait()));
}

/// Sends `message` on a new connection and half-closes if asked. A server that closes early
/// makes the write fail; what it sent back still tells the story, so that is not an error.
fn send(ctx: &Ctx, message: &[u8], half_close: bool) -> io::Result<TcpStream> {
    let mut stream = connect(ctx)?;
    ctx.remember(message);
    let sent = stream.write_all(message);
    if half_close && sent.is_ok() {
        let _ = stream.shutdown(Shutdown::Write);
    }
    Ok(stream)
}

/// One exchange on a new connection, for a probe that judges the reply: send `message`,
/// half-close if asked, read the reply (until `want` bytes when given) and whatever follows it.
pub(super) fn tcp_exchange(
    ctx: &Ctx,
    message: &[u8],
    half_close: bool,
    want: Option<usize>,
) -> io::Result<Reply> {
    let mut stream = send(ctx, message, half_close)?;
    let mut reply = read_reply(ctx, &mut stream, want);
    read_rest(ctx, &mut stream, &mut reply);
    Ok(reply)
}

/// One round trip on a new connection, for a probe that only times or counts replies: send
/// `message`, half-close, read until `want` bytes, the server closes, or a timeout.
pub(super) fn tcp_round_trip(ctx: &Ctx, message: &[u8], want: usize) -> io::Result<Reply> {
    let mut stream = send(ctx, message, true)?;
    Ok(read_reply(ctx, &mut stream, Some(want)))
}

/// One exchange on a new connection with a half-close, read until `complete` says the reply is
/// whole (or the server closes, or goes quiet).
pub(super) fn tcp_exchange_until(
    ctx: &Ctx,
    message: &[u8],
    complete: impl Fn(&[u8]) -> bool,
) -> io::Result<Reply> {
    let mut stream = send(ctx, message, true)?;
    Ok(read_until(ctx, &mut stream, complete))
}

/// A UDP socket of the target's family, connected to it, with the timeout set.
pub(super) fn udp_socket(ctx: &Ctx) -> io::Result<UdpSocket> {
    let local: SocketAddr = if ctx.addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
        .parse()
        .map_err(|_| io::Error::other("bad local address"))?;
    let socket = UdpSocket::bind(local)?;
    socket.connect(ctx.addr)?;
    socket.set_read_timeout(Some(ctx.wait()))?;
    Ok(socket)
}

/// One datagram out, the first datagram back within the timeout (`Ok(None)`: nothing came).
/// A refusal (ICMP port unreachable) is an error.
pub(super) fn udp_exchange(ctx: &Ctx, message: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let socket = udp_socket(ctx)?;
    ctx.remember(message);
    socket.send(message)?;
    udp_recv(&socket)
}

/// The next datagram within the socket's timeout, or `None`.
pub(super) fn udp_recv(socket: &UdpSocket) -> io::Result<Option<Vec<u8>>> {
    let mut buffer = vec![0; RECEIVE_BUFFER];
    match socket.recv(&mut buffer) {
        Ok(n) => {
            buffer.truncate(n);
            Ok(Some(buffer))
        }
        Err(e) if is_timeout(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sleeps briefly between the halves of a split write.
pub(super) fn pause() {
    std::thread::sleep(Duration::from_millis(50));
}
