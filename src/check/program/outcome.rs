//! What a run of a program under test comes to, as plain data for the caller's rows: how it
//! ended and its last words ([`Exit`]), what it took to stop it ([`Stopped`]), how it came to
//! answer ([`Ready`]), and why it could not be run or did not answer ([`ProgramError`]).

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::last_words::{last_words, LastWords};

/// How the program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// Its exit status, if it exited (`sh -c` with a compound command reports a signal that
    /// ended the program as 128 + the signal's number here).
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// The end of what it wrote on stderr (up to 4 KiB): its last words.
    pub stderr_tail: String,
    /// How long it ran.
    pub ran_for: Duration,
}

impl Exit {
    /// The signal's name (`SIGSEGV`), for evidence.
    pub fn signal_name(&self) -> Option<&'static str> {
        self.signal.and_then(|n| Signal::try_from(n).ok()).map(Signal::as_str)
    }

    /// The error and the line of code it died on, read out of the stderr tail.
    pub fn last_words(&self) -> LastWords {
        last_words(&self.stderr_tail)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal_name(), self.signal) {
            (Some(code), ..) => write!(f, "exited with status {code}"),
            (None, Some(name), _) => write!(f, "killed by {name}"),
            (None, None, Some(n)) => write!(f, "killed by signal {n}"),
            (None, None, None) => write!(f, "ended"),
        }
    }
}

/// What it took to stop the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It had already exited by itself (crashed, or finished).
    Exited,
    /// It and everything it started ended within the grace after SIGTERM.
    Terminated,
    /// Something of it was still running after the grace (it ignores SIGTERM, or a child does),
    /// so the group got SIGKILL.
    Killed,
}

/// A program stopped, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// How the program (the group's leader) ended.
    pub exit: Exit,
    /// What it took.
    pub ending: Ending,
    /// Processes of the group still running after SIGKILL (stuck in the kernel): should be none.
    pub left_running: Vec<u32>,
}

/// A program that started answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// How long it took, from the first start.
    pub after: Duration,
    /// How many times it was started: more than 1 when its port was still held.
    pub starts: u32,
    /// What it said when it could not bind its port at once (`OSError: [Errno 98] Address
    /// already in use`): it lacks `SO_REUSEADDR`. `None` if it bound at once.
    pub refused_bind: Option<String>,
}

/// Why the program could not be run or did not answer.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// The directory to run it in is not there.
    #[error("cannot run `{command}` in {}: {source} (check the submission's directory)", dir.display())]
    Dir {
        /// The command.
        command: String,
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `sh` could not be started.
    #[error("cannot start `sh -c {command}`: {source} (is /bin/sh installed?)")]
    Spawn {
        /// The command.
        command: String,
        /// Why.
        source: io::Error,
    },
    /// It exited, or did not answer, before the bound.
    #[error("{}", not_ready(command, *within, exit.as_ref(), *port_held))]
    NotReady {
        /// The command.
        command: String,
        /// The bound it was given.
        within: Duration,
        /// How it ended, if it exited by itself.
        exit: Option<Exit>,
        /// Whether its port was still held in TIME_WAIT (it lacks `SO_REUSEADDR`).
        port_held: bool,
    },
}

fn not_ready(command: &str, within: Duration, exit: Option<&Exit>, port_held: bool) -> String {
    let within = humantime::format_duration(within);
    match exit {
        Some(_) if port_held => format!(
            "`{command}` could not bind its port within {within}: a connection in TIME_WAIT still holds it, \
             and the program does not set SO_REUSEADDR (set it before bind)"
        ),
        Some(exit) => match exit.last_words().error {
            Some(error) => format!("`{command}` {exit} before it answered: {error}"),
            None => format!("`{command}` {exit} before it answered, saying nothing on stderr"),
        },
        None => format!(
            "`{command}` did not start answering within {within} (is it listening on the port it was given?)"
        ),
    }
}
