//! The UDP probes: each sends from its own socket, connected to the target, and waits at most a
//! timeout for each reply. None sends more than one datagram at a time.

use super::{
    ascii_message, expected, judge_invalid, judge_size, judge_unicode, CheckError, Ctx, Probe, Row, Status,
    HELLO, INVALID, UNICODE,
};
use super::{more, wire};

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
    ("reply source", more::reply_port),
    ("source port 7", more::port_seven),
    ("latency", more::udp_latency),
    ("invalid utf-8", invalid),
];

/// Whether the port refuses datagrams (ICMP port unreachable); silence is not a refusal.
pub(super) fn reachable(ctx: &Ctx) -> Result<(), CheckError> {
    match wire::udp_exchange(ctx, HELLO) {
        Err(e) => Err(CheckError::Unreachable { addr: ctx.addr, transport: "udp", reason: e.to_string() }),
        Ok(_) => Ok(()),
    }
}

/// Whether a basic round trip still works.
pub(super) fn alive(ctx: &Ctx) -> bool {
    matches!(wire::udp_exchange(ctx, HELLO), Ok(Some(reply)) if reply == expected(HELLO))
}

/// The reply, or nothing when none came (a refusal counts as none).
fn reply(ctx: &Ctx, message: &[u8]) -> Vec<u8> {
    wire::udp_exchange(ctx, message).ok().flatten().unwrap_or_default()
}

fn round_trip(ctx: &Ctx) -> Row {
    let name = "round trip";
    match wire::udp_exchange(ctx, HELLO) {
        Ok(Some(reply)) if reply == expected(HELLO) => {
            Row::new(name, Status::Pass, "\"hello, world\" came back uppercased", "")
        }
        Ok(Some(reply)) => Row::new(
            name,
            Status::Fail,
            format!("wrong reply {:?}", String::from_utf8_lossy(&reply)),
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
    let message = ascii_message(len);
    judge_size(
        len,
        &message,
        &reply(ctx, &message),
        "Receive with a 65,535-byte buffer: a datagram is cut to fit.",
    )
}

fn unicode(ctx: &Ctx) -> Row {
    judge_unicode(&reply(ctx, UNICODE.as_bytes()))
}

fn invalid(ctx: &Ctx) -> Row {
    judge_invalid(&reply(ctx, INVALID))
}
