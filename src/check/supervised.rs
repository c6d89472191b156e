//! `upcase check --run` and `upcase grade`: the check of a program the check starts itself. It
//! starts the program (in its own process group, through [`super::program`]) on the port of the
//! target, waits until it listens (passively: a server that accepts once is not used up), runs
//! the probes, and when a probe kills it, puts its last words on that row and starts it again
//! (waiting out a port held in TIME_WAIT, or, in a network namespace of its own, moving to a
//! fresh one), so probing goes on. Afterwards it measures the idle program, starts it again once
//! more to see whether it can rebind at once, and stops it: the rows of `runs cleanly`
//! (`super::conduct`).
//!
//! The budget bounds the start, the probes and the idle second; restarts (at most
//! [`RESTARTS_WITHIN`] in all), a wait for a port an earlier run left in TIME_WAIT, and the stop
//! come on top. It must never leave the program running: every
//! path ends in a stop, and a [`Program`] dropped early kills its group.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::conduct::{self, Rebind, Start};
use super::program::{port_holder, tcp_port_in_time_wait, Ending, Program, ProgramError, Spec};
use super::{cannot_run, netns, run_with, Card, Death, Options, Revival};
use crate::net::Transport;

/// The longest a program may take to start answering (or the budget, when that is less).
pub const READY_WITHIN: Duration = Duration::from_secs(10);
/// The longest all restarts of one check may take together: one wait for a port in TIME_WAIT
/// (Linux keeps it 60 s) and change.
pub const RESTARTS_WITHIN: Duration = Duration::from_secs(90);

/// How long a program that no longer answers is given to be seen exiting, if it is dying.
const DYING: Duration = Duration::from_millis(500);

/// How to run the program under test.
#[derive(Debug, Clone)]
pub struct Supervision {
    /// The command line and directory; its port is set to the target's.
    pub spec: Spec,
    /// Whether the calling thread is in a network namespace of its own ([`netns::enter_fresh`]):
    /// a restart that finds the port held in TIME_WAIT then moves to a fresh one.
    pub isolated: bool,
}

/// Starts the program, checks it, and stops it: the card, with the rows of `runs cleanly`. A
/// program that cannot be started, or never answers, gets a `CANNOT_RUN` card saying why.
pub fn run_program(options: &Options, supervision: &Supervision) -> Card {
    let started = Instant::now();
    let (transport, isolated) = (options.transport, supervision.isolated);
    let addr = match super::resolve(&options.target) {
        Ok(addr) => addr,
        Err(error) => return not_started(options, None, &error.to_string(), started),
    };
    let port = addr.port();
    let serving = format!("{} port {port}", transport.name().to_uppercase());
    if !isolated {
        if let Some((pid, name)) = port_holder(transport, port) {
            let who = pid.map_or_else(
                || "another program".to_owned(),
                |pid| format!("another program ({name}, pid {pid})"),
            );
            let why = format!(
                "{serving} is already in use by {who}: stop it, or give the program another port (--to)"
            );
            return not_started(options, Some(addr), &why, started);
        }
    }
    // Connections of an earlier run may still hold the port: not this program's doing.
    let inherited = transport == Transport::Tcp && tcp_port_in_time_wait(port);
    let mut spec = supervision.spec.clone();
    spec.port = (transport == Transport::Tcp).then_some(port);
    let mut program = match Program::start(spec) {
        Ok(program) => program,
        Err(error) => return not_started(options, Some(addr), &error.to_string(), started),
    };
    let ready_within =
        READY_WITHIN.min(options.budget) + if inherited { RESTARTS_WITHIN } else { Duration::ZERO };
    let ready = match program.wait_ready(ready_within, |p| p.serves(transport, port)) {
        Ok(ready) => ready,
        Err(error) => {
            let why = never_answered(&program, &error, transport, port);
            program.stop();
            return not_started(options, Some(addr), &why, started);
        }
    };
    let waited = (inherited && ready.starts > 1).then_some(ready.after);
    // Waiting for an earlier run's connections to leave TIME_WAIT is not this program's time.
    let starting = if waited.is_some() { Duration::ZERO } else { started.elapsed() };
    let mut probing = options.clone();
    probing.budget = options.budget.saturating_sub(starting).saturating_sub(conduct::IDLE);
    let mut supervisor = Supervisor {
        program: &mut program,
        transport,
        port,
        isolated,
        ready_within: READY_WITHIN.min(options.budget),
        restarts: Vec::new(),
        spent: Duration::ZERO,
        rebind: None,
        killed: false,
    };
    let mut card = run_with(&probing, &mut |death| supervisor.revive(death));
    let (restarts, rebind, killed) = (supervisor.restarts, supervisor.rebind, supervisor.killed);

    let running = program.exited().is_none();
    let idle = running.then(|| program.cpu_over(conduct::IDLE));
    let (watch, now) = (program.watch(), program.sample());
    let (rebind, mut stopped) = match rebind {
        Some(rebind) => (rebind, program.stop()),
        None if !running => (Rebind::Untried("the program had exited".to_owned()), program.stop()),
        None if transport == Transport::Udp => {
            (Rebind::Untried("UDP ports are never held in TIME_WAIT".to_owned()), program.stop())
        }
        None => rebind_at_once(&mut program, addr, options.timeout, READY_WITHIN.min(options.budget)),
    };
    program.stop();
    if killed && stopped.ending == Ending::Terminated {
        stopped.ending = Ending::Killed;
    }
    let start = Start { ready: &ready, serving: &serving, waited, restarts: &restarts };
    let rows = conduct::rows(&start, idle, &watch, now, &rebind, &stopped);
    card.append(rows, &options.rubric, started.elapsed());
    card
}

/// A `CANNOT_RUN` card for a program that could not be run at all (`why`), like that of one that
/// never answered.
pub fn cannot_start(options: &Options, why: &str, elapsed: Duration) -> Card {
    let addr = super::resolve(&options.target).ok();
    let mut card = cannot_run(options, addr, why, "", elapsed);
    card.append(conduct::skipped("the program never ran"), &options.rubric, elapsed);
    card
}

/// A `CANNOT_RUN` card for a program that did not start answering, saying why, with the rows of
/// `runs cleanly` skipped.
fn not_started(options: &Options, addr: Option<SocketAddr>, why: &str, started: Instant) -> Card {
    let advice =
        "Run the command by hand in the submission's directory, and check that the program listens on \
                  the port of --to.";
    let mut card = cannot_run(options, addr, why, advice, started.elapsed());
    card.append(conduct::skipped("the program never answered"), &options.rubric, started.elapsed());
    card
}

/// Why the program did not answer: the supervisor's reason, and what it serves instead, if
/// anything (a port hard-coded, or the other transport).
fn never_answered(program: &Program, error: &ProgramError, transport: Transport, port: u16) -> String {
    let mut why = error.to_string();
    if matches!(error, ProgramError::NotReady { exit: None, .. }) {
        let name = |t: Transport| t.name().to_uppercase();
        let elsewhere: Vec<String> = [transport, other(transport)]
            .into_iter()
            .flat_map(|t| program.serving(t).into_iter().map(move |p| format!("{} port {p}", name(t))))
            .filter(|served| *served != format!("{} port {port}", name(transport)))
            .collect();
        if !elsewhere.is_empty() {
            why.push_str(&format!("; it serves {} instead", elsewhere.join(" and ")));
        }
    }
    why
}

fn other(transport: Transport) -> Transport {
    match transport {
        Transport::Tcp => Transport::Udp,
        Transport::Udp => Transport::Tcp,
    }
}

/// What the revive hook works with while the probes run.
struct Supervisor<'a> {
    program: &'a mut Program,
    transport: Transport,
    port: u16,
    isolated: bool,
    ready_within: Duration,
    /// The probes after which the program was started again.
    restarts: Vec<String>,
    /// Time spent restarting so far.
    spent: Duration,
    /// What a restart showed about rebinding the port at once, if one did.
    rebind: Option<Rebind>,
    /// Whether a stop before a restart took SIGKILL.
    killed: bool,
}

impl Supervisor<'_> {
    fn revive(&mut self, death: Death<'_>) -> Revival {
        let words = self.last_words();
        if !death.restart {
            return Revival::Gone(words);
        }
        let left = RESTARTS_WITHIN.saturating_sub(self.spent);
        if left.is_zero() {
            let spent = humantime::format_duration(RESTARTS_WITHIN);
            return Revival::Gone(format!("{words}; not started again: restarts have taken {spent} already"));
        }
        let began = Instant::now();
        let outcome = self.restart(death.after, left);
        self.spent += began.elapsed();
        match outcome {
            Ok(how) => {
                self.restarts.push(death.after.to_owned());
                Revival::Restarted(format!("{words}; {how}"))
            }
            Err(why) => Revival::Gone(format!("{words}; {why}")),
        }
    }

    /// What became of the program: how it ended and what it said as it died, or that it still
    /// runs without answering.
    fn last_words(&mut self) -> String {
        // A dying program closes its sockets a moment before it is seen to exit.
        let Some(exit) = self.program.wait_exit(DYING) else {
            let what = match self.transport {
                Transport::Tcp => "answered no new connection",
                Transport::Udp => "answered no datagram",
            };
            return format!("the program still ran, but {what}");
        };
        let said = exit.last_words();
        let mut words = format!("the program {exit}");
        match (said.error, said.location) {
            (Some(error), Some(location)) => words.push_str(&format!(": {error} ({location})")),
            (Some(error), None) => words.push_str(&format!(": {error}")),
            (None, _) => words.push_str(", saying nothing on stderr"),
        }
        if exit.signal_name() == Some("SIGPIPE") {
            words.push_str(
                " (SIGPIPE: it wrote to a connection the client had closed; C: send with MSG_NOSIGNAL, or \
                 signal(SIGPIPE, SIG_IGN))",
            );
        }
        words
    }

    /// Starts the program again, within `within`: how, or why it did not come back.
    fn restart(&mut self, after: &str, within: Duration) -> Result<String, String> {
        let (transport, port) = (self.transport, self.port);
        let ready = |p: &Program| p.serves(transport, port);
        let began = Instant::now();
        let stopped = self.program.start_again().map_err(|e| format!("starting it again failed: {e}"))?;
        self.killed |= stopped.ending == Ending::Killed;
        let bound = self.ready_within.min(within);
        let refused = match self.program.try_ready(bound, ready) {
            Ok(_) => {
                return Ok(format!("started again, answering {:.1} s later", began.elapsed().as_secs_f64()))
            }
            Err(ProgramError::NotReady { exit: Some(exit), port_held: true, .. }) => {
                exit.last_words().error.unwrap_or_else(|| "Address already in use".to_owned())
            }
            Err(error) => return Err(format!("starting it again failed: {error}")),
        };
        let when = format!("after \"{after}\"");
        let moved = self.isolated && netns::enter_fresh().is_ok();
        let came_back = if moved {
            self.program
                .start_again()
                .map_err(|e| e.to_string())
                .and_then(|_| self.program.try_ready(bound, ready).map_err(|e| e.to_string()))
        } else {
            let left = within.saturating_sub(began.elapsed());
            self.program.wait_ready(left, ready).map_err(|e| e.to_string())
        };
        let then = match (&came_back, moved) {
            (Ok(_), true) => "started again in a fresh network namespace".to_owned(),
            (Ok(_), false) => {
                format!("started again once the port was free, {:.0} s later", began.elapsed().as_secs_f64())
            }
            (Err(error), _) => format!("it did not come back: {error}"),
        };
        self.rebind.get_or_insert(Rebind::Refused { when, said: refused.clone(), then: then.clone() });
        came_back.map(|_| {
            format!("it could not bind its port again at once (\"{refused}\"): {then} (see \"restart\")")
        })
    }
}

/// After the probes: a client connected as the lecture's does, the program stopped, the client
/// closing once the server's end has closed (which leaves the server's end in TIME_WAIT), and
/// the program started again at once. How the first stop went comes back too.
fn rebind_at_once(
    program: &mut Program,
    addr: SocketAddr,
    timeout: Duration,
    within: Duration,
) -> (Rebind, super::program::Stopped) {
    let client = TcpStream::connect_timeout(&addr, timeout).ok();
    if let Some(mut client) = client.as_ref() {
        let _ = client.set_read_timeout(Some(timeout));
        let mut reply = [0; 12];
        let _ = client.write_all(b"hello, world").and_then(|()| client.read(&mut reply));
    }
    let stopped = program.stop();
    if let Some(mut client) = client {
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest);
    }
    let port = addr.port();
    let held = tcp_port_in_time_wait(port);
    let rebind = match program.start_again() {
        Err(error) => Rebind::Failed(error.to_string()),
        Ok(_) => match program.try_ready(within, |p| p.serves(Transport::Tcp, port)) {
            Ok(_) => Rebind::AtOnce { held },
            Err(ProgramError::NotReady { exit: Some(exit), port_held: true, .. }) => Rebind::Refused {
                when: "after it was stopped with a client connected".to_owned(),
                said: exit.last_words().error.unwrap_or_else(|| "Address already in use".to_owned()),
                then: "a restart fails until the connection leaves TIME_WAIT, a minute later".to_owned(),
            },
            Err(error) => Rebind::Failed(error.to_string()),
        },
    };
    (rebind, stopped)
}
