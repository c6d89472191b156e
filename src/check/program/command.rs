//! What to run ([`Spec`]), and how its command line is handed to `sh`: a simple command is
//! `exec`ed, so the program itself leads its process group and its exit status and signal are
//! its own. Description only: nothing here starts anything.

use std::path::PathBuf;
use std::time::Duration;

/// What to run and how.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The command line, run with `sh -c`, as a teacher would type it. A simple command
    /// (`python3 server.py 12000`) is run with `exec`, so the program itself leads the group and
    /// its exit status and signal are its own; a compound one (`cd x && ./server`) keeps `sh` as
    /// the leader, which reports the program ending by a signal as status 128 + its number.
    pub command: String,
    /// The directory to run it in (the submission's), or the current one.
    pub dir: Option<PathBuf>,
    /// What the program reads on stdin, then end of input; `None`: nothing (`/dev/null`).
    pub input: Option<Vec<u8>>,
    /// The TCP port the program should listen on, if it is a server: a port still held in
    /// TIME_WAIT is then told apart from a program that never comes back.
    pub port: Option<u16>,
    /// How much of the end of stdout and of stderr is kept, each.
    pub keep: usize,
    /// How long the program has to end after SIGTERM before the group gets SIGKILL.
    pub grace: Duration,
}

impl Spec {
    /// `command`, in the current directory, no input, keeping 64 KiB of each stream and giving 2 s
    /// of grace after SIGTERM.
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            dir: None,
            input: None,
            port: None,
            keep: 64 * 1024,
            grace: Duration::from_secs(2),
        }
    }
}

/// `exec COMMAND` when `command` is one simple command (no lists, pipes, groups, assignments or
/// keywords); otherwise `command` as it is. Conservative: any doubt leaves `sh` in front.
pub(super) fn exec_if_simple(command: &str) -> String {
    let first = command.split_whitespace().next().unwrap_or_default();
    let compound = command.contains([';', '&', '|', '(', ')', '{', '}', '`', '\n'])
        || first.contains('=')
        || ["if", "for", "while", "until", "case", "!", "exec", "[[", "time"].contains(&first);
    if compound || first.is_empty() {
        command.to_owned()
    } else {
        format!("exec {command}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_simple_command_is_execed() {
        assert_eq!(exec_if_simple("python3 'my server.py' 12000"), "exec python3 'my server.py' 12000");
        assert_eq!(exec_if_simple("java -cp . Server > log"), "exec java -cp . Server > log");
        for compound in
            ["cd x && ./server", "a; b", "a | b", "PORT=1 ./server", "exec ./s", "(./s)", "", "if x"]
        {
            assert_eq!(exec_if_simple(compound), compound);
        }
    }
}
