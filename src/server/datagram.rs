//! The rule for answering one datagram, the same in every model; each model only receives and
//! sends.
//!
//! One datagram is one request; its reply is its uppercase, sent back to the sender from the
//! port it came to. A datagram is read whole into a buffer larger than any UDP payload, so it is
//! never cut. A reply is sent whole or not at all: uppercasing can make text up to three times
//! longer, and a reply that would not fit in one datagram is dropped, logged and counted, never
//! truncated.
//!
//! Before answering, two guards against abuse (see `docs/OPERATIONS.md`): datagrams from ports
//! below 1024 or from the server's own port are ignored (the echo/chargen reflection loop), and
//! each source address has a budget of reply bytes ([`super::rate_limit`]), so a forged source
//! cannot turn the server into an amplifier.
//!
//! Nothing a datagram contains may end a loop: errors, and even a panic while answering one, are
//! counted, logged at most once a second, and the loop reads the next datagram.

use std::io;
use std::net::SocketAddr;

use super::stats::add;
use super::Context;
use crate::net::{MAX_IPV4_PAYLOAD, MAX_IPV6_PAYLOAD};

/// How long a loop pauses after a failed receive.
pub(crate) const RECEIVE_ERROR_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

/// Computes the reply to one datagram that arrived on `local_port` into `reply`; `false` when
/// there must be no reply. Never panics: a bug that would is caught, counted and logged here.
pub(crate) fn answer(
    request: &[u8],
    peer: SocketAddr,
    local_port: u16,
    context: &Context,
    reply: &mut Vec<u8>,
) -> bool {
    let stats = &context.stats;
    add(&stats.udp_requests, 1);
    add(&stats.udp_bytes_in, request.len() as u64);
    if context.config.observed {
        context.histograms.datagram(request.len());
    }
    if (peer.port() < 1024 && !context.config.udp_allow_low_ports) || peer.port() == local_port {
        add(&stats.udp_ignored_source_port, 1);
        log_drop(
            context,
            peer,
            format_args!("source port {} may be a service that answers back", peer.port()),
        );
        return false;
    }
    let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        uppercase_within_limits(request, peer, context, reply)
    }));
    match answered {
        Ok(answered) => answered && within_budget(peer, reply.len(), context),
        Err(_) => {
            add(&stats.panics, 1);
            tracing::error!(client = %peer, "bug: panic while answering a datagram; the server goes on");
            false
        }
    }
}

/// Whether the source's budget covers a reply of `len` bytes (loopback is exempt by default).
fn within_budget(peer: SocketAddr, len: usize, context: &Context) -> bool {
    let Some(budgets) = &context.udp_budgets else { return true };
    if peer.ip().is_loopback() && !context.config.udp_rate_loopback {
        return true;
    }
    if budgets.take(peer.ip(), len, std::time::Instant::now()) {
        return true;
    }
    add(&context.stats.udp_rate_limited, 1);
    log_drop(context, peer, format_args!("reply of {len} bytes is over this source's budget (--udp-rate)"));
    false
}

fn uppercase_within_limits(request: &[u8], peer: SocketAddr, context: &Context, reply: &mut Vec<u8>) -> bool {
    let stats = &context.stats;
    context.inject_fault(request);
    let limit = max_payload(context, peer);
    if request.len() > limit {
        add(&stats.udp_dropped_oversize_requests, 1);
        log_drop(
            context,
            peer,
            format_args!("request of {} bytes exceeds the limit of {limit}", request.len()),
        );
        return false;
    }
    reply.clear();
    let mut uppercaser = context.uppercaser();
    uppercaser.push(request, reply);
    uppercaser.finish(reply);
    add(&stats.invalid_bytes, uppercaser.invalid_bytes());
    if reply.len() > limit {
        add(&stats.udp_dropped_oversize_replies, 1);
        log_drop(
            context,
            peer,
            format_args!(
                "reply of {} bytes (request {}) would not fit in one datagram of {limit}",
                reply.len(),
                request.len()
            ),
        );
        return false;
    }
    true
}

/// Counts the outcome of sending a reply.
pub(crate) fn sent(context: &Context, peer: SocketAddr, result: io::Result<usize>) {
    match result {
        Ok(n) => {
            add(&context.stats.udp_replies, 1);
            add(&context.stats.udp_bytes_out, n as u64);
        }
        Err(e) => failed(context, format_args!("cannot send reply to {peer}: {e}")),
    }
}

/// Counts and logs (throttled) a failed receive or send.
pub(crate) fn failed(context: &Context, what: std::fmt::Arguments<'_>) {
    add(&context.stats.udp_errors, 1);
    if let Some(held_back) = context.udp_log.allow() {
        tracing::warn!(held_back, "{what}");
    }
}

fn log_drop(context: &Context, peer: SocketAddr, why: std::fmt::Arguments<'_>) {
    if let Some(held_back) = context.udp_log.allow() {
        tracing::warn!(client = %peer, reason = %why, held_back, "dropped a datagram");
    }
}

fn max_payload(context: &Context, peer: SocketAddr) -> usize {
    let family = if peer.is_ipv4() { MAX_IPV4_PAYLOAD } else { MAX_IPV6_PAYLOAD };
    context.config.max_datagram.min(family)
}
