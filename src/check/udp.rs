//! The UDP probes: each sends from its own socket and waits at most a timeout for each reply.
//! Only the loss probe has more than one datagram in flight (at most 32).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::judge::{self, INVALID};
use super::{detect, latency, loss, wire, CheckError, Ctx, Probe, Row, Status};
use crate::net::{is_timeout, NetError, RECEIVE_BUFFER};
use crate::transform::decode_text;

/// Every UDP probe, in the order they run; the first is the basic round trip.
pub(super) const PROBES: &[Probe] = &[
    ("round trip", round_trip),
    ("empty message", empty),
    ("size 1,000", |ctx| size(ctx, 1_000)),
    ("size 1,025", |ctx| size(ctx, 1_025)),
    ("size 2,049", |ctx| size(ctx, 2_049)),
    ("size 10,000", |ctx| size(ctx, 10_000)),
    ("size 30,000", |ctx| size(ctx, 30_000)),
    ("unicode", unicode),
    ("reply source", reply_port),
    ("source port 7", port_seven),
    ("latency", latency::udp),
    ("loss", loss::loss),
    // Last: the lecture's server dies of bytes that are not UTF-8, and these send them.
    ("invalid utf-8", invalid),
    ("encoding", encoding),
];

/// Whether the port refuses datagrams (ICMP port unreachable); silence is not a refusal.
pub(super) fn reachable(ctx: &Ctx) -> Result<(), CheckError> {
    match wire::udp_exchange(ctx, &ctx.hello) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            Err(NetError::Unreachable { addr: ctx.addr }.into())
        }
        Err(reason) => Err(CheckError::Setup { what: "cannot send a UDP datagram", reason }),
        Ok(_) => Ok(()),
    }
}

/// Whether a basic round trip still works.
pub(super) fn alive(ctx: &Ctx) -> bool {
    matches!(wire::udp_exchange(ctx, &ctx.hello), Ok(Some(reply)) if reply == ctx.hello_reply)
}

/// The reply, or nothing when none came (a refusal counts as none).
fn reply(ctx: &Ctx, message: &[u8]) -> Vec<u8> {
    wire::udp_exchange(ctx, message).ok().flatten().unwrap_or_default()
}

fn round_trip(ctx: &Ctx) -> Row {
    let name = "round trip";
    match wire::udp_exchange(ctx, &ctx.hello) {
        Ok(Some(reply)) if reply == ctx.hello_reply => {
            Row::new(name, Status::Pass, "\"hello, world\" came back uppercased", "")
        }
        Ok(Some(reply)) => Row::new(
            name,
            Status::Fail,
            format!("wrong reply {:?}", decode_text(&reply, ctx.encoding())),
            "Send back exactly the uppercase of the datagram.",
        ),
        Ok(None) => Row::new(
            name,
            Status::Fail,
            format!("no reply within {:?}", ctx.timeout),
            "Reply to each datagram with sendto() to the address it came from.",
        ),
        Err(e) => Row::new(name, Status::Fail, format!("refused: {e}"), "Start the server."),
    }
}

fn empty(ctx: &Ctx) -> Row {
    let name = "empty message";
    match wire::udp_exchange(ctx, b"") {
        Ok(Some(reply)) if reply.is_empty() => {
            Row::new(name, Status::Pass, "an empty datagram got an empty reply", "")
        }
        Ok(Some(reply)) => Row::new(
            name,
            Status::Fail,
            format!("an empty datagram got {} bytes back", reply.len()),
            "An empty message has an empty uppercase: reply with an empty datagram.",
        ),
        _ => Row::new(
            name,
            Status::Warn,
            format!("no reply to an empty datagram within {:?}", ctx.timeout),
            "Reply to an empty datagram with an empty one; a client is waiting for it.",
        ),
    }
}

fn size(ctx: &Ctx, len: usize) -> Row {
    let message = judge::sized_message(ctx, len);
    let reply = reply(ctx, &message);
    judge::judge_size(
        ctx,
        len,
        &message,
        &reply,
        "Receive with a 65,535-byte buffer: a datagram is cut to fit.",
    )
}

fn unicode(ctx: &Ctx) -> Row {
    let (text, message) = judge::unicode_sample(ctx);
    judge::judge_unicode(ctx, &text, &message, &reply(ctx, &message))
}

fn invalid(ctx: &Ctx) -> Row {
    judge::judge_invalid(ctx, &reply(ctx, INVALID))
}

fn encoding(ctx: &Ctx) -> Row {
    detect::encoding_row(ctx, |message, _| wire::udp_exchange(ctx, message).ok().flatten())
}

/// An unconnected socket of the target's family bound to `port` of loopback, with the timeout.
fn unconnected(ctx: &Ctx, port: u16) -> io::Result<UdpSocket> {
    let ip = if ctx.addr.is_ipv4() { "127.0.0.1" } else { "::1" };
    let local = SocketAddr::new(ip.parse().map_err(|_| io::Error::other("bad address"))?, port);
    let socket = UdpSocket::bind(local)?;
    socket.set_read_timeout(Some(ctx.wait()))?;
    Ok(socket)
}

/// The first datagram back and where it came from, within the timeout.
fn ask(ctx: &Ctx, socket: &UdpSocket) -> io::Result<Option<(Vec<u8>, SocketAddr)>> {
    socket.send_to(&ctx.hello, ctx.addr)?;
    let mut buffer = vec![0; RECEIVE_BUFFER];
    match socket.recv_from(&mut buffer) {
        Ok((n, from)) => {
            buffer.truncate(n);
            Ok(Some((buffer, from)))
        }
        Err(e) if is_timeout(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The reply must come from the address and port the request went to, or a connected client
/// (and any firewall) drops it.
fn reply_port(ctx: &Ctx) -> Row {
    let name = "reply source";
    match unconnected(ctx, 0).and_then(|socket| ask(ctx, &socket)) {
        Ok(Some((_, from))) if from == ctx.addr => {
            Row::new(name, Status::Pass, format!("the reply came from {from}, where the request went"), "")
        }
        Ok(Some((_, from))) => Row::new(
            name,
            Status::Fail,
            format!("the reply came from {from}, not {}", ctx.addr),
            "Reply from the socket the request arrived on (bind the address clients use).",
        ),
        Ok(None) => Row::new(name, Status::Fail, "no reply to an unconnected socket", "Reply with sendto()."),
        Err(e) => Row::new(name, Status::Skip, format!("cannot probe: {e}"), ""),
    }
}

/// A datagram from source port 7 (echo) must be ignored, or a spoofed one can start an endless
/// loop between the server and an echo service. Needs to bind port 7 (root).
fn port_seven(ctx: &Ctx) -> Row {
    let name = "source port 7";
    // Another check may hold port 7 for a moment: wait for it, within a bound.
    let deadline = ctx.until(ctx.timeout * 5);
    let socket = loop {
        match unconnected(ctx, 7) {
            Ok(socket) => break socket,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Row::new(name, Status::Skip, format!("cannot bind port 7 to probe: {e}"), ""),
        }
    };
    match ask(ctx, &socket) {
        Ok(Some(_)) => Row::new(
            name,
            Status::Warn,
            "answered a datagram from source port 7 (echo): a spoofed one can start a reflection loop",
            "Ignore datagrams from source ports below 1024 and from the server's own port.",
        ),
        Ok(None) => Row::new(name, Status::Pass, "ignored a datagram from source port 7 (echo)", ""),
        Err(e) => Row::new(name, Status::Skip, format!("cannot probe: {e}"), ""),
    }
}
