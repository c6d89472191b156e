//! The report card of `upcase check`: its rows, the criteria they are grouped into, the score,
//! and the verdict as a word. Data only: [`super::report`] renders it (text, JSON, Gradescope,
//! JUnit), and the CLI turns the verdict into an exit status. Nothing here touches a socket.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::rubric::{self, Criterion, Grade, Rubric};
use super::Options;
use crate::net::Transport;
use crate::transform::Encoding;

/// How a probe went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The server did what the protocol asks.
    Pass,
    /// It works, but a client or an operator would be surprised.
    Warn,
    /// The server broke the protocol, or died.
    Fail,
    /// Not tested: the server died earlier, the budget ran out, or the probe does not apply.
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
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// The probe, e.g. `size 1,025`.
    pub name: String,
    /// The criterion the row is charged to (`None`: shown, not graded).
    pub criterion: Option<Criterion>,
    /// How it went.
    pub status: Status,
    /// One sentence: what was seen.
    pub evidence: String,
    /// One sentence: what to change (empty when there is nothing to change).
    pub advice: String,
}

impl Row {
    /// A row, charged to the criterion its name belongs to.
    pub fn new(name: &str, status: Status, evidence: impl Into<String>, advice: &str) -> Self {
        Self {
            name: name.to_owned(),
            criterion: Criterion::for_row(name),
            status,
            evidence: evidence.into(),
            advice: advice.to_owned(),
        }
    }

    /// This row, charged to another criterion: a flaw every reply shows is charged once, to the
    /// criterion it belongs to, whatever probe saw it.
    pub fn charged_to(self, criterion: Criterion) -> Self {
        Self { criterion: Some(criterion), ..self }
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

/// The card in a word; the CLI's exit status follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// Every row passed (or only measured).
    Pass,
    /// Some rows warned, none failed.
    PassWithWarnings,
    /// A row failed.
    Fail,
    /// Nothing failed, but the budget ran out before every probe had run.
    Incomplete,
    /// Nothing answered at the address, or it did not resolve (a client's card: the client could
    /// not be started): no probe could run.
    CannotRun,
}

impl Verdict {
    /// The word, as in JSON.
    pub fn word(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::PassWithWarnings => "PASS_WITH_WARNINGS",
            Self::Fail => "FAIL",
            Self::Incomplete => "INCOMPLETE",
            Self::CannotRun => "CANNOT_RUN",
        }
    }
}

/// How many rows have each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Rows that passed.
    pub pass: usize,
    /// Rows that warned.
    pub warn: usize,
    /// Rows that failed.
    pub fail: usize,
    /// Rows skipped.
    pub skip: usize,
    /// Rows that only measured.
    pub info: usize,
}

impl Counts {
    fn of(rows: &[Row]) -> Self {
        let count = |status| rows.iter().filter(|row| row.status == status).count();
        Self {
            pass: count(Status::Pass),
            warn: count(Status::Warn),
            fail: count(Status::Fail),
            skip: count(Status::Skip),
            info: count(Status::Info),
        }
    }
}

/// The whole card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Card {
    /// The target as given: the server graded, or, on a client's card, where upcase played the
    /// server.
    pub target: String,
    /// The client's command line, on a client's card (`--client`); `None` on a server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The address it resolved to (`None` when it did not resolve).
    pub addr: Option<SocketAddr>,
    /// The transport graded.
    pub transport: Transport,
    /// The encoding graded in, when one was given (`--encoding`); otherwise UTF-8.
    pub encoding: Option<String>,
    /// The card in a word.
    pub verdict: Verdict,
    /// Why no probe could run, or why the check is incomplete.
    pub problem: Option<String>,
    /// How many rows have each status.
    pub counts: Counts,
    /// Points earned over every criterion.
    pub score: f64,
    /// Points the criteria are worth.
    pub max_score: f64,
    /// Each criterion of the rubric: how it went and its points.
    pub criteria: Vec<Grade>,
    /// Every probe's row, in the order run.
    pub rows: Vec<Row>,
    /// How long the whole check took, in milliseconds.
    pub elapsed_ms: u64,
}

impl Card {
    /// A card, with its verdict and score worked out from the rows.
    ///
    /// `problem`: why nothing could be checked (the verdict is then `CANNOT_RUN`), or why the
    /// budget ended the check before every probe had run (`INCOMPLETE`, unless a row failed).
    pub(super) fn new(
        options: &Options,
        addr: Option<SocketAddr>,
        rows: Vec<Row>,
        elapsed: Duration,
        problem: Option<Problem>,
    ) -> Self {
        let mut card = Self::graded(&options.target, addr, options.transport, rows, elapsed, problem);
        card.encoding = options.encoding.map(|encoding| Encoding::name(encoding).to_owned());
        card.regrade(&options.rubric);
        card
    }

    /// A client's card: `command` graded with upcase playing the server at `target` (`addr`).
    pub(super) fn for_client(
        options: &super::client::ClientOptions,
        addr: Option<SocketAddr>,
        rows: Vec<Row>,
        elapsed: Duration,
        problem: Option<Problem>,
    ) -> Self {
        let mut card = Self::graded(&options.target, addr, options.transport, rows, elapsed, problem);
        card.client = Some(options.command.clone());
        card.regrade(&options.rubric);
        card
    }

    /// A card with its verdict worked out from the rows, not yet scored.
    fn graded(
        target: &str,
        addr: Option<SocketAddr>,
        transport: Transport,
        rows: Vec<Row>,
        elapsed: Duration,
        problem: Option<Problem>,
    ) -> Self {
        let counts = Counts::of(&rows);
        let verdict = match &problem {
            Some(Problem::CannotRun(_)) => Verdict::CannotRun,
            _ if counts.fail > 0 => Verdict::Fail,
            Some(Problem::RanOut(_)) => Verdict::Incomplete,
            None if counts.warn > 0 => Verdict::PassWithWarnings,
            None => Verdict::Pass,
        };
        Self {
            target: target.to_owned(),
            client: None,
            addr,
            transport,
            encoding: None,
            verdict,
            problem: problem.map(Problem::into_words),
            counts,
            score: 0.0,
            max_score: 0.0,
            criteria: Vec::new(),
            rows,
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Adds rows after the probes' (what watching the program under test showed), with the
    /// counts, verdict, criteria and score worked out again, and the time taken so far.
    pub(super) fn append(&mut self, rows: Vec<Row>, rubric: &Rubric, elapsed: Duration) {
        self.rows.extend(rows);
        self.counts = Counts::of(&self.rows);
        self.verdict = match self.verdict {
            Verdict::CannotRun => Verdict::CannotRun,
            _ if self.counts.fail > 0 => Verdict::Fail,
            Verdict::Incomplete => Verdict::Incomplete,
            _ if self.counts.warn > 0 => Verdict::PassWithWarnings,
            _ => Verdict::Pass,
        };
        self.elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        self.regrade(rubric);
    }

    /// Works the criteria and the score out again with another rubric (a grader grading a class
    /// with its own).
    pub fn regrade(&mut self, rubric: &Rubric) {
        self.criteria = rubric::grade(&self.rows, rubric);
        self.score = self.criteria.iter().map(|grade| grade.score).sum();
        self.max_score = self.criteria.iter().map(|grade| grade.max_score).sum();
    }

    /// One line: the verdict, the counts and the score.
    pub fn summary(&self) -> String {
        let Counts { pass, warn, fail, skip, info } = self.counts;
        let mut line = format!(
            "{}: {pass} passed, {warn} warned, {fail} failed, {skip} skipped, {info} measured; score {} of {}",
            self.verdict.word(),
            points(self.score),
            points(self.max_score)
        );
        if let Some(problem) = &self.problem {
            line.push_str(&format!(" ({problem})"));
        }
        line
    }
}

/// Points as people write them: `30`, `7.5`.
pub fn points(points: f64) -> String {
    let text = format!("{points:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// What kept the check from running every probe.
#[derive(Debug)]
pub(super) enum Problem {
    /// No probe could run: the words say why.
    CannotRun(String),
    /// The budget ran out before every probe had run.
    RanOut(Duration),
}

impl Problem {
    fn into_words(self) -> String {
        match self {
            Self::CannotRun(why) => why,
            Self::RanOut(budget) => format!("the {budget:?} budget ran out"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_written_without_trailing_zeros() {
        assert_eq!(points(30.0), "30");
        assert_eq!(points(7.5), "7.5");
        assert_eq!(points(33.333), "33.33");
        assert_eq!(points(0.0), "0");
    }
}
