//! The TCP probes: each opens its own connections, does one thing the lecture's protocol allows,
//! and judges what came back. None of them sends more than a few kilobytes a connection or waits
//! longer than a few timeouts. The first is the lecture's own client; the round trip after every
//! probe ([`alive`]) only tells whether the server still answers.

use std::io::Write;
use std::net::Shutdown;

use super::diagnosis::{self, diagnose};
use super::judge::{self, INVALID};
use super::rubric::Criterion;
use super::wire::{self, ending, End};
use super::{connection, crowd, detect, latency, CheckError, Ctx, Life, Probe, Row, Status};
use crate::net::NetError;

/// Every TCP probe after the lecture's client, in the order they run.
pub(super) const PROBES: &[Probe] = &[
    ("half-close", connection::half_close),
    ("size 1,000", |ctx| size(ctx, 1_000)),
    ("size 1,025", |ctx| size(ctx, 1_025)),
    ("size 2,049", |ctx| size(ctx, 2_049)),
    ("size 10,000", |ctx| size(ctx, 10_000)),
    ("shorter message", shorter),
    ("unicode", unicode),
    ("split character", split_character),
    ("two lines", two_lines),
    ("slow client", connection::slow_client),
    ("empty connection", empty_connection),
    ("invalid utf-8", invalid),
    ("encoding", encoding),
    ("concurrency", concurrency),
    ("persistent", connection::persistent),
    ("many clients", crowd::many_clients),
    ("connect burst", crowd::connect_burst),
    ("latency", latency::tcp),
];

/// The lecture's client: connect, send "hello, world", read the reply, no half-close. An error
/// when nothing accepts the connection: then nothing can be checked.
pub(super) fn lecture_client(ctx: &Ctx) -> Result<Row, CheckError> {
    let name = super::FIRST;
    let reply = wire::tcp_exchange(ctx, &ctx.hello, false, Some(ctx.hello_reply.len()))
        .map_err(|reason| NetError::Connect { addr: ctx.addr, reason })?;
    ctx.heard(&reply.bytes);
    let row = if reply.bytes.is_empty() {
        Row::new(
            name,
            Status::Fail,
            format!(
                "sent \"hello, world\" and waited, without a half-close: no reply, {}",
                ending(&reply, ctx)
            ),
            "Answer as soon as the message has arrived: the lecture's client sends once and waits, without \
             closing its side and without a newline.",
        )
    } else {
        diagnosis::judge(
            name,
            ctx,
            &ctx.hello,
            &reply.bytes,
            "sent \"hello, world\", read once: \"HELLO, WORLD\"",
        )
    };
    Ok(row)
}

/// Whether the server still answers a round trip ("hello, world", then a half-close, on a new
/// connection), and how it failed when it does not. Any reply counts: its rightness is the
/// probes' to judge.
pub(super) fn alive(ctx: &Ctx) -> Life {
    let reply = match wire::tcp_round_trip(ctx, &ctx.hello, 1) {
        Ok(reply) if !reply.bytes.is_empty() => return Life::Answers,
        Ok(reply) => reply,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Life::Stopped(
                "a new connection was refused (the server exited, or closed its listening socket)".to_owned(),
            )
        }
        Err(e) if crate::net::is_timeout(&e) => {
            return Life::Stopped(format!("a new connection was not accepted within {:?}", ctx.timeout))
        }
        Err(e) => return Life::Stopped(format!("a new connection failed: {}", crate::net::describe_io(&e))),
    };
    Life::Stopped(match reply.end {
        End::Closed => "a new connection was closed without a reply".to_owned(),
        End::Reset => "a new connection was reset without a reply".to_owned(),
        End::Quiet | End::Complete => format!("a new connection got no reply within {:?}", ctx.timeout),
    })
}

fn size(ctx: &Ctx, len: usize) -> Row {
    let message = judge::sized_message(ctx, len);
    let want = ctx.upper(&message);
    let reply =
        wire::tcp_exchange(ctx, &message, true, Some(want.len())).map(|r| r.bytes).unwrap_or_default();
    judge::judge_size(ctx, len, &message, &reply)
}

/// A 1,000-byte message, then "hello, world" on a new connection: a server that reuses one
/// buffer and sends more than it received shows the end of the first in the second reply.
fn shorter(ctx: &Ctx) -> Row {
    let long = judge::sized_message(ctx, 1_000);
    let _ = wire::tcp_exchange(ctx, &long, true, Some(ctx.upper(&long).len()));
    let reply = wire::tcp_exchange(ctx, &ctx.hello, true, Some(ctx.hello_reply.len()))
        .map(|r| r.bytes)
        .unwrap_or_default();
    let passed = "\"hello, world\" right after a 1,000-byte message came back exactly";
    let mut row = diagnosis::judge("shorter message", ctx, &ctx.hello, &reply, passed);
    if row.status != Status::Pass {
        row.evidence = format!("\"hello, world\" right after a 1,000-byte message: {}", row.evidence);
    }
    row
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
        ctx.remember(&message);
        stream.write_all(first)?;
        wire::pause();
        let _ = stream.write_all(second);
        let _ = stream.shutdown(Shutdown::Write);
        let mut reply = wire::read_reply(ctx, &mut stream, Some(want.len()));
        wire::read_rest(ctx, &mut stream, &mut reply);
        Ok(reply)
    });
    match reply {
        Ok(reply) => judge::judge_split(ctx, &message, letter, &reply.bytes, &ending(&reply, ctx)),
        Err(e) => Row::new(name, Status::Fail, format!("cannot connect: {e}"), "Keep accepting connections."),
    }
}

/// Two lines in one message: a server that reads one line (readLine, fgets) answers the first.
fn two_lines(ctx: &Ctx) -> Row {
    let message = ctx.text("first line\nsecond line\n");
    let want = ctx.upper(&message);
    let reply =
        wire::tcp_exchange(ctx, &message, true, Some(want.len())).map(|r| r.bytes).unwrap_or_default();
    diagnosis::judge("two lines", ctx, &message, &reply, "two lines sent together came back whole")
}

/// A connection that sends nothing and half-closes, as a port scanner or an impatient client
/// does: a clean close is right; the round trip after it tells whether it ended the server.
fn empty_connection(ctx: &Ctx) -> Row {
    let name = "empty connection";
    match wire::tcp_exchange(ctx, b"", true, None) {
        Err(e) => Row::new(name, Status::Fail, format!("cannot connect: {e}"), "Keep accepting connections."),
        Ok(reply) if reply.bytes.is_empty() && reply.end == End::Closed => Row::new(
            name,
            Status::Pass,
            "a connection that sent nothing and half-closed got a clean close",
            "",
        ),
        // The same flaw as the half-close row's, charged where that one is.
        Ok(reply) if reply.bytes.is_empty() => Row::new(
            name,
            Status::Warn,
            format!("a connection that sent nothing and half-closed got no close: {}", ending(&reply, ctx)),
            "When the client half-closes, finish the reply and close the connection.",
        )
        .charged_to(Criterion::CleanClose),
        Ok(reply) => {
            let diagnosis = diagnose(ctx, b"", &reply.bytes);
            let mut row = diagnosis::wrong(name, ctx, b"", &reply.bytes, &diagnosis);
            if !diagnosis.every_reply() {
                row.evidence = format!(
                    "a connection that sent nothing got {}",
                    diagnosis::show(&reply.bytes, ctx.encoding())
                );
                row.advice = "An empty message has an empty uppercase: send nothing back.".to_owned();
            }
            row
        }
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
    let reply = wire::tcp_round_trip(ctx, &ctx.hello, ctx.hello_reply.len());
    drop(silent);
    match reply {
        Ok(reply) if ctx.answers_hello(&reply.bytes) => {
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
