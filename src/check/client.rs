//! `upcase check --client`: grades a client. upcase plays the server at the address the client
//! talks to, runs the client once per scenario (a sentence on its stdin), reads what it printed,
//! how it ended and what it said as it died, and gives each scenario a row: the lecture's
//! exchange; a lost UDP reply; a reply 1.5 s late; a TCP reply in segments with pauses; a
//! 5,000-byte reply; a reply that is not UTF-8; no server at all.
//!
//! Every run is bounded ([`ClientOptions::patience`]) and the whole check too
//! ([`ClientOptions::budget`]); the client runs under [`super::program`], in a process group of
//! its own that is always stopped, so nothing it starts outlives its scenario. Faults come from
//! [`crate::faults`], as `upcase serve`'s do. This module never prints.
//!
//! - `scenario`: what each scenario gives the client and plays; `stage`: the server played;
//!   `judging`: a run turned into a row, and one flaw charged once; `advice`: what to change, in
//!   the client's language.

mod advice;
mod judging;
mod scenario;
mod stage;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::card::{Card, Problem, Row, Status};
use super::program::{Program, ProgramError, Spec};
use super::{CheckError, Rubric};
use crate::net::Transport;
use advice::Language;
use judging::Run;
use scenario::Scenario;
use stage::Stage;

/// The shortest a scenario may be given: a late reply takes 1.5 s to come.
const SHORTEST_RUN: Duration = Duration::from_secs(3);
/// How long a client has to end after SIGTERM, once its scenario is over.
const GRACE: Duration = Duration::from_secs(1);

/// Which client to grade, and how.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The client's command line, run with `sh -c` as a teacher would type it.
    pub command: String,
    /// The directory to run it in (the submission's), or the current one.
    pub dir: Option<PathBuf>,
    /// The address the client talks to, where upcase plays the server (`localhost` binds both
    /// 127.0.0.1 and ::1).
    pub target: String,
    /// The transport the client speaks.
    pub transport: Transport,
    /// The longest one scenario may take: a client still running then is stopped, and reported
    /// as hanging (at least 3 s, so that a late reply can come).
    pub patience: Duration,
    /// The longest the whole check may take: scenarios it does not reach are skipped.
    pub budget: Duration,
    /// Points per criterion ([`Rubric::default_for_client`] unless a teacher gives one).
    pub rubric: Rubric,
}

impl ClientOptions {
    /// `command`, speaking `transport` to the lecture's `localhost:12000`, in the current
    /// directory, 10 s per scenario, 60 s in all, the default rubric for clients.
    pub fn new(command: impl Into<String>, transport: Transport) -> Self {
        Self {
            command: command.into(),
            dir: None,
            target: format!("localhost:{}", crate::server::DEFAULT_PORT),
            transport,
            patience: Duration::from_secs(10),
            budget: Duration::from_secs(60),
            rubric: Rubric::default_for_client(transport),
        }
    }
}

/// Runs the client through every scenario of its transport and returns its card. A client that
/// cannot be started at all (its directory is missing) gets a card too, `CANNOT_RUN`.
///
/// # Errors
/// [`CheckError`] when upcase cannot play the server: the address does not resolve, or it cannot
/// be bound (a server already runs there). That is the grader's machine, not the client.
pub fn run(options: &ClientOptions) -> Result<Card, CheckError> {
    let started = Instant::now();
    let deadline = started + options.budget;
    let mut stage = Some(Stage::bind(&options.target, options.transport)?);
    let addr = stage.as_ref().and_then(Stage::addr);
    let language = Language::guess(&options.command);
    let scenarios = Scenario::for_transport(options.transport);
    let (mut rows, mut runs, mut ran_out) = (Vec::new(), Vec::new(), false);
    for scenario in scenarios.iter().copied() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left < SHORTEST_RUN {
            ran_out = true;
            let why = format!("not run: the {} budget ran out", humantime::format_duration(options.budget));
            rows.push(Row::new(scenario.name(), Status::Skip, why, "Raise --budget."));
            continue;
        }
        if scenario == Scenario::NoServer {
            stage = None;
        }
        let bound = options.patience.max(SHORTEST_RUN).min(left);
        let run = match play(options, scenario, stage.as_ref(), bound) {
            Ok(run) => run,
            Err(error) => return Ok(cannot_run(options, addr, &error, &scenarios, started)),
        };
        rows.push(judging::row(scenario, &run, options.transport, &options.target, language));
        runs.push((scenario, run));
    }
    judging::charge_once(&mut rows, &runs);
    let problem = ran_out.then_some(Problem::RanOut(options.budget));
    Ok(Card::for_client(options, addr, rows, started.elapsed(), problem))
}

/// Runs the client once, `stage` playing `scenario`'s server meanwhile (none: no server), and
/// stops it and everything it started after at most `bound`.
fn play(
    options: &ClientOptions,
    scenario: Scenario,
    stage: Option<&Stage>,
    bound: Duration,
) -> Result<Run, ProgramError> {
    let mut spec = Spec::new(options.command.clone());
    spec.dir.clone_from(&options.dir);
    spec.input = Some([scenario.sentence(), b"\n".to_vec()].concat());
    spec.grace = GRACE;
    let act = scenario.act();
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        let serving = stage.map(|stage| scope.spawn(|| stage.play(&act, &stop)));
        let started = Program::start(spec);
        let ran = started.map(|mut program| {
            let exit = program.wait_exit(bound);
            program.stop();
            (exit, program.stdout(), program.stderr())
        });
        stop.store(true, Ordering::Relaxed);
        let seen = serving.and_then(|serving| serving.join().ok()).unwrap_or_default();
        let (exit, stdout, stderr) = ran?;
        Ok(Run { exit, stdout, stderr, bound, seen })
    })
}

/// The card of a client that could not be started: the first row says why, the rest are skipped.
fn cannot_run(
    options: &ClientOptions,
    addr: Option<std::net::SocketAddr>,
    error: &ProgramError,
    scenarios: &[Scenario],
    started: Instant,
) -> Card {
    let why = error.to_string();
    let mut rows = Vec::new();
    for (i, scenario) in scenarios.iter().enumerate() {
        rows.push(match i {
            0 => Row::new(scenario.name(), Status::Fail, why.clone(), "Check the command and its directory."),
            _ => Row::new(scenario.name(), Status::Skip, "not run: the client could not be started", ""),
        });
    }
    Card::for_client(options, addr, rows, started.elapsed(), Some(Problem::CannotRun(why)))
}
