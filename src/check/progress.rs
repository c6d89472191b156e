//! The probes' rows in order, and the round trip after each that tells whether the server still
//! answers. When it does not, the row of the probe it follows says so ("then the server stopped
//! answering", with how the round trip failed) and advises on that death; the rest are skipped,
//! saying why, unless the caller's supervisor revives the server ([`Revival`]). Never probes
//! anything itself but that round trip, through the transport's `alive`.

use std::time::Instant;

use super::{Criterion, Ctx, Row, Status, FIRST};
use crate::net::Transport;

/// The server stopped answering: what a supervisor of the program under test is told.
#[derive(Debug, Clone, Copy)]
pub struct Death<'a> {
    /// The probe after which the round trip failed.
    pub after: &'a str,
    /// Whether restarting it is worth it: not when it never answered anything at all.
    pub restart: bool,
}

/// What the supervisor of the program under test made of a server that stopped answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revival {
    /// There is no supervisor (the server was started by someone else): probing stops there.
    Unsupervised,
    /// It was started again and answers: probing goes on. The sentence (what the program said
    /// as it died, how it came back) is added to the probe's row.
    Restarted(String),
    /// It was not (or could not be) started again: probing stops there. The sentence (its last
    /// words, and why it was not restarted) is added to the probe's row.
    Gone(String),
}

/// Whether the server still answers, after a probe.
#[derive(Debug)]
pub(super) enum Life {
    Answers,
    /// It does not: how the round trip went, in words.
    Stopped(String),
}

/// The rows so far, and whether (and why) the rest are skipped.
pub(super) struct Progress<'a> {
    ctx: &'a Ctx,
    alive: fn(&Ctx) -> Life,
    revive: &'a mut dyn FnMut(Death<'_>) -> Revival,
    rows: Vec<Row>,
    /// Why the rest are skipped, and what to do about it.
    stop: Option<(String, &'static str)>,
    /// The budget ended the check before every probe had run.
    ran_out: bool,
    /// The server stopped answering after the lecture's client already, and was revived: it
    /// stops after any request, one flaw, which later deaths are not charged for again.
    stops_after_any: bool,
}

/// Advice on rows skipped because of a row above.
const FIX_ABOVE: &str = "Fix the rows above, then check again.";
/// Advice on rows the budget did not reach.
const RAISE_BUDGET: &str = "Raise --budget, or find out what made the probes above slow.";

impl<'a> Progress<'a> {
    pub(super) fn new(
        ctx: &'a Ctx,
        alive: fn(&Ctx) -> Life,
        revive: &'a mut dyn FnMut(Death<'_>) -> Revival,
    ) -> Self {
        Self { ctx, alive, revive, rows: Vec::new(), stop: None, ran_out: false, stops_after_any: false }
    }

    /// The rows, and whether the budget ended the check before every probe had run.
    pub(super) fn finish(self) -> (Vec<Row>, bool) {
        (self.rows, self.ran_out)
    }

    /// Whether probing has stopped (a row saying why is added), or the budget has run out.
    pub(super) fn skipped(&mut self, name: &str) -> bool {
        if self.stop.is_none() && self.ctx.spent() {
            self.ran_out = true;
            self.stop = Some((format!("not run: the {:?} budget ran out", self.ctx.budget), RAISE_BUDGET));
        }
        let Some((why, advice)) = &self.stop else { return false };
        self.rows.push(Row::new(name, Status::Skip, why.clone(), advice));
        true
    }

    /// Adds a probe's row, after the round trip that tells whether the server survived it.
    pub(super) fn record(&mut self, name: &str, row: Row) {
        let ctx = self.ctx;
        if ctx.spent() {
            // Cut short: what it saw so far proves nothing either way, unless it already passed.
            if matches!(row.status, Status::Pass | Status::Info) {
                self.rows.push(row);
            } else {
                self.ran_out = true;
                self.rows.push(row.cut_short(ctx.budget));
            }
            return;
        }
        let answered = ctx.heard.get() || self.rows.iter().any(|row| row.status != Status::Skip);
        let how = match (self.alive)(ctx) {
            Life::Answers => return self.rows.push(row),
            // The round trip itself ran out of budget: that tells nothing.
            Life::Stopped(_) if ctx.spent() => return self.rows.push(row),
            Life::Stopped(how) => how,
        };
        let answered_right = matches!(row.status, Status::Pass | Status::Info);
        let mut row = stopped(row, name, &how, answered, ctx.transport);
        let asked = Instant::now();
        let revival = (self.revive)(Death { after: name, restart: answered });
        ctx.extend(asked.elapsed());
        let gone = format!("not run: the server stopped answering after \"{name}\"");
        self.stop = match revival {
            _ if !answered => Some(("not run: the server answers no round trip".to_owned(), FIX_ABOVE)),
            Revival::Restarted(_) => None,
            Revival::Unsupervised | Revival::Gone(_) => Some((gone, FIX_ABOVE)),
        };
        let restarted = matches!(revival, Revival::Restarted(_));
        if let Revival::Restarted(note) | Revival::Gone(note) = revival {
            row.evidence = format!("{}; {note}", row.evidence);
        }
        if self.stops_after_any && answered_right {
            row.evidence.push_str(" (as after the lecture's client: charged there, once)");
            row = row.charged_to(Criterion::LectureClient);
        }
        self.stops_after_any |= name == FIRST && restarted;
        self.rows.push(row);
    }
}

/// The row of the probe after which the server no longer answered a round trip: failed, with
/// how the round trip went and what to do.
fn stopped(row: Row, name: &str, how: &str, answered: bool, transport: Transport) -> Row {
    let evidence = if answered {
        format!("{}; then the server stopped answering: {how}", row.evidence)
    } else {
        let round_trip = match transport {
            Transport::Tcp => "\"hello, world\" then a half-close, on a new connection",
            Transport::Udp => "\"hello, world\" twice",
        };
        format!("{}; the round trip after it ({round_trip}) got no reply either: {how}", row.evidence)
    };
    // Advice for the death a probe of that name causes; when none is known, for the death in
    // general, followed by the row's own advice.
    let died = match name {
        "empty connection" | "empty message" => Some(
            "A client may connect and send nothing: when the first recv returns 0 (Java: readLine() \
             returns null), close that connection and keep serving.",
        ),
        "invalid utf-8" | "encoding" => Some(
            "Never let bytes that are not UTF-8 end the server: Python decode('utf-8', \
             errors='surrogateescape'); Java and C: catch the error for that message and keep serving.",
        ),
        "split character" => Some(
            "Never let a character cut across two reads end the server: keep its first bytes for the \
             next read (Python codecs.getincrementaldecoder('utf-8'), Java CharsetDecoder), and catch \
             errors per connection.",
        ),
        _ => None,
    };
    let general = match (row.status, transport) {
        (Status::Pass, Transport::Udp) => {
            "Keep serving after a datagram is answered: receive in a loop, and never let one message end the server."
        }
        (Status::Pass, Transport::Tcp) => {
            "Keep serving after a client leaves: accept connections in a loop, and never let one client's \
             end or error end the server."
        }
        _ if !answered => "Read the message, send back its uppercase; test with the lecture's client.",
        _ => "Never let one message end the server: catch errors per message or per connection.",
    };
    let advice = match died {
        Some(died) => died.to_owned(),
        None if matches!(row.status, Status::Fail | Status::Warn) && !row.advice.is_empty() => {
            format!("{general} {}", row.advice)
        }
        None => general.to_owned(),
    };
    Row { status: Status::Fail, evidence, advice, ..row }
}
