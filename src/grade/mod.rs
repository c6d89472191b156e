//! `upcase grade`: every submission of a class ([`class`]) checked as `upcase check --run` checks
//! one (a client as the client check does), each bounded by its budget, and the cards handed back
//! as a teacher needs them ([`output`]): a CSV of grades, a card and Gradescope's results per
//! submission, one JUnit file for the class.
//!
//! Submissions run one after another unless told to run several at once; each runs in a network
//! namespace of its own where this process may create one ([`crate::check::netns`]), so that all
//! of them can have port 12000 together and nothing one leaves behind (a port in TIME_WAIT)
//! reaches the next. Where it may not, they run on this machine's loopback, one at a time. This
//! module never prints and never exits: it reports progress through a callback.

pub mod class;
pub mod output;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::Instant;

pub use class::{Class, ClassError, Role, Submission};

use crate::check::program::Spec;
use crate::check::supervised::{self, Supervision};
use crate::check::{self, netns, Card, Options, Rubric};
use crate::net::Transport;

/// How a class is graded.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Points per criterion, per transport, for servers.
    pub rubrics: HashMap<Transport, Rubric>,
    /// Points per criterion, per transport, for clients.
    pub client_rubrics: HashMap<Transport, Rubric>,
    /// How many submissions run at once (at least 1).
    pub jobs: usize,
    /// Whether each submission runs in a network namespace of its own.
    pub isolated: bool,
}

/// What happened to a submission, as grading goes.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// It started: its index in the class.
    Started(usize),
    /// It was graded: its index and card.
    Graded(usize, &'a Card),
}

/// Grades every submission of `class`, `settings.jobs` at a time, telling `progress` as each
/// starts and ends; the cards come back in the class's order.
pub fn grade_class(class: &Class, settings: &Settings, progress: &(dyn Fn(Event<'_>) + Sync)) -> Vec<Card> {
    let count = class.submissions.len();
    let next = AtomicUsize::new(0);
    let cards: Mutex<Vec<Option<Card>>> = Mutex::new(vec![None; count]);
    thread::scope(|scope| {
        for _ in 0..settings.jobs.clamp(1, count.max(1)) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(submission) = class.submissions.get(index) else { break };
                progress(Event::Started(index));
                // A thread per submission: a namespace it enters ends with it.
                let card = thread::scope(|one| {
                    one.spawn(|| grade(submission, settings)).join().unwrap_or_else(|_| {
                        unavailable(
                            submission,
                            settings,
                            "grading this submission failed unexpectedly (a panic)",
                        )
                    })
                });
                progress(Event::Graded(index, &card));
                if let Some(slot) = cards.lock().unwrap_or_else(PoisonError::into_inner).get_mut(index) {
                    *slot = Some(card);
                }
            });
        }
    });
    let cards = cards.into_inner().unwrap_or_else(PoisonError::into_inner);
    cards
        .into_iter()
        .zip(&class.submissions)
        .map(|(card, submission)| card.unwrap_or_else(|| unavailable(submission, settings, "not graded")))
        .collect()
}

/// Grades one submission on the calling thread, in a network namespace of its own if
/// `settings.isolated`.
pub fn grade(submission: &Submission, settings: &Settings) -> Card {
    let started = Instant::now();
    if settings.isolated {
        if let Err(error) = netns::enter_fresh() {
            return unavailable(submission, settings, &format!("cannot isolate it: {error}"));
        }
    }
    let options = options(submission, settings);
    let mut spec = Spec::new(match &submission.program {
        Role::Server(command) | Role::Client(command) => command.clone(),
    });
    spec.dir = Some(submission.dir.clone());
    match &submission.program {
        Role::Server(_) => {
            supervised::run_program(&options, &Supervision { spec, isolated: settings.isolated })
        }
        Role::Client(_) => grade_client(&options, spec).unwrap_or_else(|error| {
            check::cannot_check(&options, "client", &error.to_string(), CLIENT_ADVICE, started.elapsed())
        }),
    }
}

/// Advice on a client that could not be graded because the server it needs could not be played.
const CLIENT_ADVICE: &str = "The grading machine could not play the server at this address: free the port \
                             (another program holds it), or give the submission another `to`.";

/// Grades a client submission: upcase plays the server at its address and runs the client
/// against it, once per scenario ([`check::client`]).
///
/// # Errors
/// [`check::CheckError`] when the server cannot be played at the submission's address.
fn grade_client(options: &Options, spec: Spec) -> Result<Card, check::CheckError> {
    let transport = options.transport;
    let mut client = check::client::ClientOptions::new(spec.command, transport);
    client.dir = spec.dir;
    client.target.clone_from(&options.target);
    client.budget = options.budget;
    client.rubric = options.rubric.clone();
    check::client::run(&client)
}

/// The check's options for a submission.
fn options(submission: &Submission, settings: &Settings) -> Options {
    let transport = submission.transport;
    Options {
        target: submission.to.clone(),
        transport,
        timeout: submission.timeout,
        budget: submission.budget,
        encoding: None,
        rubric: match submission.program {
            Role::Server(_) => {
                settings.rubrics.get(&transport).cloned().unwrap_or_else(|| Rubric::default_for(transport))
            }
            Role::Client(_) => settings
                .client_rubrics
                .get(&transport)
                .cloned()
                .unwrap_or_else(|| Rubric::default_for_client(transport)),
        },
    }
}

/// A `CANNOT_RUN` card for a submission that could not be graded at all, saying why.
fn unavailable(submission: &Submission, settings: &Settings, why: &str) -> Card {
    let options = options(submission, settings);
    match submission.program {
        Role::Server(_) => supervised::cannot_start(&options, why, std::time::Duration::ZERO),
        Role::Client(_) => check::cannot_check(&options, "client", why, "", std::time::Duration::ZERO),
    }
}
