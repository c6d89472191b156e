//! UDP replies through a faults plan ([`super::Config::faults`]): not sent, sent twice, sent
//! late, or held and sent after the next reply, each counted. Every model's UDP loop keeps one
//! of these when faults are configured, and only then: a server without faults never gets here.
//!
//! A reply keeps its [`Route`] while it waits: on a socket bound to a wildcard address, a late,
//! doubled or held reply leaves from the address its request was sent to, as any other does.
//!
//! It must never block: a late or held reply waits in a queue that its loop flushes when it is
//! due ([`FaultyReplies::flush`]); the loop learns when to come back from what
//! [`FaultyReplies::reply`] returns. Nor grow without bound: past [`HELD_BYTES`] held, a reply to
//! be delayed is dropped instead, as a router whose queue is full drops it, and counted as dropped.

use std::io;
use std::time::Instant;

use super::datagram::sent;
use super::pktinfo::Route;
use super::stats::add;
use super::Context;
use crate::faults::{Plan, REORDER_HOLD};

/// The most reply bytes one loop holds back at once.
pub(crate) const HELD_BYTES: usize = 16 * 1024 * 1024;

/// A reply waiting to be sent: when, to whom (and from where), what.
#[derive(Debug)]
struct Waiting {
    due: Instant,
    route: Route,
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
    /// Bytes in `late`.
    late_bytes: usize,
}

impl FaultyReplies {
    pub(crate) fn new(plan: Plan) -> Self {
        Self { plan, late: Vec::new(), held: None, late_bytes: 0 }
    }

    /// Sends `reply` along `route` as the plan decides, with `send`. Returns when the loop must
    /// come back to [`Self::flush`] a reply it now holds, if it holds a new one.
    pub(crate) fn reply(
        &mut self,
        reply: &[u8],
        route: Route,
        now: Instant,
        context: &Context,
        send: impl Fn(&[u8], Route) -> io::Result<usize>,
    ) -> Option<Instant> {
        let stats = &context.stats;
        let fate = self.plan.udp_reply();
        let copies = if fate.duplicate { 2 } else { 1 };
        let queue_full = fate.delay.is_some() && self.late_bytes + copies * reply.len() > HELD_BYTES;
        if fate.drop || queue_full {
            add(&stats.fault_udp_dropped, 1);
            return None;
        }
        if fate.duplicate {
            add(&stats.fault_udp_duplicated, 1);
        }
        if let Some(delay) = fate.delay {
            add(&stats.fault_udp_delayed, 1);
            let due = now + delay;
            for _ in 0..copies {
                self.late.push(Waiting { due, route, reply: reply.to_vec() });
            }
            self.late_bytes += copies * reply.len();
            return Some(due);
        }
        if fate.reorder && self.held.is_none() {
            add(&stats.fault_udp_reordered, 1);
            let due = now + REORDER_HOLD;
            self.held = Some(Waiting { due, route, reply: reply.to_vec() });
            if fate.duplicate {
                sent(context, route.to, send(reply, route));
            }
            return Some(due);
        }
        for _ in 0..copies {
            sent(context, route.to, send(reply, route));
        }
        // This one overtook the reply held for it.
        if let Some(held) = self.held.take() {
            sent(context, held.route.to, send(&held.reply, held.route));
        }
        None
    }

    /// Sends every held reply that is due at `now`.
    pub(crate) fn flush(
        &mut self,
        now: Instant,
        context: &Context,
        send: impl Fn(&[u8], Route) -> io::Result<usize>,
    ) {
        if self.late.iter().any(|waiting| waiting.due <= now) {
            let (due, later): (Vec<Waiting>, Vec<Waiting>) =
                std::mem::take(&mut self.late).into_iter().partition(|waiting| waiting.due <= now);
            self.late = later;
            self.late_bytes = self.late.iter().map(|waiting| waiting.reply.len()).sum();
            for waiting in due {
                sent(context, waiting.route.to, send(&waiting.reply, waiting.route));
            }
        }
        if let Some(held) = self.held.take_if(|held| held.due <= now) {
            sent(context, held.route.to, send(&held.reply, held.route));
        }
    }

    /// When the next held reply is due, if any is held.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.late.iter().chain(&self.held).map(|waiting| waiting.due).min()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::SocketAddr;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::faults::{Chance, Delay, Faults};
    use crate::server::pktinfo::Source;
    use crate::server::Config;

    fn context(faults: Faults) -> Context {
        Context::new(Config { faults: Some(faults), ..Config::default() })
    }

    #[test]
    fn held_replies_never_grow_past_their_bound() {
        let delay = Delay { by: Duration::from_secs(60), chance: Chance::ALWAYS };
        let context = context(Faults { delay: Some(delay), ..Faults::default() });
        let mut replies = FaultyReplies::new(context.fault_plan(crate::net::Transport::Udp, 0).unwrap());
        let peer = Route { to: SocketAddr::from(([127, 0, 0, 1], 5000)), from: None };
        let never_sent =
            |_: &[u8], _| -> io::Result<usize> { unreachable!("a reply held for a minute was sent") };
        let reply = vec![b'A'; 1024 * 1024];
        let now = Instant::now();
        for _ in 0..20 {
            replies.reply(&reply, peer, now, &context, never_sent);
        }
        assert_eq!(replies.late.len(), HELD_BYTES / reply.len());
        assert_eq!(context.stats.fault_udp_dropped.load(Ordering::Relaxed), 4);
        assert_eq!(replies.next_due(), Some(now + Duration::from_secs(60)));
    }

    /// Routes differ in their source (as on a wildcard address): each reply keeps its own,
    /// held or not.
    #[test]
    fn a_held_reply_is_sent_after_the_next_or_when_due() {
        let context = context(Faults { reorder: Chance::ALWAYS, ..Faults::default() });
        let mut replies = FaultyReplies::new(context.fault_plan(crate::net::Transport::Udp, 0).unwrap());
        let route = |last: u8| Route {
            to: SocketAddr::from(([127, 0, 0, 1], 5000)),
            from: Some(Source::V4(std::net::Ipv4Addr::new(127, 0, 0, last))),
        };
        let sent = std::cell::RefCell::new(Vec::new());
        let send = |bytes: &[u8], route| {
            sent.borrow_mut().push((bytes.to_vec(), route));
            Ok(bytes.len())
        };
        let now = Instant::now();
        assert_eq!(replies.reply(b"ONE", route(2), now, &context, send), Some(now + REORDER_HOLD));
        assert_eq!(replies.reply(b"TWO", route(3), now, &context, send), None);
        assert_eq!(*sent.borrow(), [(b"TWO".to_vec(), route(3)), (b"ONE".to_vec(), route(2))]);
        replies.reply(b"THREE", route(4), now, &context, send);
        replies.flush(now, &context, send);
        assert_eq!(sent.borrow().len(), 2, "not due yet");
        replies.flush(now + REORDER_HOLD, &context, send);
        assert_eq!(sent.borrow().last(), Some(&(b"THREE".to_vec(), route(4))));
        assert_eq!(context.stats.udp_replies.load(Ordering::Relaxed), 3);
    }
}
