//! The TCP probes: each opens its own connections, does one thing the lecture's protocol allows,
//! and judges what came back. None of them sends more than a few kilobytes or waits longer than
//! a few timeouts.

use std::io::Write;
use std::net::Shutdown;

use super::more;
use super::wire::{self, End, Reply};
use super::{
    ascii_message, expected, judge_invalid, judge_size, judge_unicode, CheckError, Ctx, Probe, Row, Status,
    HELLO, INVALID, UNICODE,
};

/// Every TCP probe, in the order they run; the first is the basic round trip.
pub(super) const PROBES: &[Probe] = &[
    ("round trip", round_trip),
    ("empty message", empty),
    ("lecture client", lecture_client),
    ("size 1,000", |ctx| size(ctx, 1_000)),
    ("size 1,025", |ctx| size(ctx, 1_025)),
    ("size 2,049", |ctx| size(ctx, 2_049)),
    ("size 10,000", |ctx| size(ctx, 10_000)),
    ("unicode", unicode),
    ("split character", split_character),
    ("invalid utf-8", invalid),
    ("concurrency", concurrency),
    ("slow client", more::slow_client),
    ("many clients", more::many_clients),
    ("persistent", more::persistent),
    ("latency", more::tcp_latency),
];

/// Whether anything accepts connections at the address.
pub(super) fn reachable(ctx: &Ctx) -> Result<(), CheckError> {
    wire::connect(ctx).map(drop).map_err(|e| CheckError::Unreachable {
        addr: ctx.addr,
        transport: "tcp",
        reason: e.to_string(),
    })
}

/// Whether a basic round trip still works.
pub(super) fn alive(ctx: &Ctx) -> bool {
    let want = expected(HELLO);
    wire::tcp_exchange(ctx, HELLO, true, Some(want.len())).is_ok_and(|reply| reply.bytes == want)
}

/// Says in a few words why a reply ended where it did.
fn ending(reply: &Reply, ctx: &Ctx) -> String {
    match reply.end {
        End::Closed => "then the server closed the connection".to_owned(),
        End::Reset => "then the connection was reset".to_owned(),
        End::Quiet => format!("then nothing for {:?}", ctx.timeout),
        End::Complete => "the connection still open".to_owned(),
    }
}

fn round_trip(ctx: &Ctx) -> Row {
    let name = "round trip";
    let want = expected(HELLO);
    match wire::tcp_exchange(ctx, HELLO, true, Some(want.len())) {
        Err(e) => Row::new(name, Status::Fail, format!("cannot connect: {e}"), "Start the server."),
        Ok(reply) if reply.bytes == want => {
            Row::new(name, Status::Pass, "\"hello, world\" came back uppercased", "")
        }
        Ok(reply) if reply.bytes.is_empty() => Row::new(
            name,
            Status::Fail,
            format!("no reply: {}", ending(&reply, ctx)),
            "Read the message, send back its uppercase, then close.",
        ),
        Ok(reply) => Row::new(
            name,
            Status::Fail,
            format!("wrong reply {:?}", String::from_utf8_lossy(&reply.bytes)),
            "Send back exactly the uppercase of what was read.",
        ),
    }
}

fn empty(ctx: &Ctx) -> Row {
    let name = "empty message";
    match wire::tcp_exchange(ctx, b"", true, None) {
        Err(e) => Row::new(name, Status::Fail, format!("cannot connect: {e}"), "Keep accepting connections."),
        Ok(reply) if reply.bytes.is_empty() && reply.end == End::Closed => {
            Row::new(name, Status::Pass, "connect and half-close got a clean close", "")
        }
        Ok(reply) if reply.bytes.is_empty() => Row::new(
            name,
            Status::Warn,
            format!("connect and half-close got no close: {}", ending(&reply, ctx)),
            "When the client half-closes, finish the reply and close the connection.",
        ),
        Ok(reply) => Row::new(
            name,
            Status::Fail,
            format!("an empty message got {} bytes back", reply.bytes.len()),
            "An empty message has an empty uppercase: send nothing back.",
        ),
    }
}

fn lecture_client(ctx: &Ctx) -> Row {
    let name = "lecture client";
    let want = expected(HELLO);
    match wire::tcp_exchange(ctx, HELLO, false, Some(want.len())) {
        Err(e) => Row::new(name, Status::Fail, format!("cannot connect: {e}"), "Keep accepting connections."),
        Ok(reply) if reply.bytes == want => {
            Row::new(name, Status::Pass, "send once, recv once, no half-close: answered", "")
        }
        Ok(reply) => Row::new(
            name,
            Status::Fail,
            format!(
                "without a half-close the reply was {} bytes, {}",
                reply.bytes.len(),
                ending(&reply, ctx)
            ),
            "Answer as data arrives; do not wait for the client to close its side.",
        ),
    }
}

fn size(ctx: &Ctx, len: usize) -> Row {
    let message = ascii_message(len);
    let want = expected(&message);
    let reply =
        wire::tcp_exchange(ctx, &message, true, Some(want.len())).map(|r| r.bytes).unwrap_or_default();
    judge_size(len, &message, &reply, "Read until the client half-closes (recv returns 0), not once.")
}

fn unicode(ctx: &Ctx) -> Row {
    let want = expected(UNICODE.as_bytes());
    let reply = wire::tcp_exchange(ctx, UNICODE.as_bytes(), true, Some(want.len()))
        .map(|r| r.bytes)
        .unwrap_or_default();
    judge_unicode(&reply)
}

fn split_character(ctx: &Ctx) -> Row {
    let name = "split character";
    let message = "straße".as_bytes();
    let want = expected(message);
    // "stra" and the first byte of ß, then the rest: a character cut across two segments.
    let (first, second) = message.split_at(5);
    let reply = wire::connect(ctx).and_then(|mut stream| {
        stream.write_all(first)?;
        wire::pause();
        let _ = stream.write_all(second);
        let _ = stream.shutdown(Shutdown::Write);
        Ok(wire::read_reply(ctx, &mut stream, Some(want.len())))
    });
    match reply {
        Ok(reply) if reply.bytes == want => {
            Row::new(name, Status::Pass, "ß cut across two segments 50 ms apart came back as SS", "")
        }
        Ok(reply) if reply.bytes == message.to_ascii_uppercase() => Row::new(
            name,
            Status::Warn,
            "ß cut across two segments came back whole, but uppercases ASCII only (STRAßE)",
            "Uppercase with full Unicode rules: ß becomes SS.",
        ),
        Ok(reply) => Row::new(
            name,
            Status::Fail,
            format!(
                "ß cut across two segments: got {:?}, {}",
                String::from_utf8_lossy(&reply.bytes),
                ending(&reply, ctx)
            ),
            "Read until the message is complete, and keep an unfinished character for the next read.",
        ),
        Err(e) => Row::new(name, Status::Fail, format!("cannot connect: {e}"), "Keep accepting connections."),
    }
}

fn invalid(ctx: &Ctx) -> Row {
    let reply = wire::tcp_exchange(ctx, INVALID, true, Some(expected(INVALID).len()))
        .map(|r| r.bytes)
        .unwrap_or_default();
    judge_invalid(&reply)
}

fn concurrency(ctx: &Ctx) -> Row {
    let name = "concurrency";
    // The first client connects and says nothing; the second must not have to wait for it.
    let silent = match wire::connect(ctx) {
        Ok(stream) => stream,
        Err(e) => return Row::new(name, Status::Fail, format!("cannot connect: {e}"), "Keep accepting."),
    };
    let want = expected(HELLO);
    let reply = wire::tcp_exchange(ctx, HELLO, true, Some(want.len()));
    drop(silent);
    match reply {
        Ok(reply) if reply.bytes == want => {
            Row::new(name, Status::Pass, "answered a second client while a first stayed silent", "")
        }
        _ => Row::new(
            name,
            Status::Warn,
            format!(
                "serves one client at a time, like the lecture's first TCP server: a second client waited over {:?}",
                ctx.timeout
            ),
            "Serve each connection on its own thread or task.",
        ),
    }
}
