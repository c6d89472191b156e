//! `CLASS.toml`: the submissions of a class, one `[[submission]]` table each, read and checked
//! before anything runs, so that a typo stops the teacher at once, naming the line, instead of
//! costing one student a grade.
//!
//! ```toml
//! [[submission]]
//! name = "alice"                  # also the name of her folder of results
//! server = "python3 server.py"    # or client = "..."
//! transport = "tcp"               # or "udp"
//! dir = "alice"                   # relative to this file; default: this file's folder
//! to = "localhost:12000"          # the default
//! timeout = "1s"                  # the default: any single wait
//! budget = "30s"                  # the default: the whole check (60s for a client)
//! ```
//!
//! Reading only: nothing here runs a submission or writes a file.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::net::Transport;

/// A class: its submissions, in the file's order.
#[derive(Debug, Clone)]
pub struct Class {
    /// Where it was read from.
    pub path: PathBuf,
    /// Every submission.
    pub submissions: Vec<Submission>,
}

/// One student's program, as the class file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The name as written (a student's name or id).
    pub name: String,
    /// The name made safe for a file name, unique in the class: the folder of its results.
    pub file_name: String,
    /// What to run, and whether it is a server or a client.
    pub program: Role,
    /// The transport graded.
    pub transport: Transport,
    /// The address the program serves (a server) or talks to (a client), `HOST:PORT`.
    pub to: String,
    /// The directory to run it in.
    pub dir: PathBuf,
    /// The longest any single wait may take.
    pub timeout: Duration,
    /// The longest the check of it may take.
    pub budget: Duration,
    /// The line of its `[[submission]]` table, for messages.
    pub line: usize,
}

/// A submission's command, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A server, started and probed as `check --run` does.
    Server(String),
    /// A client, run against a server the check plays.
    Client(String),
}

/// The default address: the lecture's.
pub const DEFAULT_TO: &str = "localhost:12000";
/// The default timeout of one wait, as `upcase check`'s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// The default budget of one check, as `upcase check`'s.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(30);
/// The default budget of a client's check, as `upcase check --client`'s: its scenarios wait for
/// a client that may hang, each up to its patience.
pub const DEFAULT_CLIENT_BUDGET: Duration = Duration::from_secs(60);
/// The files `grade` writes beside the submissions' folders: no submission may take their names.
const RESERVED: [&str; 2] = ["grades.csv", "junit.xml"];

/// Why a class file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClassError {
    /// It could not be read.
    #[error("cannot read the class file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Something in it is wrong: where, and what.
    #[error("bad class file {}, line {line}: {why}", path.display())]
    Bad {
        /// The file.
        path: PathBuf,
        /// The line (from 1).
        line: usize,
        /// What is wrong, and what to write instead.
        why: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassFile {
    #[serde(default)]
    submission: Vec<Spanned<Entry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: Spanned<String>,
    server: Option<Spanned<String>>,
    client: Option<Spanned<String>>,
    transport: Spanned<Transport>,
    to: Option<Spanned<String>>,
    dir: Option<Spanned<PathBuf>>,
    timeout: Option<Spanned<String>>,
    budget: Option<Spanned<String>>,
}

impl Class {
    /// Reads and checks the class file at `path`.
    ///
    /// # Errors
    /// [`ClassError`]: it cannot be read, is not TOML, has an unknown or missing key, a bad
    /// value, no submission, or two submissions whose names give the same file name.
    pub fn load(path: &Path) -> Result<Self, ClassError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ClassError::Read { path: path.to_owned(), source })?;
        // Submissions' folders are relative to the file's, wherever grade is run from.
        let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        let mut class = Self::parse(&text, &absolute)?;
        class.path = path.to_owned();
        Ok(class)
    }

    /// A class from the text of its file; `path` names it in messages and anchors relative
    /// directories.
    ///
    /// # Errors
    /// As [`Class::load`].
    pub fn parse(text: &str, path: &Path) -> Result<Self, ClassError> {
        let bad = |span: Option<Range<usize>>, why: String| ClassError::Bad {
            path: path.to_owned(),
            line: line_of(text, span.map_or(0, |span| span.start)),
            why,
        };
        let file: ClassFile =
            toml::from_str(text).map_err(|e| bad(e.span(), e.message().trim_end().to_owned()))?;
        if file.submission.is_empty() {
            return Err(bad(
                None,
                "no submission: add a [[submission]] table with name, server (or client) and transport"
                    .to_owned(),
            ));
        }
        let base =
            path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned();
        let mut seen: HashMap<String, (String, usize)> = HashMap::new();
        let mut submissions = Vec::new();
        for spanned in file.submission {
            let span = spanned.span();
            let line = line_of(text, span.start);
            let entry = spanned.into_inner();
            let program = match (entry.server, entry.client) {
                (Some(server), None) => {
                    Role::Server(command(server).map_err(|(span, why)| bad(Some(span), why))?)
                }
                (None, Some(client)) => {
                    Role::Client(command(client).map_err(|(span, why)| bad(Some(span), why))?)
                }
                (Some(_), Some(client)) => {
                    return Err(bad(
                        Some(client.span()),
                        "give server or client, not both: a submission is one program".to_owned(),
                    ))
                }
                (None, None) => {
                    return Err(bad(
                        Some(span),
                        "no program: give server = \"CMD\" or client = \"CMD\"".to_owned(),
                    ))
                }
            };
            let name_span = entry.name.span();
            let name = entry.name.into_inner();
            let file_name = file_name(&name).map_err(|why| bad(Some(name_span.clone()), why))?;
            let key = file_name.to_lowercase();
            if let Some((other, other_line)) = seen.get(&key) {
                return Err(bad(
                    Some(name_span),
                    format!(
                        "name {name:?} gives the same file name ({file_name}) as {other:?} on line {other_line}: \
                         make the names differ in their letters or digits"
                    ),
                ));
            }
            seen.insert(key, (name.clone(), line));
            let dir = entry.dir.map_or_else(|| base.clone(), |dir| base.join(dir.into_inner()));
            let default_budget = match program {
                Role::Server(_) => DEFAULT_BUDGET,
                Role::Client(_) => DEFAULT_CLIENT_BUDGET,
            };
            submissions.push(Submission {
                name,
                file_name,
                program,
                transport: *entry.transport.get_ref(),
                to: entry.to.map_or_else(|| DEFAULT_TO.to_owned(), Spanned::into_inner),
                dir,
                timeout: duration(entry.timeout, DEFAULT_TIMEOUT)
                    .map_err(|(span, why)| bad(Some(span), why))?,
                budget: duration(entry.budget, default_budget).map_err(|(span, why)| bad(Some(span), why))?,
                line,
            });
        }
        Ok(Self { path: path.to_owned(), submissions })
    }
}

/// A command line: not empty.
fn command(command: Spanned<String>) -> Result<String, (Range<usize>, String)> {
    if command.get_ref().trim().is_empty() {
        return Err((
            command.span(),
            "the command is empty: give the command line that runs the program".to_owned(),
        ));
    }
    Ok(command.into_inner())
}

/// A duration such as `1s` or `500ms`, or `default` when not given.
fn duration(value: Option<Spanned<String>>, default: Duration) -> Result<Duration, (Range<usize>, String)> {
    let Some(value) = value else { return Ok(default) };
    match humantime::parse_duration(value.get_ref()) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => {
            Err((value.span(), format!("{:?} is no time at all: give e.g. 500ms, 2s or 1m", value.get_ref())))
        }
        Err(e) => Err((value.span(), format!("{:?}: {e} (write e.g. 500ms, 2s or 1m)", value.get_ref()))),
    }
}

/// `name` as a file name: letters, digits, `-`, `_` and `.` kept, anything else (spaces,
/// slashes, accents) replaced by `_`, no leading dot; never one of the files `grade` writes.
pub fn file_name(name: &str) -> Result<String, String> {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    let safe = safe.trim_start_matches('.').to_owned();
    if safe.is_empty() || safe.chars().all(|c| c == '_') {
        return Err(format!("name {name:?} gives no file name: use letters or digits"));
    }
    if RESERVED.iter().any(|reserved| reserved.eq_ignore_ascii_case(&safe)) {
        return Err(format!("name {name:?} is the name of a file grade writes: choose another"));
    }
    Ok(safe)
}

/// The line (from 1) of byte `at` of `text`.
fn line_of(text: &str, at: usize) -> usize {
    1 + text.get(..at).unwrap_or(text).matches('\n').count()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn parse(text: &str) -> Result<Class, String> {
        Class::parse(text, Path::new("/course/class.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_submissions_with_their_defaults() {
        let text = "[[submission]]\nname = \"Ann O'Neil\"\nserver = \"python3 server.py\"\ntransport = \"tcp\"\n\
                    dir = \"ann\"\n\n[[submission]]\nname = \"bo\"\nclient = \"./client\"\ntransport = \"udp\"\n\
                    to = \"127.0.0.1:9000\"\ntimeout = \"250ms\"\nbudget = \"10s\"\n";
        let class = parse(text).unwrap_or_else(|e| panic!("{e}"));
        let [ann, bo] = &class.submissions[..] else { panic!("{:?}", class.submissions) };
        assert_eq!(
            (ann.file_name.as_str(), ann.line, ann.dir.as_path()),
            ("Ann_O_Neil", 1, Path::new("/course/ann"))
        );
        assert_eq!(ann.program, Role::Server("python3 server.py".to_owned()));
        assert_eq!((ann.to.as_str(), ann.timeout, ann.budget), (DEFAULT_TO, DEFAULT_TIMEOUT, DEFAULT_BUDGET));
        assert_eq!(
            (bo.transport, bo.to.as_str(), bo.line, bo.dir.as_path()),
            (Transport::Udp, "127.0.0.1:9000", 7, Path::new("/course"))
        );
        assert_eq!((bo.timeout, bo.budget), (Duration::from_millis(250), Duration::from_secs(10)));
    }

    #[test]
    fn a_mistake_names_its_line() {
        let head = "[[submission]]\nname = \"a\"\nserver = \"s\"\ntransport = \"tcp\"\n";
        let cases = [
            (format!("{head}sever = \"x\"\n"), "line 5: unknown field `sever`"),
            (
                format!("{head}[[submission]]\nname = \"b\"\nserver = \"s\"\ntransport = \"sctp\"\n"),
                "line 8: unknown variant `sctp`",
            ),
            (format!("{head}[[submission]]\nname = \"b\"\ntransport = \"tcp\"\n"), "line 5: no program"),
            (format!("{head}client = \"c\"\n"), "line 5: give server or client, not both"),
            (format!("{head}budget = \"soon\"\n"), "line 5: \"soon\": "),
            (
                format!("{head}[[submission]]\nname = \"A\"\nserver = \"s\"\ntransport = \"udp\"\n"),
                "line 6: name \"A\" gives the same file name (A) as \"a\" on line 1",
            ),
            (
                "[[submission]]\nname = \"//\"\nserver = \"s\"\ntransport = \"tcp\"\n".to_owned(),
                "line 2: name \"//\" gives no file name",
            ),
            ("# nobody yet\n".to_owned(), "line 1: no submission"),
        ];
        for (text, want) in cases {
            let got = parse(&text).map(|_| ()).unwrap_err();
            assert!(got.starts_with("bad class file /course/class.toml, "), "{got}");
            assert!(got.contains(want), "{got:?} should say {want:?}");
        }
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name("Zoë Smith").as_deref(), Ok("Zo__Smith"));
        assert_eq!(file_name("../../etc").as_deref(), Ok("_.._etc"));
        assert_eq!(file_name("s1234567").as_deref(), Ok("s1234567"));
        assert!(file_name("JUnit.XML").is_err());
    }
}
