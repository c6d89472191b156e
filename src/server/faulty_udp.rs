//! UDP replies through a faults plan ([`super::Config::faults`]): not sent, sent twice, sent
//! late, or held and sent after the next reply, each counted. Every model's UDP loop keeps one
//! of these when faults are configured, and only then: a server without faults never gets here.
//!
//! It must never block: a late or held reply waits in a queue that its loop flushes when it is
//! due ([`FaultyReplies::flush`]); the loop learns when to come back from what
//! [`FaultyReplies::reply`] returns.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use super::datagram::sent;
use super::stats::add;
use super::Context;
use crate::faults::{Plan, REORDER_HOLD};

/// A reply waiting to be sent: when, to whom, what.
#[derive(Debug)]
struct Waiting {
    due: Instant,
    peer: SocketAddr,
    reply: Vec<u8>,
}

/// One UDP loop's faulty replies: its plan, and the replies it holds back.
#[derive(Debug)]
pub(crate) struct FaultyReplies {
    plan: Plan,
    /// Replies sent late, in the order they were delayed.
    late: Vec<Waiting>,
    /// A reply held for the next one to overtake; due when it stops waiting for one.
    held: Option<Waiting>,
}

impl FaultyReplies {
    pub(crate) fn new(plan: Plan) -> Self {
        Self { plan, late: Vec::new(), held: None }
    }

    /// Sends `reply` to `peer` as the plan decides, with `send`. Returns when the loop must come
    /// back to [`Self::flush`] a reply it now holds, if it holds a new one.
    pub(crate) fn reply(
        &mut self,
        reply: &[u8],
        peer: SocketAddr,
        now: Instant,
        context: &Context,
        send: impl Fn(&[u8], SocketAddr) -> io::Result<usize>,
    ) -> Option<Instant> {
        let stats = &context.stats;
        let fate = self.plan.udp_reply();
        if fate.drop {
            add(&stats.fault_udp_dropped, 1);
            return None;
        }
        let copies = if fate.duplicate { 2 } else { 1 };
        if fate.duplicate {
            add(&stats.fault_udp_duplicated, 1);
        }
        if let Some(delay) = fate.delay {
            add(&stats.fault_udp_delayed, 1);
            let due = now + delay;
            for _ in 0..copies {
                self.late.push(Waiting { due, peer, reply: reply.to_vec() });
            }
            return Some(due);
        }
        if fate.reorder && self.held.is_none() {
            add(&stats.fault_udp_reordered, 1);
            let due = now + REORDER_HOLD;
            self.held = Some(Waiting { due, peer, reply: reply.to_vec() });
            if fate.duplicate {
                sent(context, peer, send(reply, peer));
            }
            return Some(due);
        }
        for _ in 0..copies {
            sent(context, peer, send(reply, peer));
        }
        // This one overtook the reply held for it.
        if let Some(held) = self.held.take() {
            sent(context, held.peer, send(&held.reply, held.peer));
        }
        None
    }

    /// Sends every held reply that is due at `now`.
    pub(crate) fn flush(
        &mut self,
        now: Instant,
        context: &Context,
        send: impl Fn(&[u8], SocketAddr) -> io::Result<usize>,
    ) {
        if self.late.iter().any(|waiting| waiting.due <= now) {
            let (due, later): (Vec<Waiting>, Vec<Waiting>) =
                std::mem::take(&mut self.late).into_iter().partition(|waiting| waiting.due <= now);
            self.late = later;
            for waiting in due {
                sent(context, waiting.peer, send(&waiting.reply, waiting.peer));
            }
        }
        if let Some(held) = self.held.take_if(|held| held.due <= now) {
            sent(context, held.peer, send(&held.reply, held.peer));
        }
    }

    /// When the next held reply is due, if any is held.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.late.iter().chain(&self.held).map(|waiting| waiting.due).min()
    }
}
