//! The report card of `upcase check`: its rows, its one-line verdict, and its rendering as a
//! terminal table. It only formats; it never touches a socket or decides an exit status.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use super::Options;
use crate::net::Transport;
use crate::transform::Encoding;

/// How a probe went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The server did what the protocol asks.
    Pass,
    /// It works, but a client or an operator would be surprised.
    Warn,
    /// The server broke the protocol, or died.
    Fail,
    /// Not tested: the server died earlier, the basic round trip failed, the budget ran out, or
    /// the probe does not apply.
    Skip,
    /// A measurement, not a judgement.
    Info,
}

impl Status {
    /// The word shown in the table.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
            Self::Skip => "skip",
            Self::Info => "info",
        }
    }

    /// The ANSI colour code of the label.
    fn colour(self) -> &'static str {
        match self {
            Self::Pass => "32",
            Self::Warn => "33",
            Self::Fail => "31",
            Self::Skip => "90",
            Self::Info => "36",
        }
    }
}

/// One probe's result.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The probe, e.g. `size 1,025`.
    pub name: String,
    /// How it went.
    pub status: Status,
    /// One sentence: what was seen.
    pub evidence: String,
    /// One sentence: what to change (empty when there is nothing to change).
    pub advice: String,
}

impl Row {
    /// A row.
    pub fn new(name: &str, status: Status, evidence: impl Into<String>, advice: &str) -> Self {
        Self { name: name.to_owned(), status, evidence: evidence.into(), advice: advice.to_owned() }
    }

    /// This row, for a probe after which the server stopped answering.
    pub(super) fn died(self) -> Self {
        Self {
            status: Status::Fail,
            evidence: "the server died: it no longer answered a basic round trip after this probe".to_owned(),
            advice: "Never let one message end the server: catch errors per message or per connection."
                .to_owned(),
            ..self
        }
    }

    /// This row, for a probe the check's time budget cut short.
    pub(super) fn cut_short(self, budget: Duration) -> Self {
        Self {
            status: Status::Skip,
            evidence: format!("not finished: the {budget:?} budget ran out during this probe"),
            advice: "Raise --budget, or find out what made the probes above slow.".to_owned(),
            ..self
        }
    }
}

/// The whole card.
#[derive(Debug, Clone, Serialize)]
pub struct Card {
    /// The target as given.
    pub target: String,
    /// The address it resolved to.
    pub addr: SocketAddr,
    /// The transport graded.
    pub transport: Transport,
    /// The encoding graded in, when one was given (`--encoding`); otherwise UTF-8.
    pub encoding: Option<&'static str>,
    /// Every probe's row, in the order run.
    pub rows: Vec<Row>,
    /// One line: the summary.
    pub verdict: String,
    /// How long the whole check took, in milliseconds.
    pub elapsed_ms: u64,
}

impl Card {
    /// A card, with its verdict worked out from the rows.
    ///
    /// `ran_out`: the budget ended the check before every probe had run.
    pub(super) fn new(
        options: &Options,
        addr: SocketAddr,
        rows: Vec<Row>,
        elapsed: Duration,
        ran_out: bool,
    ) -> Self {
        let count = |status| rows.iter().filter(|row| row.status == status).count();
        let (fails, warns, skips) = (count(Status::Fail), count(Status::Warn), count(Status::Skip));
        let passes = count(Status::Pass);
        let head = if fails > 0 {
            "FAIL"
        } else if ran_out {
            // Nothing failed, but not everything ran: not a pass.
            "INCOMPLETE"
        } else if warns > 0 {
            "PASS with warnings"
        } else {
            "PASS"
        };
        let mut verdict = format!("{head}: {passes} passed, {warns} warned, {fails} failed, {skips} skipped");
        if ran_out {
            verdict.push_str(&format!(" (the {:?} budget ran out)", options.budget));
        }
        Self {
            target: options.target.clone(),
            addr,
            transport: options.transport,
            encoding: options.encoding.map(Encoding::name),
            rows,
            verdict,
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Whether any probe failed.
    pub fn failed(&self) -> bool {
        self.rows.iter().any(|row| row.status == Status::Fail)
    }

    /// The card as a table for a terminal, with ANSI colours when `colour`.
    pub fn render(&self, colour: bool) -> String {
        let transport = self.transport.name().to_uppercase();
        let encoding = self.encoding.map(|name| format!(", {name}")).unwrap_or_default();
        let mut out = format!("upcase check: {} ({transport}, {}{encoding})\n\n", self.target, self.addr);
        let width = self.rows.iter().map(|row| row.name.chars().count()).max().unwrap_or(0);
        for row in &self.rows {
            let label = if colour {
                format!("\x1b[{}m{}\x1b[0m", row.status.colour(), row.status.label())
            } else {
                row.status.label().to_owned()
            };
            let _ = writeln!(out, "  {:<width$}  {label}  {}", row.name, row.evidence);
            if !row.advice.is_empty() && matches!(row.status, Status::Warn | Status::Fail) {
                let _ = writeln!(out, "  {:<width$}        -> {}", "", row.advice);
            }
        }
        let seconds = Duration::from_millis(self.elapsed_ms).as_secs_f64();
        let _ = writeln!(out, "\n{}, in {seconds:.1} s", self.verdict);
        out
    }
}
