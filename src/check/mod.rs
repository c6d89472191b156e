//! `upcase check`: grades any server that claims to speak the lecture's protocol and produces a
//! report card, one row per probe (pass, warn, fail, skip, info), with evidence and advice, rows
//! grouped into criteria worth points.
//!
//! Every exchange the check makes is on the card. The first probe is the lecture's own client
//! (send a sentence, read the reply), so a fragile server is first judged on what it was written
//! for; when nothing accepts it, the card says so (`CANNOT_RUN`). After every probe a round trip
//! ("hello, world", then a half-close; over UDP, up to two datagrams) tells whether the server
//! still answers; when it does not, the row of the probe it follows says so ("then the server
//! stopped answering") and the rest are skipped, saying why. A server that answers, even wrongly,
//! keeps being probed.
//!
//! The probes run one after another. Every wait is bounded by [`Options::timeout`], every probe by
//! a few timeouts, and the whole check by [`Options::budget`]: probes the budget does not reach
//! are skipped, and one it cuts short is reported as skipped rather than failed. This module never
//! binds a listening socket, never talks to anything but the given target, and never prints.
//!
//! - [`card`]: the card's data, its verdict; [`report`]: the card as text, JSON, Gradescope's
//!   results.json and JUnit XML; [`rubric`]: the criteria, points and scoring.
//! - `tcp`, `udp`: the probes of each transport, in the order they run.
//! - `diagnosis`: what a wrong reply shows (NUL padding, stale bytes, a cut, ...), with advice.
//! - `judge`: what the text probes send in the encoding graded, and what counts as correct.
//! - `detect`: the `encoding` row, which encoding the server appears to assume.
//! - `connection`: a slow client, half-close, several messages on one connection; `latency`:
//!   round trips timed; `crowd`: many clients at once and a burst of connects; `loss`: UDP
//!   requests under loss, with retries.
//! - `progress`: the rows in order, the round trip after each, and what a death says.
//! - [`client`]: `--client`, grading a client instead: upcase plays the server, scenario by
//!   scenario; [`program`]: the supervisor of a program under test.
//! - `wire`: bounded exchanges, and how an exchange ended, in words.

pub mod card;
pub mod client;
mod conduct;
mod connection;
mod criterion;
mod crowd;
mod detect;
mod diagnosis;
mod judge;
mod latency;
mod loss;
pub mod netns;
pub mod program;
mod progress;
pub mod report;
pub mod rubric;
pub mod supervised;
mod tcp;
mod udp;
mod wire;

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use card::{Card, Row, Status, Verdict};
pub use rubric::{Criterion, Rubric};

use crate::net::{NetError, Transport};
use crate::transform::{encode_text, uppercase, Encoding};
use card::Problem;
pub use progress::{Death, Revival};
use progress::{Life, Progress};

/// What to check and how patiently.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server, HOST:PORT.
    pub target: String,
    /// The transport to grade.
    pub transport: Transport,
    /// The longest any single wait (a connect, a reply) may take.
    pub timeout: Duration,
    /// The longest the whole check may take (`upcase check` gives it 30 s unless told otherwise).
    pub budget: Duration,
    /// The encoding the server promises: every text probe is written in it and judged by its
    /// uppercase there. `None`: UTF-8, and the `encoding` row guesses what the server assumes.
    pub encoding: Option<Encoding>,
    /// Points per criterion ([`Rubric::default_for`] the transport unless a teacher gives one).
    pub rubric: Rubric,
}

/// Why no probe could run at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The target does not resolve, or nothing answers there.
    #[error(transparent)]
    Net(#[from] NetError),
    /// This machine could not open what a probe needs (a socket).
    #[error("cannot check: {what}: {reason}")]
    Setup {
        /// What was being done.
        what: &'static str,
        /// The operating system's reason.
        reason: io::Error,
    },
    /// `--client`: the server cannot be played at the address the client talks to.
    #[error(
        "cannot play the server at {transport} {addr}: {}{}",
        crate::net::describe_io(reason),
        stage_hint(reason)
    )]
    Stage {
        /// The transport played.
        transport: Transport,
        /// The address.
        addr: SocketAddr,
        /// The operating system's reason.
        reason: io::Error,
    },
}

fn stage_hint(reason: &io::Error) -> &'static str {
    match reason.kind() {
        io::ErrorKind::AddrInUse => {
            " (a server already runs there: stop it, or give the client another port and --to the same one)"
        }
        io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges: use a port above 1023)",
        _ => " (give --to the address the client talks to, e.g. localhost:12000)",
    }
}

/// A probe: its name, and what it does to the server at the address.
type Probe = (&'static str, fn(&Ctx) -> Row);

/// A transport's probes: the lecture's client (an error when nothing answers it), the rest in
/// order, and the round trip after each.
struct Plan {
    first: fn(&Ctx) -> Result<Row, CheckError>,
    probes: &'static [Probe],
    alive: fn(&Ctx) -> Life,
}

/// The first probe's name: the lecture's own client.
const FIRST: &str = "lecture client";

/// What every probe needs: where, how patiently, until when, in which encoding, and what was
/// sent and seen so far.
#[derive(Debug)]
struct Ctx {
    addr: SocketAddr,
    transport: Transport,
    timeout: Duration,
    budget: Duration,
    /// When the budget runs out: later by the time a supervisor took to restart the server.
    deadline: Cell<Instant>,
    /// The encoding given with `--encoding`, if any.
    given: Option<Encoding>,
    /// The basic round trip's message, written in the encoding graded.
    hello: Vec<u8>,
    /// Its correct reply.
    hello_reply: Vec<u8>,
    /// Every message sent so far, each written over the start of the one before, as a server
    /// that receives into one buffer for its whole life holds them: a reply that goes on with
    /// these bytes sent more than it received (at most [`BUFFER_MODEL`] bytes are kept).
    sent: RefCell<Vec<u8>>,
    /// Whether the server has sent anything back yet.
    heard: Cell<bool>,
}

/// The most of [`Ctx::sent`] kept: more than any student's buffer.
const BUFFER_MODEL: usize = 64 * 1024;

impl Ctx {
    fn new(options: &Options, addr: SocketAddr, started: Instant) -> Self {
        let mut ctx = Self {
            addr,
            transport: options.transport,
            timeout: options.timeout,
            budget: options.budget,
            deadline: Cell::new(started + options.budget),
            given: options.encoding,
            hello: Vec::new(),
            hello_reply: Vec::new(),
            sent: RefCell::new(Vec::new()),
            heard: Cell::new(false),
        };
        ctx.hello = ctx.text(HELLO);
        ctx.hello_reply = ctx.upper(&ctx.hello);
        ctx
    }

    /// The encoding messages are written in and replies judged by.
    fn encoding(&self) -> Encoding {
        self.given.unwrap_or(Encoding::Utf8)
    }

    /// `text` written in the encoding graded. Probes pass ASCII here, which every supported
    /// encoding writes; were a character unwritable, its UTF-8 bytes go instead.
    fn text(&self, text: &str) -> Vec<u8> {
        encode_text(text, self.encoding()).unwrap_or_else(|_| text.as_bytes().to_vec())
    }

    /// The correct reply to `message`: its uppercase in the encoding graded.
    fn upper(&self, message: &[u8]) -> Vec<u8> {
        uppercase(message, self.encoding())
    }

    /// Notes a message sent: it is written over the start of the ones before.
    fn remember(&self, message: &[u8]) {
        let mut sent = self.sent.borrow_mut();
        let len = message.len().min(BUFFER_MODEL);
        if sent.len() < len {
            sent.resize(len, 0);
        }
        if let (Some(start), Some(message)) = (sent.get_mut(..len), message.get(..len)) {
            start.copy_from_slice(message);
        }
    }

    /// What a buffer that received every message sent so far holds from `from` on, `len` bytes
    /// (fewer when nothing that long was sent).
    fn sent_at(&self, from: usize, len: usize) -> Vec<u8> {
        let sent = self.sent.borrow();
        sent.get(from.min(sent.len())..(from + len).min(sent.len())).unwrap_or_default().to_vec()
    }

    /// The length of the longest message sent so far.
    fn longest_sent(&self) -> usize {
        self.sent.borrow().len()
    }

    /// Notes that the server sent something back.
    fn heard(&self, reply: &[u8]) {
        if !reply.is_empty() {
            self.heard.set(true);
        }
    }

    /// Whether `reply` answers `hello`, for a probe that counts answers: it starts with the
    /// right uppercase, once lowercase letters are uppercased. Whatever else is wrong with it
    /// (NUL padding, stale bytes, a letter left lowercase) is the text probes' to judge, once.
    fn answers_hello(&self, reply: &[u8]) -> bool {
        reply
            .get(..self.hello_reply.len())
            .is_some_and(|start| start.to_ascii_uppercase() == self.hello_reply)
    }

    /// One wait: the timeout, or what is left of the budget when that is less (never zero,
    /// which sockets read as "forever").
    fn wait(&self) -> Duration {
        self.timeout.min(self.left()).max(Duration::from_millis(1))
    }

    /// What is left of the budget.
    fn left(&self) -> Duration {
        self.deadline.get().saturating_duration_since(Instant::now())
    }

    /// The end of a span starting now, or of the budget when that comes first.
    fn until(&self, span: Duration) -> Instant {
        (Instant::now() + span).min(self.deadline.get())
    }

    /// Whether the budget has run out.
    fn spent(&self) -> bool {
        Instant::now() >= self.deadline.get()
    }

    /// Moves the end of the budget later by `span`: time the probes did not spend.
    fn extend(&self, span: Duration) {
        self.deadline.set(self.deadline.get() + span);
    }
}

/// The lecture's sentence, sent by the first probe and by the round trip after every probe.
const HELLO: &str = "hello, world";

/// Runs every probe of the transport against the target and returns the card; a target that
/// does not resolve or answer gets a card too, with the verdict `CANNOT_RUN`.
pub fn run(options: &Options) -> Card {
    run_with(options, &mut |_| Revival::Unsupervised)
}

/// [`run`], with `revive` called when the server stops answering after a probe ([`Death`]): a
/// supervisor of the program under test says what became of it, and may restart it, and then
/// probing goes on ([`Revival`]). The time `revive` takes is not counted in the budget, so it
/// must bound itself.
pub fn run_with(options: &Options, revive: &mut dyn FnMut(Death<'_>) -> Revival) -> Card {
    let started = Instant::now();
    let Plan { first, probes, alive } = match options.transport {
        Transport::Tcp => Plan { first: tcp::lecture_client, probes: tcp::PROBES, alive: tcp::alive },
        Transport::Udp => Plan { first: udp::lecture_client, probes: udp::PROBES, alive: udp::alive },
    };
    let addr = match resolve(&options.target) {
        Ok(addr) => addr,
        Err(error) => return cannot_run(options, None, &error.to_string(), ADVICE, started.elapsed()),
    };
    let ctx = Ctx::new(options, addr, started);
    let row = match first(&ctx) {
        Ok(row) => row,
        Err(error) => return cannot_run(options, Some(addr), &error.to_string(), ADVICE, started.elapsed()),
    };
    let mut progress = Progress::new(&ctx, alive, revive);
    progress.record(FIRST, row);
    for (name, probe) in probes {
        if !progress.skipped(name) {
            let row = probe(&ctx);
            progress.record(name, row);
        }
    }
    let (rows, ran_out) = progress.finish();
    let problem = ran_out.then_some(Problem::RanOut(options.budget));
    Card::new(options, Some(addr), rows, started.elapsed(), problem)
}

/// What a card that could not start advises, when nothing answers at the address.
const ADVICE: &str = "Start the server, and check the address and port it listens on.";

/// The card of a check that could not start: the first row says `why` (with `advice`), every
/// probe of the transport is skipped, and the verdict is `CANNOT_RUN`.
pub fn cannot_run(
    options: &Options,
    addr: Option<SocketAddr>,
    why: &str,
    advice: &str,
    elapsed: Duration,
) -> Card {
    let probes = match options.transport {
        Transport::Tcp => tcp::PROBES,
        Transport::Udp => udp::PROBES,
    };
    let mut rows = vec![Row::new(FIRST, Status::Fail, why, advice)];
    let skipped = format!("not run: nothing answers at {}", options.target);
    rows.extend(probes.iter().map(|(name, _)| Row::new(name, Status::Skip, skipped.clone(), "")));
    Card::new(options, addr, rows, elapsed, Some(Problem::CannotRun(why.to_owned())))
}

/// The card of something that could not be checked at all (a client whose server could not be
/// played, or that could not be isolated): one failing row, `name`, saying why; the verdict
/// `CANNOT_RUN`.
pub fn cannot_check(options: &Options, name: &str, why: &str, advice: &str, elapsed: Duration) -> Card {
    let rows = vec![Row::new(name, Status::Fail, why, advice)];
    Card::new(options, None, rows, elapsed, Some(Problem::CannotRun(why.to_owned())))
}

/// The first address of the target, IPv4 first: the lecture's servers bind IPv4 only.
fn resolve(target: &str) -> Result<SocketAddr, CheckError> {
    let addrs = crate::net::resolve(target)?;
    addrs.first().copied().ok_or_else(|| {
        NetError::Resolve { spec: target.to_owned(), reason: io::ErrorKind::NotFound.into() }.into()
    })
}

/// A context for the probes' unit tests: a target nobody listens on (the discard port).
#[cfg(test)]
impl Ctx {
    fn for_test(timeout: Duration, budget: Duration, encoding: Option<Encoding>, started: Instant) -> Self {
        let options = Options {
            target: String::new(),
            transport: Transport::Tcp,
            timeout,
            budget,
            encoding,
            rubric: Rubric::default_for(Transport::Tcp),
        };
        Self::new(&options, SocketAddr::from(([127, 0, 0, 1], 9)), started)
    }
}

#[cfg(test)]
mod tests;
