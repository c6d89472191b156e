//! The rows of the `runs cleanly` criterion: what watching a program under test showed while the
//! check ran it (`check --run`, `grade`). It started and answered; it stays idle when no client
//! is connected; it leaves no thread, process or zombie behind per connection; it can be started
//! again at once (`SO_REUSEADDR`); it ends on SIGTERM.
//!
//! Judging only: the figures come from [`super::program`] and [`super::supervised`]; nothing here
//! starts, signals or probes anything.

use std::time::Duration;

use super::program::{CpuUse, Ending, Ready, Sample, Stopped, Watch};
use super::{Row, Status};

/// A program idle for this long with no client is measured for CPU.
pub(super) const IDLE: Duration = Duration::from_secs(1);
/// Cores a program idle with no client may want on average before it is said to spin: one
/// spinning thread wants a whole core (running, or waiting for one on a busy machine), and a
/// virtual machine's JIT compiler finishing its work wants far less.
const SPINNING: f64 = 0.75;
/// Threads or processes more than when the program first answered, a second after the last
/// client left, that make a leak: the check makes over a thousand connections, so a leak per
/// connection shows far above this, while a runtime's few helper threads stay below it.
const LEAK: usize = 16;
/// Zombies tolerated: a server that reaps its children at its next `accept()` keeps the last one.
const ZOMBIES: usize = 2;

/// Every row of the criterion, in card order.
pub(super) const NAMES: [&str; 7] =
    ["start", "idle cpu", "threads", "processes", "zombies", "restart", "stop"];

/// How the program got to answer.
pub(super) struct Start<'a> {
    pub(super) ready: &'a Ready,
    /// What the program serves, in words: `TCP port 12000`.
    pub(super) serving: &'a str,
    /// How long the first start waited for a port held in TIME_WAIT by an earlier run.
    pub(super) waited: Option<Duration>,
    /// The probes after which it had to be started again.
    pub(super) restarts: &'a [String],
}

/// Whether the program could be started again at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Rebind {
    /// It bound its port again at once; `held`: though a connection of its last run held the
    /// port in TIME_WAIT (so it sets `SO_REUSEADDR`).
    AtOnce { held: bool },
    /// It could not bind while a connection in TIME_WAIT held the port: `when` it was tried,
    /// what it said, and what was done about it.
    Refused { when: String, said: String, then: String },
    /// It did not start again, for another reason.
    Failed(String),
    /// Not tried: why.
    Untried(String),
}

/// The rows of a program that ran and answered.
pub(super) fn rows(
    start: &Start<'_>,
    idle: Option<CpuUse>,
    watch: &Watch,
    now: Sample,
    rebind: &Rebind,
    stopped: &Stopped,
) -> Vec<Row> {
    let mut rows = vec![started(start)];
    match idle {
        Some(idle) => {
            let before = watch.at_ready.unwrap_or_default();
            rows.push(idle_cpu(idle));
            rows.push(threads(before.threads, now.threads, watch.peak_threads));
            rows.push(processes(before.processes, now.processes, watch.peak_processes));
            rows.push(zombies(now.zombies, watch.peak_zombies));
        }
        None => {
            let why =
                format!("not measured: the program had already {} at the end of the probes", stopped.exit);
            rows.extend(
                ["idle cpu", "threads", "processes", "zombies"]
                    .map(|name| Row::new(name, Status::Skip, why.clone(), "")),
            );
        }
    }
    rows.push(restart(rebind));
    rows.push(stop(stopped));
    rows
}

/// Every row skipped, saying why: the program never answered.
pub(super) fn skipped(why: &str) -> Vec<Row> {
    NAMES.iter().map(|name| Row::new(name, Status::Skip, format!("not run: {why}"), "")).collect()
}

fn started(start: &Start<'_>) -> Row {
    let mut evidence =
        format!("serving {} {:.1} s after it was started", start.serving, start.ready.after.as_secs_f64());
    if let Some(waited) = start.waited {
        evidence.push_str(&format!(
            ", having waited {:.0} s for connections of an earlier run to leave TIME_WAIT",
            waited.as_secs_f64()
        ));
    }
    match start.restarts {
        [] => {}
        [after] => evidence.push_str(&format!("; started again once, after \"{after}\"")),
        many => {
            let after: Vec<String> = many.iter().map(|name| format!("\"{name}\"")).collect();
            evidence.push_str(&format!("; started again {} times, after {}", many.len(), after.join(", ")));
        }
    }
    Row::new("start", Status::Info, evidence, "")
}

fn idle_cpu(idle: CpuUse) -> Row {
    let over = format!("over {:.0} s with no client connected", idle.wall.as_secs_f64());
    if idle.wanted() > SPINNING {
        Row::new(
            "idle cpu",
            Status::Fail,
            format!(
                "spins while idle: it kept {:.2} cores busy (and wanted {:.2}) {over}",
                idle.cores(),
                idle.wanted()
            ),
            "A loop that ignores recv returning 0 (the client has finished) goes round forever: when recv returns 0 \
             (Java: read returns -1, readLine null), close the connection and leave the loop; never poll a socket \
             in a loop without waiting.",
        )
    } else {
        Row::new("idle cpu", Status::Pass, format!("{:.2} cores used {over}", idle.cores()), "")
    }
}

fn threads(before: usize, now: usize, peak: usize) -> Row {
    let figures = format!(
        "{} when it first answered, {now} a second after the last client left (at most {peak})",
        counted(before, "thread")
    );
    if now >= before + LEAK {
        Row::new(
            "threads",
            Status::Fail,
            format!("a thread per connection never ends: {figures}"),
            "End each connection's thread when its client has finished (recv returns 0; Java: read returns -1): \
             close the socket and return from the handler.",
        )
    } else {
        Row::new("threads", Status::Pass, figures, "")
    }
}

fn processes(before: usize, now: usize, peak: usize) -> Row {
    let figures = format!(
        "{} when it first answered, {now} a second after the last client left (at most {peak})",
        counted(before, "process")
    );
    if now >= before + LEAK {
        Row::new(
            "processes",
            Status::Fail,
            format!("a child process per connection never ends: {figures}"),
            "End each child when its client has finished: close the connection and exit.",
        )
    } else {
        Row::new("processes", Status::Pass, figures, "")
    }
}

fn zombies(now: usize, peak: usize) -> Row {
    if now > ZOMBIES {
        Row::new(
            "zombies",
            Status::Fail,
            format!(
                "{now} child processes ended and were never reaped (zombies; at most {peak} at once): one per connection"
            ),
            "Reap children that have ended: C signal(SIGCHLD, SIG_IGN) before the accept loop, or \
             while (waitpid(-1, NULL, WNOHANG) > 0) after each accept; Python: signal.signal(signal.SIGCHLD, \
             signal.SIG_IGN).",
        )
    } else {
        Row::new(
            "zombies",
            Status::Pass,
            format!("{} a second after the last client left", counted(now, "zombie")),
            "",
        )
    }
}

/// `1 thread`, `2 threads`, `2 processes`.
fn counted(n: usize, what: &str) -> String {
    match (n, what.ends_with('s')) {
        (1, _) => format!("1 {what}"),
        (_, true) => format!("{n} {what}es"),
        (_, false) => format!("{n} {what}s"),
    }
}

/// Advice for a server that cannot rebind its port at once.
const REUSE: &str = "Set SO_REUSEADDR on the listening socket before bind, so that a restart does not fail for a \
    minute while connections of the last run are in TIME_WAIT: Python server_socket.setsockopt(socket.SOL_SOCKET, \
    socket.SO_REUSEADDR, 1); C int one = 1; setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); Java's \
    ServerSocket sets it already (on one created unbound, call setReuseAddress(true) before bind).";

fn restart(rebind: &Rebind) -> Row {
    match rebind {
        Rebind::AtOnce { held: true } => Row::new(
            "restart",
            Status::Pass,
            "started again at once, though a connection of its last run held the port in TIME_WAIT (it sets SO_REUSEADDR)",
            "",
        ),
        Rebind::AtOnce { held: false } => Row::new(
            "restart",
            Status::Info,
            "started again at once; no connection of its last run was in TIME_WAIT, so SO_REUSEADDR was not tested",
            "",
        ),
        Rebind::Refused { when, said, then } => Row::new(
            "restart",
            Status::Warn,
            format!(
                "could not bind its port again at once {when}: \"{said}\", as a connection of its last run held the \
                 port in TIME_WAIT: it does not set SO_REUSEADDR; {then}"
            ),
            REUSE,
        ),
        Rebind::Failed(why) => Row::new("restart", Status::Fail, format!("did not start again: {why}"), ""),
        Rebind::Untried(why) => Row::new("restart", Status::Skip, format!("not tested: {why}"), ""),
    }
}

fn stop(stopped: &Stopped) -> Row {
    if !stopped.left_running.is_empty() {
        let pids: Vec<String> = stopped.left_running.iter().map(u32::to_string).collect();
        return Row::new(
            "stop",
            Status::Fail,
            format!("processes {} still ran after SIGKILL (stuck in the kernel)", pids.join(", ")),
            "",
        );
    }
    match stopped.ending {
        Ending::Terminated => Row::new("stop", Status::Pass, "ended on SIGTERM, with everything it started", ""),
        Ending::Killed => Row::new(
            "stop",
            Status::Warn,
            "still running 2 s after SIGTERM (the program, or a process it started): it had to be killed with SIGKILL",
            "Let SIGTERM end the program: Python's default does, but a handler that only sets a flag waits for the \
             next client (close the listening socket in it, or exit); C: do not ignore SIGTERM; end the child \
             processes too.",
        ),
        Ending::Exited => Row::new(
            "stop",
            Status::Skip,
            format!("not tested: the program had already {}", stopped.exit),
            "",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Criterion;

    #[test]
    fn every_row_belongs_to_runs_cleanly() {
        for name in NAMES {
            assert_eq!(Criterion::for_row(name), Some(Criterion::RunsCleanly), "{name}");
        }
    }

    #[test]
    fn a_leak_is_far_above_a_runtime_s_helpers() {
        assert_eq!(threads(20, 30, 40).status, Status::Pass);
        assert_eq!(threads(1, 1_001, 1_001).status, Status::Fail);
        assert_eq!(zombies(1, 5).status, Status::Pass);
        assert_eq!(zombies(1_700, 1_700).status, Status::Fail);
    }

    #[test]
    fn spinning_is_wanting_a_core_while_idle() {
        let used = |running: u64, waiting: u64| CpuUse {
            running: Duration::from_millis(running),
            waiting: Duration::from_millis(waiting),
            wall: IDLE,
        };
        assert_eq!(idle_cpu(used(10, 0)).status, Status::Pass);
        let starved = idle_cpu(used(400, 600));
        assert_eq!(starved.status, Status::Fail, "a spinning thread that waits for a core still spins");
        assert!(
            starved.evidence.starts_with("spins while idle: it kept 0.40 cores busy (and wanted 1.00)"),
            "{}",
            starved.evidence
        );
    }
}
