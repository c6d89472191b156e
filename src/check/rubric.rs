//! Criteria and the rubric: the card's rows grouped into criteria, so that one flaw costs once
//! (three cut sizes are one "reads the whole message"), and points per criterion, from a default
//! or a teacher's `RUBRIC.toml`. A server's card and a client's (`--client`) have criteria of their
//! own; one file may give points to both.
//!
//! Grading only: nothing here probes, prints or reads anything but the rubric file it is given.
//! A row is charged to the criterion its name belongs to ([`Criterion::for_row`]), unless the
//! check recognised a flaw that every reply shows (NUL padding, stale bytes, the last byte left
//! lowercase, no uppercasing at all): such a row is charged to [`Criterion::LectureClient`],
//! whatever probe it came from, so that flaw costs once too. [`Criterion::RunsCleanly`] is graded
//! only on a card that has its rows: when upcase ran the program itself (`check --run`, `grade`);
//! otherwise it is left off, and the total is that of the other criteria.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::card::{Row, Status};
pub use super::criterion::Criterion;
use crate::net::Transport;

/// How many points each criterion is worth, and what a warn earns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rubric {
    /// Points per criterion that applies to the transport graded.
    pub points: BTreeMap<Criterion, f64>,
    /// The share of its points a criterion earns when its worst row is a warn (0 to 1).
    pub warned: f64,
}

/// A rubric file as written: every field optional, every unknown key an error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RubricFile {
    warned: Option<f64>,
    points: Option<BTreeMap<Criterion, f64>>,
}

/// Why a rubric file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RubricError {
    /// The file could not be read.
    #[error("cannot read the rubric {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is not TOML, or has a key the rubric does not know.
    #[error("bad rubric {}: {} (criteria: {})", path.display(), source.to_string().trim_end(), ids())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        source: Box<toml::de::Error>,
    },
    /// A value is out of range.
    #[error("bad rubric {}: {why}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Which value, and what it must be.
        why: String,
    },
}

/// The criteria's ids, for error messages.
fn ids() -> String {
    Criterion::ALL.map(Criterion::id).join(", ")
}

impl Rubric {
    /// The default rubric: 100 points over the criteria of the transport, and 10 more for
    /// running cleanly, graded only when upcase runs the program. The lecture's client weighs
    /// most; it is what the assignment asks for.
    pub fn default_for(transport: Transport) -> Self {
        let points: &[(Criterion, f64)] = match transport {
            Transport::Tcp => &[
                (Criterion::LectureClient, 30.0),
                (Criterion::WholeMessage, 15.0),
                (Criterion::Unicode, 15.0),
                (Criterion::BadInput, 15.0),
                (Criterion::ManyClients, 15.0),
                (Criterion::CleanClose, 10.0),
                (Criterion::RunsCleanly, 10.0),
            ],
            Transport::Udp => &[
                (Criterion::LectureClient, 30.0),
                (Criterion::WholeMessage, 20.0),
                (Criterion::Unicode, 15.0),
                (Criterion::BadInput, 20.0),
                (Criterion::ManyClients, 15.0),
                (Criterion::RunsCleanly, 10.0),
            ],
        };
        Self { points: points.iter().copied().collect(), warned: 0.5 }
    }

    /// The default rubric for a client (`upcase check --client`): 100 points, most for printing
    /// the reply, then what the network does to UDP (loss) or TCP (replies in pieces).
    pub fn default_for_client(transport: Transport) -> Self {
        let points: &[(Criterion, f64)] = match transport {
            Transport::Tcp => &[
                (Criterion::PrintsTheReply, 35.0),
                (Criterion::WaitsForLateReplies, 10.0),
                (Criterion::ReadsTheWholeReply, 25.0),
                (Criterion::HandlesBadBytes, 15.0),
                (Criterion::FailsClearly, 15.0),
            ],
            Transport::Udp => &[
                (Criterion::PrintsTheReply, 30.0),
                (Criterion::SurvivesLoss, 25.0),
                (Criterion::WaitsForLateReplies, 10.0),
                (Criterion::ReadsTheWholeReply, 10.0),
                (Criterion::HandlesBadBytes, 10.0),
                (Criterion::FailsClearly, 15.0),
            ],
        };
        Self { points: points.iter().copied().collect(), warned: 0.5 }
    }

    /// The default for the transport, with what the file at `path` says instead.
    ///
    /// # Errors
    /// [`RubricError`] when the file cannot be read, is not a rubric, or has a value out of range.
    pub fn load(path: &Path, transport: Transport) -> Result<Self, RubricError> {
        Self::load_over(path, Self::default_for(transport))
    }

    /// [`Rubric::load`] for a client's card: the file may name a server's criteria too (one
    /// rubric for a class), which a client's card leaves out, as a server's leaves out a client's.
    ///
    /// # Errors
    /// As [`Rubric::load`].
    pub fn load_for_client(path: &Path, transport: Transport) -> Result<Self, RubricError> {
        Self::load_over(path, Self::default_for_client(transport))
    }

    fn load_over(path: &Path, default: Self) -> Result<Self, RubricError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| RubricError::Read { path: path.to_owned(), source })?;
        Self::parse_over(&text, default).map_err(|e| match e {
            Err(source) => RubricError::Parse { path: path.to_owned(), source: Box::new(source) },
            Ok(why) => RubricError::Invalid { path: path.to_owned(), why },
        })
    }

    /// A server's rubric from TOML text (see [`Self::parse_over`]).
    #[cfg(test)]
    fn parse(text: &str, transport: Transport) -> Result<Self, Result<String, toml::de::Error>> {
        Self::parse_over(text, Self::default_for(transport))
    }

    /// `default`, with what the TOML text says instead, for the criteria `default` has: `Err(Err(..))`
    /// when it does not parse, `Err(Ok(why))` when a value is out of range.
    fn parse_over(text: &str, default: Self) -> Result<Self, Result<String, toml::de::Error>> {
        let file: RubricFile = toml::from_str(text).map_err(Err)?;
        let mut rubric = default;
        if let Some(warned) = file.warned {
            if !(0.0..=1.0).contains(&warned) {
                return Err(Ok(format!("warned = {warned}: give a share from 0 to 1")));
            }
            rubric.warned = warned;
        }
        for (criterion, points) in file.points.unwrap_or_default() {
            if !points.is_finite() || points < 0.0 {
                return Err(Ok(format!("{} = {points}: give 0 or more points", criterion.id())));
            }
            if let Some(worth) = rubric.points.get_mut(&criterion) {
                *worth = points;
            }
        }
        Ok(rubric)
    }

    /// The points of every criterion together; `with_program`: including those graded only
    /// when upcase runs the program.
    pub fn total(&self, with_program: bool) -> f64 {
        self.points
            .iter()
            .filter(|(criterion, _)| with_program || !criterion.needs_program())
            .map(|(_, p)| p)
            .sum()
    }
}

/// How a criterion went: its worst row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every row of it that ran passed (or only measured).
    Pass,
    /// A row warned, none failed: it earns the rubric's `warned` share.
    Warn,
    /// A row failed: no points.
    Fail,
    /// No row of it ran (the server died first, or the budget ran out): no points.
    Untested,
}

/// One criterion on a card: how it went, its points, and the rows charged to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grade {
    /// The criterion's id.
    pub criterion: Criterion,
    /// Its title.
    pub title: String,
    /// How it went.
    pub outcome: Outcome,
    /// Points earned.
    pub score: f64,
    /// Points it is worth.
    pub max_score: f64,
    /// The names of the rows charged to it, in card order.
    pub rows: Vec<String>,
}

/// Grades rows against a rubric: one [`Grade`] per criterion the rubric holds, leaving out one
/// that needs the program run when no row of it is on the card.
pub fn grade(rows: &[Row], rubric: &Rubric) -> Vec<Grade> {
    let on_card = |criterion: Criterion| {
        rows.iter()
            .any(|row| row.criterion == Some(criterion) || Criterion::for_row(&row.name) == Some(criterion))
    };
    rubric
        .points
        .iter()
        .filter(|(&criterion, _)| !criterion.needs_program() || on_card(criterion))
        .map(|(&criterion, &max_score)| {
            let charged: Vec<&Row> = rows.iter().filter(|row| row.criterion == Some(criterion)).collect();
            let has = |status| charged.iter().any(|row| row.status == status);
            // Tested: a row of it ran, even one whose flaw was charged elsewhere (a reply with NUL
            // padding but otherwise right still shows the criterion met).
            let tested = rows
                .iter()
                .any(|row| Criterion::for_row(&row.name) == Some(criterion) && row.status != Status::Skip);
            let outcome = if has(Status::Fail) {
                Outcome::Fail
            } else if has(Status::Warn) {
                Outcome::Warn
            } else if tested || charged.iter().any(|row| row.status != Status::Skip) {
                Outcome::Pass
            } else {
                Outcome::Untested
            };
            let share = match outcome {
                Outcome::Pass => 1.0,
                Outcome::Warn => rubric.warned,
                Outcome::Fail | Outcome::Untested => 0.0,
            };
            Grade {
                criterion,
                title: criterion.title().to_owned(),
                outcome,
                score: round(max_score * share),
                max_score,
                rows: charged.iter().map(|row| row.name.clone()).collect(),
            }
        })
        .collect()
}

/// Rounded to hundredths, so that shares of points print cleanly.
fn round(points: f64) -> f64 {
    (points * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests;
