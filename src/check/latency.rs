//! The `latency` row: up to [`SAMPLES`] round trips timed one after another, summarised as
//! percentiles. A measurement, not a judgement, unless a round trip goes unanswered (a reply
//! counts whatever else is wrong with it: the text probes judge that, once).

use std::time::{Duration, Instant};

use super::{wire, Ctx, Row, Status};

/// Round trips timed by the latency probes.
const SAMPLES: usize = 300;

/// Percentiles of the durations, in microseconds, as "p50 X µs, p99 Y µs".
fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort_unstable();
    let at = |q: usize| samples.get((samples.len() * q / 100).min(samples.len().saturating_sub(1)));
    let us = |d: Option<&Duration>| d.map_or(0, Duration::as_micros);
    format!("p50 {} µs, p99 {} µs over {} round trips", us(at(50)), us(at(99)), samples.len())
}

/// Times up to [`SAMPLES`] round trips of `one` for at most five timeouts (or what is left of
/// the budget); info, or a fail when one went unanswered.
fn latency(ctx: &Ctx, mut one: impl FnMut() -> bool) -> Row {
    let name = "latency";
    let deadline = ctx.until(ctx.timeout * 5);
    let mut samples = Vec::with_capacity(SAMPLES);
    while samples.len() < SAMPLES && Instant::now() < deadline {
        let start = Instant::now();
        if !one() {
            // Cut short by the check's budget: what was measured stands.
            if ctx.spent() {
                break;
            }
            return Row::new(
                name,
                Status::Fail,
                format!("round trip {} of {SAMPLES} went unanswered", samples.len() + 1),
                "Answer every request, however many came before.",
            );
        }
        samples.push(start.elapsed());
    }
    Row::new(name, Status::Info, percentiles(samples), "")
}

/// TCP: a new connection per round trip, as the lecture's client does.
pub(super) fn tcp(ctx: &Ctx) -> Row {
    latency(ctx, || {
        wire::tcp_round_trip(ctx, &ctx.hello, ctx.hello_reply.len())
            .is_ok_and(|r| ctx.answers_hello(&r.bytes))
    })
}

/// UDP: one socket, a datagram per round trip.
pub(super) fn udp(ctx: &Ctx) -> Row {
    match wire::udp_socket(ctx) {
        Ok(socket) => latency(ctx, || {
            ctx.remember(&ctx.hello);
            socket.send(&ctx.hello).is_ok()
                && matches!(wire::udp_recv(&socket), Ok(Some(reply)) if ctx.answers_hello(&reply))
        }),
        Err(e) => Row::new("latency", Status::Skip, format!("cannot open a socket: {e}"), ""),
    }
}
