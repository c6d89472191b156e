//! A reply sent slowly on purpose (`--delay`, `--split`): kept as the exchange's pending reply and
//! written a segment per turn, each turn booked by the worker at its instant. Only the faults
//! plan makes replies paced; an exchange without one never comes here.

use std::io;
use std::time::{Duration, Instant};

use super::super::super::stats::add;
use super::super::super::Context;
use super::{write_some, Exchange, Limit};
use crate::faults::{Plan, TcpFate};

impl Exchange {
    /// Writes what is pending (a segment of it, when it is paced); all of it written frees the
    /// buffer: an idle connection holds none.
    pub(super) fn write_unsent(&mut self, context: &Context, now: Instant) -> io::Result<Written> {
        let mut segment = self.unsent.len();
        if let Some(pacing) = &self.paced {
            if now < pacing.resume_at {
                // Woken early, by the socket: the worker already has a turn booked for it.
                return Ok(Written::Paused(None));
            }
            segment = segment.min(pacing.segment);
        }
        let written = write_some(&self.socket, self.unsent.get(..segment).unwrap_or_default(), context)?;
        if written == self.unsent.len() {
            self.unsent = Vec::new();
            self.paced = None;
            return Ok(Written::All);
        }
        self.unsent.drain(..written);
        match &mut self.paced {
            Some(pacing) if written == segment => {
                pacing.resume_at = now + pacing.pause;
                // The client took the segment: the next one's wait starts now.
                let wait = pacing.pause + context.config.write_timeout;
                let at = pacing.resume_at;
                self.wait_for(Some(wait), Limit::ReplyNotRead, now);
                Ok(Written::Paused(Some(at)))
            }
            _ => Ok(Written::Part),
        }
    }

    /// Asks the faults plan about `reply`: when it is to be late or sent in segments, it becomes
    /// the pending reply, paced, and the instant of its first write comes back.
    pub(super) fn pace(
        &mut self,
        plan: &mut Plan,
        reply: &[u8],
        context: &Context,
        now: Instant,
    ) -> Option<Instant> {
        if reply.is_empty() {
            return None;
        }
        let fate = plan.tcp_reply();
        if fate == TcpFate::default() {
            return None;
        }
        let stats = &context.stats;
        if fate.delay.is_some() {
            add(&stats.fault_tcp_delayed, 1);
        }
        if fate.segments.is_some() {
            add(&stats.fault_tcp_split, 1);
        }
        let (segment, pause) = fate.segments.unwrap_or((usize::MAX, Duration::ZERO));
        let delay = fate.delay.unwrap_or_default();
        let resume_at = now + delay;
        self.unsent.extend_from_slice(reply);
        self.paced = Some(Box::new(Pacing { segment, pause, resume_at }));
        self.wait_for(Some(delay + context.config.write_timeout), Limit::ReplyNotRead, now);
        Some(resume_at)
    }
}

/// A reply sent slowly on purpose: in segments of `segment` bytes, `pause` apart, the next one
/// not before `resume_at`.
#[derive(Debug)]
pub(super) struct Pacing {
    segment: usize,
    pause: Duration,
    resume_at: Instant,
}

/// How much of the pending reply a write got out.
#[derive(Debug)]
pub(super) enum Written {
    /// All of it.
    All,
    /// Part: the socket is full, the client reads slowly.
    Part,
    /// A paced reply waits for its next turn: at this instant, newly booked, or `None` when the
    /// turn is booked already.
    Paused(Option<Instant>),
}
