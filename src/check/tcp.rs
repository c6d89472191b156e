//! The TCP probes: each opens its own connections, does one thing the lecture's protocol allows,
//! and judges what came back. None of them sends more than a few kilobytes a connection or waits
//! longer than a few timeouts.

use std::io::Write;
use std::net::Shutdown;

use super::judge::{self, INVALID};
use super::wire::{self, ending, End};
use super::{connection, crowd, detect, latency, CheckError, Ctx, Probe, Row, Status};
use crate::net::NetError;
use crate::transform::decode_text;

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
    ("encoding", encoding),
    ("concurrency", concurrency),
    ("slow client", connection::slow_client),
    ("half-close", connection::half_close),
    ("persistent", connection::persistent),
    ("many clients", crowd::many_clients),
    ("connect burst", crowd::connect_burst),
    ("latency", latency::tcp),
];

/// Whether anything accepts connections at the address.
pub(super) fn reachable(ctx: &Ctx) -> Result<(), CheckError> {
    wire::connect(ctx).map(drop).map_err(|reason| NetError::Connect { addr: ctx.addr, reason }.into())
}

/// Whether a basic round trip still works.
pub(super) fn alive(ctx: &Ctx) -> bool {
    wire::tcp_exchange(ctx, &ctx.hello, true, Some(ctx.hello_reply.len()))
        .is_ok_and(|reply| reply.bytes == ctx.hello_reply)
}

fn round_trip(ctx: &Ctx) -> Row {
    let name = "round trip";
    match wire::tcp_exchange(ctx, &ctx.hello, true, Some(ctx.hello_reply.len())) {
        Err(e) => Row::new(name, Status::Fail, format!("cannot connect: {e}"), "Start the server."),
        Ok(reply) if reply.bytes == ctx.hello_reply => {
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
            format!("wrong reply {:?}", decode_text(&reply.bytes, ctx.encoding())),
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
    match wire::tcp_exchange(ctx, &ctx.hello, false, Some(ctx.hello_reply.len())) {
        Err(e) => Row::new(name, Status::Fail, format!("cannot connect: {e}"), "Keep accepting connections."),
        Ok(reply) if reply.bytes == ctx.hello_reply => {
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
    let message = judge::sized_message(ctx, len);
    let want = ctx.upper(&message);
    let reply =
        wire::tcp_exchange(ctx, &message, true, Some(want.len())).map(|r| r.bytes).unwrap_or_default();
    judge::judge_size(
        ctx,
        len,
        &message,
        &reply,
        "Read until the client half-closes (recv returns 0), not once.",
    )
}

fn unicode(ctx: &Ctx) -> Row {
    let (text, message) = judge::unicode_sample(ctx);
    let want = ctx.upper(&message);
    let reply =
        wire::tcp_exchange(ctx, &message, true, Some(want.len())).map(|r| r.bytes).unwrap_or_default();
    judge::judge_unicode(ctx, &text, &message, &reply)
}

fn split_character(ctx: &Ctx) -> Row {
    let name = "split character";
    let Some((message, at, letter)) = judge::split_sample(ctx) else {
        let evidence = format!("not tested: {} has no multibyte letter to cut in two", ctx.encoding());
        return Row::new(name, Status::Skip, evidence, "");
    };
    let want = ctx.upper(&message);
    // The start of the text and the first byte of the letter, then the rest: a character cut
    // across two segments.
    let (first, second) = message.split_at(at.min(message.len()));
    let reply = wire::connect(ctx).and_then(|mut stream| {
        stream.write_all(first)?;
        wire::pause();
        let _ = stream.write_all(second);
        let _ = stream.shutdown(Shutdown::Write);
        Ok(wire::read_reply(ctx, &mut stream, Some(want.len())))
    });
    match reply {
        Ok(reply) => judge::judge_split(ctx, &message, letter, &reply.bytes, &ending(&reply, ctx)),
        Err(e) => Row::new(name, Status::Fail, format!("cannot connect: {e}"), "Keep accepting connections."),
    }
}

fn invalid(ctx: &Ctx) -> Row {
    let reply = wire::tcp_exchange(ctx, INVALID, true, Some(ctx.upper(INVALID).len()))
        .map(|r| r.bytes)
        .unwrap_or_default();
    judge::judge_invalid(ctx, &reply)
}

fn encoding(ctx: &Ctx) -> Row {
    detect::encoding_row(ctx, |message, replies| {
        wire::tcp_exchange_until(ctx, message, |bytes| replies.iter().any(|reply| reply == bytes))
            .ok()
            .map(|reply| reply.bytes)
    })
}

fn concurrency(ctx: &Ctx) -> Row {
    let name = "concurrency";
    // The first client connects and says nothing; the second must not have to wait for it.
    let silent = match wire::connect(ctx) {
        Ok(stream) => stream,
        Err(e) => return Row::new(name, Status::Fail, format!("cannot connect: {e}"), "Keep accepting."),
    };
    let reply = wire::tcp_exchange(ctx, &ctx.hello, true, Some(ctx.hello_reply.len()));
    drop(silent);
    match reply {
        Ok(reply) if reply.bytes == ctx.hello_reply => {
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
