//! The grades and cards of a class, handed back: `grades.csv` (a row per submission: name,
//! score, max, verdict, and the points of each criterion), a folder per submission with its
//! card as text (`card.txt`) and as Gradescope's `results.json`, one `junit.xml` for the class
//! (a test suite per submission), and a summary table for the terminal.
//!
//! Writing only: the cards come from [`super::grade_class`]; nothing here runs or judges.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use quick_junit::Report;

use super::Class;
use crate::check::card::points;
use crate::check::report::{self, ReportError};
use crate::check::{Card, Criterion, Verdict};

/// Why the grades could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A file or folder could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The grades could not be written as CSV.
    #[error("cannot write {}: {source}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// What the CSV writer said.
        source: csv::Error,
    },
    /// A card could not be rendered.
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// Writes every file into `dir` (created if missing; files of the same names replaced); the
/// files written come back, the class's first.
///
/// # Errors
/// [`OutputError`] naming the file that could not be written.
pub fn write(dir: &Path, class: &Class, cards: &[Card]) -> Result<Vec<PathBuf>, OutputError> {
    let mut written = vec![dir.join("grades.csv"), dir.join("junit.xml")];
    create_dir(dir)?;
    csv_file(&dir.join("grades.csv"), class, cards)?;
    let mut junit = Report::new("upcase grade");
    junit.set_time(Duration::from_millis(cards.iter().map(|card| card.elapsed_ms).sum()));
    for (submission, card) in class.submissions.iter().zip(cards) {
        let folder = dir.join(&submission.file_name);
        create_dir(&folder)?;
        let text = format!(
            "{}: {}\n\n{}",
            submission.name,
            submission_program(submission),
            report::text(card, false)
        );
        write_file(&folder.join("card.txt"), &text)?;
        write_file(&folder.join("results.json"), &(report::gradescope(card)? + "\n"))?;
        written.extend([folder.join("card.txt"), folder.join("results.json")]);
        junit.add_test_suite(report::junit_suite(card, &submission.name));
    }
    let xml = junit.to_string().map_err(ReportError::from)?;
    write_file(&dir.join("junit.xml"), &(xml + "\n"))?;
    Ok(written)
}

/// "server `python3 server.py` in /course/alice".
fn submission_program(submission: &super::Submission) -> String {
    let (role, command) = match &submission.program {
        super::Role::Server(command) => ("server", command),
        super::Role::Client(command) => ("client", command),
    };
    format!("{role} `{command}` in {}", submission.dir.display())
}

/// The criteria any card of the class has, in card order: the CSV's columns.
fn criteria(cards: &[Card]) -> Vec<Criterion> {
    let has = |criterion: &Criterion| {
        cards.iter().any(|card| card.criteria.iter().any(|g| g.criterion == *criterion))
    };
    Criterion::ALL.into_iter().filter(has).collect()
}

fn csv_file(path: &Path, class: &Class, cards: &[Card]) -> Result<(), OutputError> {
    let failed = |source| OutputError::Csv { path: path.to_owned(), source };
    let mut writer = csv::Writer::from_path(path).map_err(failed)?;
    let columns = criteria(cards);
    let mut header = vec!["name", "score", "max", "verdict"];
    header.extend(columns.iter().map(|criterion| criterion.id()));
    writer.write_record(&header).map_err(failed)?;
    for (submission, card) in class.submissions.iter().zip(cards) {
        let mut record = vec![
            submission.name.clone(),
            points(card.score),
            points(card.max_score),
            card.verdict.word().to_owned(),
        ];
        record.extend(columns.iter().map(|criterion| {
            card.criteria
                .iter()
                .find(|grade| grade.criterion == *criterion)
                .map(|grade| points(grade.score))
                .unwrap_or_default()
        }));
        writer.write_record(&record).map_err(failed)?;
    }
    writer.flush().map_err(|source| OutputError::Write { path: path.to_owned(), source })
}

fn create_dir(dir: &Path) -> Result<(), OutputError> {
    fs::create_dir_all(dir).map_err(|source| OutputError::Write { path: dir.to_owned(), source })
}

fn write_file(path: &Path, text: &str) -> Result<(), OutputError> {
    fs::write(path, text).map_err(|source| OutputError::Write { path: path.to_owned(), source })
}

/// The class at a glance: a line per submission with its verdict, score, and the criteria it
/// lost points on (or why it could not be graded).
pub fn summary(class: &Class, cards: &[Card]) -> String {
    let lines: Vec<[String; 4]> = class
        .submissions
        .iter()
        .zip(cards)
        .map(|(submission, card)| {
            let lost: Vec<&str> = card
                .criteria
                .iter()
                .filter(|grade| grade.score < grade.max_score)
                .map(|grade| grade.criterion.id())
                .collect();
            let notes = match (&card.problem, card.verdict) {
                (Some(problem), Verdict::CannotRun) => problem.clone(),
                _ => lost.join(", "),
            };
            let score = format!("{} / {}", points(card.score), points(card.max_score));
            [submission.name.clone(), card.verdict.word().to_owned(), score, notes]
        })
        .collect();
    let width = |column: usize, title: &str| {
        lines
            .iter()
            .map(|line| line.get(column).map_or(0, |cell| cell.chars().count()))
            .max()
            .unwrap_or(0)
            .max(title.len())
    };
    let (name, verdict, score) = (width(0, "name"), width(1, "verdict"), width(2, "score"));
    let mut out =
        format!("{:<name$}  {:<verdict$}  {:>score$}  lost points on\n", "name", "verdict", "score");
    for [n, v, s, notes] in &lines {
        let _ = writeln!(out, "{n:<name$}  {v:<verdict$}  {s:>score$}  {notes}");
    }
    out.trim_end().lines().map(str::trim_end).collect::<Vec<_>>().join("\n") + "\n"
}
