//! The TCP probes of one connection's life beyond a single message: a slow client, the end of a
//! connection after the client's half-close, and several messages on one connection. Each is
//! bounded by a deadline of a few timeouts, whatever the server does.

use std::io::{self, Write};
use std::net::Shutdown;
use std::time::Duration;

use super::diagnosis::{self, diagnose, show, Content};
use super::wire::{self, ending, End, Reply};
use super::{Ctx, Row, Status};
use crate::net::describe_io;

/// TCP: "hello, world" one byte at a time, 10 ms apart, then a half-close. A server that reads
/// once answers the first byte and closes, so a later byte cannot be sent: that is its finding,
/// not a failure to connect.
pub(super) fn slow_client(ctx: &Ctx) -> Row {
    let name = "slow client";
    let mut stream = match wire::connect(ctx) {
        Ok(stream) => stream,
        Err(e) => {
            let evidence = format!("cannot connect: {}", describe_io(&e));
            return Row::new(name, Status::Fail, evidence, "Keep accepting connections.");
        }
    };
    ctx.remember(&ctx.hello);
    let mut sent = 0;
    let mut broke = None;
    for byte in &ctx.hello {
        if let Err(e) = stream.write_all(std::slice::from_ref(byte)) {
            broke = Some(e);
            break;
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    if broke.is_none() {
        let _ = stream.shutdown(Shutdown::Write);
    }
    let mut reply = wire::read_reply(ctx, &mut stream, Some(ctx.hello_reply.len()));
    wire::read_rest(ctx, &mut stream, &mut reply);
    judge_slow(ctx, sent, broke.as_ref(), &reply)
}

fn judge_slow(ctx: &Ctx, sent: usize, broke: Option<&io::Error>, reply: &Reply) -> Row {
    let name = "slow client";
    let diagnosis = diagnose(ctx, &ctx.hello, &reply.bytes);
    if diagnosis.is_correct() {
        return Row::new(name, Status::Pass, "a message sent one byte at a time came back whole", "");
    }
    match (broke, diagnosis.content) {
        (Some(e), Content::Cut { .. } | Content::Empty) if !diagnosis.every_reply() => Row::new(
            name,
            Status::Fail,
            format!(
                "sent one byte every 10 ms: the server answered {} and closed the connection (sending byte {} \
                 of {} then failed: {}): it reads once",
                show(&reply.bytes, ctx.encoding()),
                sent + 1,
                ctx.hello.len(),
                e.kind()
            ),
            diagnosis::CUT_TCP,
        ),
        _ => {
            let mut row = diagnosis::wrong(name, ctx, &ctx.hello, &reply.bytes, &diagnosis);
            row.evidence = format!("sent one byte every 10 ms: {}", row.evidence);
            row
        }
    }
}

/// TCP: a message, the client's half-close, then the whole reply and the server's close.
pub(super) fn half_close(ctx: &Ctx) -> Row {
    match wire::connect(ctx).map(|mut stream| {
        ctx.remember(&ctx.hello);
        let sent = stream.write_all(&ctx.hello);
        if sent.is_ok() {
            let _ = stream.shutdown(Shutdown::Write);
        }
        wire::read_reply(ctx, &mut stream, None)
    }) {
        Ok(reply) => judge_half_close(ctx, &reply),
        Err(e) => Row::new(
            "half-close",
            Status::Fail,
            format!("connection failed: {e}"),
            "Keep accepting connections.",
        ),
    }
}

/// The whole reply then a close passes; the whole reply and no close is a warn (the client that
/// reads until the end waits forever, but it has its answer); anything less is a fail.
fn judge_half_close(ctx: &Ctx, reply: &Reply) -> Row {
    let name = "half-close";
    let diagnosis = diagnose(ctx, &ctx.hello, &reply.bytes);
    if diagnosis.every_reply() {
        return diagnosis::wrong(name, ctx, &ctx.hello, &reply.bytes, &diagnosis);
    }
    let whole = diagnosis.is_correct();
    match reply.end {
        End::Closed if whole => {
            Row::new(name, Status::Pass, "after the client's half-close: the whole reply, then a close", "")
        }
        End::Quiet | End::Complete if whole => Row::new(
            name,
            Status::Warn,
            format!(
                "the whole reply came back, but the connection stayed open {:?} after the client's half-close",
                ctx.timeout
            ),
            "When recv returns 0, finish the reply and close: a client that reads to the end waits forever.",
        ),
        End::Reset if whole => Row::new(
            name,
            Status::Warn,
            "the whole reply came back, then a reset instead of a close",
            "Close the connection normally once the reply is sent; a reset can destroy unread data.",
        ),
        _ if reply.bytes.is_empty() => Row::new(
            name,
            Status::Fail,
            format!("no reply after the client's half-close: {}", ending(reply, ctx)),
            "A half-close ends the message, not the connection: send the reply, then close.",
        ),
        _ => Row::new(
            name,
            Status::Fail,
            format!("after the client's half-close: {}, {}", diagnosis.evidence(ctx, &ctx.hello, &reply.bytes), ending(reply, ctx)),
            "A half-close ends the message, not the connection: send the whole reply, then close.",
        ),
    }
}

/// TCP: three messages on one connection, each reply read before the next is sent.
pub(super) fn persistent(ctx: &Ctx) -> Row {
    let name = "persistent";
    let outcome = wire::connect(ctx).map(|mut stream| {
        for (n, message) in ["one", "two", "three"].into_iter().enumerate() {
            let message = ctx.text(message);
            let want = ctx.upper(&message);
            ctx.remember(&message);
            let sent = stream.write_all(&message);
            let reply = wire::read_reply(ctx, &mut stream, Some(want.len()));
            // Any reply will do: what is wrong with it is the text probes' to judge.
            if sent.is_err() || reply.bytes.is_empty() || reply.end != End::Complete {
                return n;
            }
        }
        3
    });
    match outcome {
        Ok(3) => Row::new(name, Status::Pass, "three messages on one connection, each answered in turn", ""),
        Ok(n) => Row::new(
            name,
            Status::Info,
            format!("one message per connection: message {} on the same connection got no reply", n + 1),
            "Fine for the lecture's protocol; keep reading after a reply to serve clients that reuse it.",
        ),
        Err(e) => {
            Row::new(name, Status::Fail, format!("connection failed: {e}"), "Keep accepting connections.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn reply(bytes: &[u8], end: End) -> Reply {
        Reply { bytes: bytes.to_vec(), end }
    }

    #[test]
    fn half_close_verdicts() {
        let ctx = Ctx::for_test(Duration::from_millis(500), Duration::from_secs(30), None, Instant::now());
        let whole = b"HELLO, WORLD";
        assert_eq!(judge_half_close(&ctx, &reply(whole, End::Closed)).status, Status::Pass);
        let open = judge_half_close(&ctx, &reply(whole, End::Quiet));
        assert_eq!(open.status, Status::Warn);
        assert!(open.evidence.contains("stayed open 500ms"), "{}", open.evidence);
        assert_eq!(judge_half_close(&ctx, &reply(whole, End::Reset)).status, Status::Warn);
        let silent = judge_half_close(&ctx, &reply(b"", End::Closed));
        assert_eq!(silent.status, Status::Fail);
        assert!(silent.evidence.starts_with("no reply after the client's half-close"), "{}", silent.evidence);
        assert_eq!(judge_half_close(&ctx, &reply(b"", End::Quiet)).status, Status::Fail);
        assert_eq!(judge_half_close(&ctx, &reply(b"HELLO", End::Closed)).status, Status::Fail);
    }
}
