//! The card in each format a reader needs: a table for a terminal, JSON for scripts, Gradescope's
//! autograder `results.json` (a test per criterion, worth its points), and JUnit XML for
//! classrooms that grade in CI (a test case per row). Every format carries the same card, an
//! unreachable server's too.
//!
//! Formatting only: nothing here probes, judges, or decides an exit status.

use std::fmt::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use super::card::{points, Card, Row, Status, Verdict};
use super::rubric::{Grade, Outcome};

/// Why a card could not be written in a format.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// As JSON.
    #[error("cannot write the card as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// As JUnit XML.
    #[error("cannot write the card as JUnit XML: {0}")]
    Junit(#[from] quick_junit::SerializeError),
}

/// The first line of every card: what was checked.
pub fn heading(card: &Card) -> String {
    let transport = card.transport.name().to_uppercase();
    let addr = card.addr.map(|addr| format!(", {addr}")).unwrap_or_default();
    if let Some(command) = &card.client {
        return format!(
            "upcase check --client: `{command}` ({transport}, server played at {}{addr})",
            card.target
        );
    }
    let encoding = card.encoding.as_deref().map(|name| format!(", {name}")).unwrap_or_default();
    format!("upcase check: {} ({transport}{addr}{encoding})", card.target)
}

/// How the round trip after every probe is described on a server's card; how the scenarios ran,
/// on a client's.
fn round_trips(card: &Card) -> &'static str {
    if card.client.is_some() {
        return "Each scenario ran the client once, a sentence on its stdin, with upcase playing the server; a \
                client still running at the scenario's end was stopped, with every process it started.";
    }
    match card.transport {
        crate::net::Transport::Tcp => {
            "After every probe, a round trip (\"hello, world\", then a half-close, on a new connection) \
             checked that the server still answered; a row says when it did not."
        }
        crate::net::Transport::Udp => {
            "After every probe, a round trip (\"hello, world\"; a second one if no reply came) checked that \
             the server still answered; a row says when it did not."
        }
    }
}

/// The ANSI colour code of a status or an outcome's label.
fn colour(label: &str) -> &'static str {
    match label {
        "pass" => "32",
        "warn" => "33",
        "fail" => "31",
        "info" => "36",
        _ => "90",
    }
}

/// The card as a table for a terminal, with ANSI colours when `colour`.
pub fn text(card: &Card, colour_on: bool) -> String {
    let paint = |label: &str| {
        if colour_on {
            format!("\x1b[{}m{label}\x1b[0m", colour(label))
        } else {
            label.to_owned()
        }
    };
    let mut out = format!("{}\n\n", heading(card));
    let width = card.rows.iter().map(|row| row.name.chars().count()).max().unwrap_or(0);
    for row in &card.rows {
        let _ = writeln!(out, "  {:<width$}  {}  {}", row.name, paint(row.status.label()), row.evidence);
        if !row.advice.is_empty() && matches!(row.status, Status::Warn | Status::Fail) {
            let _ = writeln!(out, "  {:<width$}        -> {}", "", row.advice);
        }
    }
    out.push('\n');
    let width = card.criteria.iter().map(|grade| grade.title.chars().count()).max().unwrap_or(0);
    let score_width = card.criteria.iter().map(|grade| score(grade).len()).max().unwrap_or(0);
    for grade in &card.criteria {
        let label = outcome(grade.outcome);
        let charged = flagged(card, grade);
        let because = if charged.is_empty() { String::new() } else { format!("  ({})", charged.join(", ")) };
        let _ = writeln!(
            out,
            "  {:<width$}  {:>score_width$}  {}{because}",
            grade.title,
            score(grade),
            paint(label)
        );
    }
    out.push('\n');
    if card.verdict != Verdict::CannotRun {
        let _ = writeln!(out, "{}", round_trips(card));
    }
    let seconds = Duration::from_millis(card.elapsed_ms).as_secs_f64();
    let _ = writeln!(out, "{}, in {seconds:.1} s", card.summary());
    out
}

/// "7.5 / 15".
fn score(grade: &Grade) -> String {
    format!("{} / {}", points(grade.score), points(grade.max_score))
}

/// The word for how a criterion went.
fn outcome(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "pass",
        Outcome::Warn => "warn",
        Outcome::Fail => "fail",
        Outcome::Untested => "untested",
    }
}

/// The rows of a criterion that cost it points.
fn flagged<'a>(card: &'a Card, grade: &Grade) -> Vec<&'a str> {
    card.rows
        .iter()
        .filter(|row| {
            row.criterion == Some(grade.criterion) && matches!(row.status, Status::Fail | Status::Warn)
        })
        .map(|row| row.name.as_str())
        .collect()
}

/// The card as one JSON object: every field of [`Card`].
///
/// # Errors
/// [`ReportError::Json`] if serialising fails (it does not for a card).
pub fn json(card: &Card) -> Result<String, ReportError> {
    Ok(serde_json::to_string_pretty(card)?)
}

/// Gradescope's autograder results (`/autograder/results/results.json`).
#[derive(Debug, Serialize)]
struct Results {
    score: f64,
    output: String,
    tests: Vec<Test>,
}

/// One test of Gradescope's results: here, one criterion.
#[derive(Debug, Serialize)]
struct Test {
    name: String,
    score: f64,
    max_score: f64,
    status: &'static str,
    output: String,
}

/// A row as a line of text: its status, name, evidence and, when it is wrong, the advice.
fn row_line(row: &Row) -> String {
    let mut line = format!("{}  {}: {}", row.status.label(), row.name, row.evidence);
    if !row.advice.is_empty() && matches!(row.status, Status::Warn | Status::Fail) {
        line.push_str(&format!("\n      -> {}", row.advice));
    }
    line
}

/// The card in Gradescope's autograder format: a test per criterion with its points, passed
/// only with all of them, its output the rows charged to it; the whole card's summary as the
/// submission's output (with any row no criterion claims).
///
/// # Errors
/// [`ReportError::Json`] if serialising fails (it does not for a card).
pub fn gradescope(card: &Card) -> Result<String, ReportError> {
    let tests = card
        .criteria
        .iter()
        .map(|grade| {
            let rows: Vec<String> =
                card.rows.iter().filter(|row| row.criterion == Some(grade.criterion)).map(row_line).collect();
            let output = if rows.is_empty() && card.client.is_some() {
                "No row of this criterion was charged: a flaw seen in another scenario was charged once, to \
                 the criterion it belongs to."
                    .to_owned()
            } else if rows.is_empty() {
                "No row of this criterion was charged: a flaw every reply shows is charged to the lecture's \
                 client instead."
                    .to_owned()
            } else {
                rows.join("\n")
            };
            let status = if grade.score >= grade.max_score && grade.outcome != Outcome::Untested {
                "passed"
            } else {
                "failed"
            };
            Test { name: grade.title.clone(), score: grade.score, max_score: grade.max_score, status, output }
        })
        .collect();
    let mut output = format!("{}\n{}", heading(card), card.summary());
    for row in card.rows.iter().filter(|row| row.criterion.is_none()) {
        output.push('\n');
        output.push_str(&row_line(row));
    }
    if card.verdict != Verdict::CannotRun {
        output.push('\n');
        output.push_str(round_trips(card));
    }
    Ok(serde_json::to_string_pretty(&Results { score: card.score, output, tests })?)
}

/// The card as JUnit XML: one test suite ([`junit_suite`]) named by the card's heading.
///
/// # Errors
/// [`ReportError::Junit`] if the XML cannot be written (it cannot fail for a card).
pub fn junit(card: &Card) -> Result<String, ReportError> {
    let mut report = Report::new("upcase check");
    report.set_time(Duration::from_millis(card.elapsed_ms));
    report.add_test_suite(junit_suite(card, heading(card)));
    Ok(report.to_string()?)
}

/// The card as a JUnit test suite named `name`: a test case per row (classname: its criterion),
/// a failure for a failed row (message: the evidence; text: evidence and advice), skipped for a
/// skipped one, and the verdict and score as the suite's properties.
pub fn junit_suite(card: &Card, name: impl Into<String>) -> TestSuite {
    let mut suite = TestSuite::new(name.into());
    suite.set_time(Duration::from_millis(card.elapsed_ms));
    suite.add_property(Property::new("verdict", card.verdict.word()));
    suite.add_property(Property::new("score", points(card.score)));
    suite.add_property(Property::new("max_score", points(card.max_score)));
    for row in &card.rows {
        let status = match row.status {
            Status::Pass | Status::Warn | Status::Info => TestCaseStatus::success(),
            Status::Fail => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(row.evidence.as_str()).set_type("fail");
                if row.advice.is_empty() {
                    status.set_description(row.evidence.as_str());
                } else {
                    status.set_description(format!("{}\nAdvice: {}", row.evidence, row.advice));
                }
                status
            }
            Status::Skip => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(row.evidence.as_str());
                status
            }
        };
        let mut case = TestCase::new(row.name.as_str(), status);
        let criterion = row.criterion.map_or("unclaimed", |criterion| criterion.id());
        case.set_classname(format!("upcase.check.{criterion}"));
        if matches!(row.status, Status::Pass | Status::Warn | Status::Info) {
            let mut out = format!("{}: {}", row.status.label(), row.evidence);
            if row.status == Status::Warn && !row.advice.is_empty() {
                out.push_str(&format!("\nAdvice: {}", row.advice));
            }
            case.set_system_out(out);
        }
        suite.add_test_case(case);
    }
    suite
}
