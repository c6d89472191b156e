//! Many clients at once, two ways. `many clients` opens 100 connections one after another and
//! only then uses them, then 1,000 when 100 were all answered: can the server hold that many?
//! `connect burst` starts 512 connects in the same instant: are they all accepted in time?
//!
//! Thresholds. many clients: pass when every client of both tiers was answered; fail when a
//! client of the 100 that connected went unanswered; warn when connects were not accepted in
//! time, or at 1,000 only; info when this process may not open 1,000 sockets. connect burst: pass when all 512 connected and were answered; fail when none was
//! answered; warn otherwise. Each tier and the burst end within a few timeouts, whatever the
//! server does, and never hold more sockets than the process may open. A connect that times out
//! is reported as exactly that: from outside, a full listen backlog and a server too busy to call
//! accept() look the same, so the evidence never names one, and the advice names both.

use std::io::{self, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{wire, Ctx, Row, Status};
use crate::format::thousands;
use crate::net::{describe_io, is_timeout};

/// Clients held at once by the first tier of the many-clients probe, and by the second.
const TIERS: [usize; 2] = [100, 1_000];
/// Connects started at once by the burst probe.
const BURST: usize = 512;
/// Files the process needs besides the probe's sockets (stdio, the runtime, a spare).
const HEADROOM: u64 = 64;

/// Advice when connects waited unaccepted. What the check sees is only that: a full listen
/// backlog and a server too busy to call accept() (serving each client before accepting the
/// next, or a thread spinning) look the same from outside, so the advice names both.
const UNACCEPTED_ADVICE: &str = "Connects waited for accept(): listen with a backlog of 1,024 or more \
                                 (Python's listen() allows 128, socketserver 5), accept in a loop that does \
                                 nothing else, and make sure no thread keeps the CPU busy (a loop that ignores \
                                 recv returning 0 spins forever).";

/// How one tier went.
#[derive(Debug)]
struct Tier {
    size: usize,
    connected: usize,
    /// Why connecting stopped before `size`, if it did.
    stop: Option<Stop>,
    answered: usize,
    /// How long the tier had.
    span: Duration,
}

/// Why a tier stopped connecting.
#[derive(Debug)]
enum Stop {
    /// A connect failed: timed out (not accepted in time) or refused.
    Refused(io::Error),
    /// The tier's time ran out first (connects were slow but never failed).
    OutOfTime,
}

impl Tier {
    fn whole(&self) -> bool {
        self.answered == self.size
    }

    /// What happened, in a clause: "connection 131 of 1,000 was not accepted within 500ms (...)".
    fn story(&self, ctx: &Ctx) -> String {
        let (size, connected, answered) =
            (thousands(self.size), thousands(self.connected), thousands(self.answered));
        match &self.stop {
            Some(Stop::Refused(e)) if is_timeout(e) => format!(
                "connection {} of {size} was not accepted within {:?}; the {connected} before it: {answered} \
                 answered",
                thousands(self.connected + 1),
                ctx.timeout,
            ),
            Some(Stop::Refused(e)) => format!(
                "connection {} of {size} failed ({}); the {connected} before it: {answered} answered",
                thousands(self.connected + 1),
                describe_io(e),
            ),
            Some(Stop::OutOfTime) => {
                format!("only {connected} of {size} connected within {:?}; {answered} answered", self.span)
            }
            None => format!("{answered} of {size} answered within {:?}", self.span),
        }
    }
}

/// Opens `size` connections one after another, then sends on each and half-closes, then reads
/// each reply; all within five timeouts.
fn tier(ctx: &Ctx, size: usize) -> Tier {
    let span = ctx.timeout * 5;
    let deadline = ctx.until(span);
    let mut streams = Vec::with_capacity(size);
    let mut stop = None;
    while streams.len() < size {
        if Instant::now() >= deadline {
            stop = Some(Stop::OutOfTime);
            break;
        }
        match wire::connect(ctx) {
            Ok(stream) => streams.push(stream),
            Err(e) => {
                stop = Some(Stop::Refused(e));
                break;
            }
        }
    }
    ctx.remember(&ctx.hello);
    for stream in &mut streams {
        let _ = stream.write_all(&ctx.hello);
        let _ = stream.shutdown(Shutdown::Write);
    }
    let mut answered = 0;
    for stream in &mut streams {
        if Instant::now() >= deadline {
            break;
        }
        if ctx.answers_hello(&wire::read_reply(ctx, stream, Some(ctx.hello_reply.len())).bytes) {
            answered += 1;
        }
    }
    Tier { size, connected: streams.len(), stop, answered, span }
}

/// Files this process may open, after raising its soft limit to the hard one (best effort; when
/// the limit cannot be read, the sockets that fail are counted instead).
fn open_files_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(u64::MAX)
}

/// Whether this process may hold `sockets` sockets at once.
fn room_for(sockets: usize) -> Result<(), u64> {
    let limit = open_files_limit();
    if limit >= u64::try_from(sockets).unwrap_or(u64::MAX).saturating_add(HEADROOM) {
        Ok(())
    } else {
        Err(limit)
    }
}

/// TCP: 100 clients at once, then 1,000.
pub(super) fn many_clients(ctx: &Ctx) -> Row {
    let name = "many clients";
    let [small, large] = TIERS;
    let first = tier(ctx, small);
    if first.answered < first.connected {
        return Row::new(
            name,
            Status::Fail,
            format!("{small} clients at once: {}", first.story(ctx)),
            "Serve connections concurrently and never drop one.",
        );
    }
    if !first.whole() {
        return Row::new(
            name,
            Status::Warn,
            format!("{small} clients at once: {}", first.story(ctx)),
            UNACCEPTED_ADVICE,
        );
    }
    if let Err(limit) = room_for(large) {
        return Row::new(
            name,
            Status::Info,
            format!(
                "{small} clients at once were all answered; {} not tested: this process may open only {} \
                 files (ulimit -n)",
                thousands(large),
                thousands(usize::try_from(limit).unwrap_or(usize::MAX))
            ),
            "",
        );
    }
    let second = tier(ctx, large);
    if second.whole() {
        let evidence =
            format!("{small}, then {} clients connected at once were all answered", thousands(large));
        return Row::new(name, Status::Pass, evidence, "");
    }
    let advice = if matches!(second.stop, Some(Stop::Refused(_))) {
        UNACCEPTED_ADVICE
    } else {
        "Raise the server's open-file limit, avoid select() (it stops at 1,024), and never drop a connection."
    };
    Row::new(
        name,
        Status::Warn,
        format!("{small} clients at once were all answered; at {}: {}", thousands(large), second.story(ctx)),
        advice,
    )
}

/// How the burst went.
#[derive(Debug, Default)]
struct Burst {
    connected: usize,
    timed_out: usize,
    refused: usize,
    /// Connects that failed otherwise, and the first such error.
    failed: usize,
    error: Option<String>,
    answered: usize,
}

/// TCP: [`BURST`] connects started at once, each given a timeout; then every connection that was
/// made sends, half-closes and reads its reply, all within two more timeouts.
pub(super) fn connect_burst(ctx: &Ctx) -> Row {
    let name = "connect burst";
    if let Err(limit) = room_for(BURST) {
        let evidence = format!("not tested: this process may open only {limit} files (ulimit -n)");
        return Row::new(name, Status::Info, evidence, "");
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return Row::new(name, Status::Skip, format!("cannot start a runtime: {e}"), ""),
    };
    let burst = runtime.block_on(burst(ctx));
    judge_burst(ctx, &burst)
}

async fn burst(ctx: &Ctx) -> Burst {
    let wait = ctx.wait();
    // Polling them together sends every SYN before any handshake is waited for.
    let connects = (0..BURST).map(|_| tokio::time::timeout(wait, tokio::net::TcpStream::connect(ctx.addr)));
    let mut burst = Burst::default();
    let mut streams = Vec::with_capacity(BURST);
    for outcome in join_all(connects).await {
        match outcome {
            Ok(Ok(stream)) => streams.push(stream),
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => burst.refused += 1,
            Ok(Err(e)) => {
                burst.failed += 1;
                burst.error.get_or_insert_with(|| e.to_string());
            }
            Err(_) => burst.timed_out += 1,
        }
    }
    burst.connected = streams.len();
    ctx.remember(&ctx.hello);
    let until = tokio::time::Instant::from_std(ctx.until(ctx.timeout * 2));
    let exchanges = streams.into_iter().map(|stream| tokio::time::timeout_at(until, exchange(stream, ctx)));
    burst.answered =
        join_all(exchanges).await.into_iter().filter(|answered| matches!(answered, Ok(true))).count();
    burst
}

/// Sends the basic message on a connection, half-closes, and tells whether the reply was right.
async fn exchange(mut stream: tokio::net::TcpStream, ctx: &Ctx) -> bool {
    if stream.write_all(&ctx.hello).await.is_err() {
        return false;
    }
    let _ = stream.shutdown().await;
    let mut reply = Vec::with_capacity(ctx.hello_reply.len());
    let mut chunk = [0; 256];
    while reply.len() < ctx.hello_reply.len() {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    }
    ctx.answers_hello(&reply)
}

fn judge_burst(ctx: &Ctx, burst: &Burst) -> Row {
    let name = "connect burst";
    let total = thousands(BURST);
    if burst.connected == BURST && burst.answered == BURST {
        return Row::new(
            name,
            Status::Pass,
            format!("{total} connects at once were all accepted and answered"),
            "",
        );
    }
    let mut parts = Vec::new();
    if burst.timed_out > 0 {
        parts.push(format!("{} timed out after {:?}", burst.timed_out, ctx.timeout));
    }
    if burst.refused > 0 {
        parts.push(format!("{} were refused", burst.refused));
    }
    if let Some(error) = &burst.error {
        parts.push(format!("{} failed ({error})", burst.failed));
    }
    let answered = if burst.answered == burst.connected {
        format!("the {} that connected were all answered", burst.connected)
    } else {
        format!("of the {} that connected, {} were answered", burst.connected, burst.answered)
    };
    parts.push(answered);
    let evidence = format!("{total} connects at once: {}", parts.join(", "));
    if burst.answered == 0 {
        return Row::new(
            name,
            Status::Fail,
            evidence,
            "Keep answering when many connections arrive at once.",
        );
    }
    let advice = if burst.connected < BURST {
        UNACCEPTED_ADVICE
    } else {
        "Answer every connection accepted, however many arrive at once."
    };
    Row::new(name, Status::Warn, evidence, advice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_that_overflows_the_backlog_is_a_warn_and_silence_a_fail() {
        let ctx = Ctx::for_test(Duration::from_millis(500), Duration::from_secs(30), None, Instant::now());
        let full = Burst { connected: BURST, answered: BURST, ..Burst::default() };
        assert_eq!(judge_burst(&ctx, &full).status, Status::Pass);
        let overflow = Burst { connected: 130, timed_out: 382, answered: 130, ..Burst::default() };
        let row = judge_burst(&ctx, &overflow);
        assert_eq!(row.status, Status::Warn);
        assert_eq!(
            row.evidence,
            "512 connects at once: 382 timed out after 500ms, the 130 that connected were all answered"
        );
        assert!(row.advice.contains("backlog"));
        let silent = Burst { connected: BURST, ..Burst::default() };
        assert_eq!(judge_burst(&ctx, &silent).status, Status::Fail);
    }
}
