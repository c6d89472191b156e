//! The UDP probes: each sends from its own socket and waits at most a timeout for each reply.
//! Only the loss probe has more than one datagram in flight (at most 32). The first is the
//! lecture's own client; the round trip after every probe ([`alive`]) only tells whether the
//! server still answers.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::diagnosis::{self, diagnose};
use super::judge::{self, INVALID};
use super::{detect, latency, loss, wire, CheckError, Ctx, Life, Probe, Row, Status};
use crate::net::{is_timeout, NetError, RECEIVE_BUFFER};

/// Every UDP probe after the lecture's client, in the order they run.
pub(super) const PROBES: &[Probe] = &[
    ("size 1,000", |ctx| size(ctx, 1_000)),
    ("size 1,025", |ctx| size(ctx, 1_025)),
    ("size 2,049", |ctx| size(ctx, 2_049)),
    ("size 10,000", |ctx| size(ctx, 10_000)),
    ("size 30,000", |ctx| size(ctx, 30_000)),
    ("shorter message", shorter),
    ("unicode", unicode),
    ("two lines", two_lines),
    ("empty message", empty),
    ("reply source", reply_port),
    ("source port 7", port_seven),
    ("latency", latency::udp),
    ("loss", loss::loss),
    // Last: the lecture's server dies of bytes that are not UTF-8, and these send them.
    ("invalid utf-8", invalid),
    ("encoding", encoding),
];

/// The lecture's client: send "hello, world", wait for the reply. An error when the port
/// refuses datagrams (ICMP port unreachable): then nothing can be checked. Silence is not a
/// refusal: it is this row's failure.
pub(super) fn lecture_client(ctx: &Ctx) -> Result<Row, CheckError> {
    let name = super::FIRST;
    let row = match wire::udp_exchange(ctx, &ctx.hello) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            return Err(NetError::Unreachable { addr: ctx.addr }.into())
        }
        Err(reason) => return Err(CheckError::Setup { what: "cannot send a UDP datagram", reason }),
        Ok(None) => Row::new(
            name,
            Status::Fail,
            format!("sent \"hello, world\": no reply within {:?}", ctx.timeout),
            "Reply to each datagram with sendto() to the address it came from.",
        ),
        Ok(Some(reply)) => {
            ctx.heard(&reply);
            diagnosis::judge(
                name,
                ctx,
                &ctx.hello,
                &reply,
                "sent \"hello, world\": \"HELLO, WORLD\" came back",
            )
        }
    };
    Ok(row)
}

/// Whether the server still answers "hello, world" (a second datagram when the first got no
/// reply, which may have been lost), and how it failed when it does not. Any reply counts.
pub(super) fn alive(ctx: &Ctx) -> Life {
    for _ in 0..2 {
        match wire::udp_exchange(ctx, &ctx.hello) {
            Ok(Some(_)) => return Life::Answers,
            Ok(None) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Life::Stopped(
                    "a datagram was refused (port unreachable): the server exited, or closed its socket"
                        .to_owned(),
                )
            }
            Err(e) => return Life::Stopped(format!("a datagram could not be sent: {e}")),
        }
    }
    Life::Stopped(format!("two datagrams in a row got no reply within {:?} each", ctx.timeout))
}

/// The reply, or nothing when none came (a refusal counts as none).
fn reply(ctx: &Ctx, message: &[u8]) -> Vec<u8> {
    wire::udp_exchange(ctx, message).ok().flatten().unwrap_or_default()
}

fn size(ctx: &Ctx, len: usize) -> Row {
    let message = judge::sized_message(ctx, len);
    let reply = reply(ctx, &message);
    judge::judge_size(ctx, len, &message, &reply)
}

/// A 1,000-byte datagram, then "hello, world": a server that reuses one buffer and sends more
/// than it received shows the end of the first in the second reply.
fn shorter(ctx: &Ctx) -> Row {
    let _ = reply(ctx, &judge::sized_message(ctx, 1_000));
    let reply = reply(ctx, &ctx.hello);
    let passed = "\"hello, world\" right after a 1,000-byte datagram came back exactly";
    let mut row = diagnosis::judge("shorter message", ctx, &ctx.hello, &reply, passed);
    if row.status != Status::Pass {
        row.evidence = format!("\"hello, world\" right after a 1,000-byte datagram: {}", row.evidence);
    }
    row
}

fn unicode(ctx: &Ctx) -> Row {
    let (text, message) = judge::unicode_sample(ctx);
    judge::judge_unicode(ctx, &text, &message, &reply(ctx, &message))
}

/// Two lines in one datagram: a server that answers the first line only shows it here.
fn two_lines(ctx: &Ctx) -> Row {
    let message = ctx.text("first line\nsecond line\n");
    let reply = reply(ctx, &message);
    diagnosis::judge("two lines", ctx, &message, &reply, "two lines in one datagram came back whole")
}

fn empty(ctx: &Ctx) -> Row {
    let name = "empty message";
    match wire::udp_exchange(ctx, b"") {
        Ok(Some(reply)) if reply.is_empty() => {
            Row::new(name, Status::Pass, "an empty datagram got an empty reply", "")
        }
        Ok(Some(reply)) => {
            let diagnosis = diagnose(ctx, b"", &reply);
            let mut row = diagnosis::wrong(name, ctx, b"", &reply, &diagnosis);
            if !diagnosis.every_reply() {
                row.evidence = format!("an empty datagram got {}", diagnosis::show(&reply, ctx.encoding()));
                row.advice =
                    "An empty message has an empty uppercase: reply with an empty datagram.".to_owned();
            }
            row
        }
        _ => Row::new(
            name,
            Status::Warn,
            format!("no reply to an empty datagram within {:?}", ctx.timeout),
            "Reply to an empty datagram with an empty one; a client is waiting for it.",
        ),
    }
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
    ctx.remember(&ctx.hello);
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
