//! `upcase check`: grades any server that claims to speak the lecture's protocol and produces a
//! report card, one row per probe (pass, warn, fail, skip, info), with evidence and advice.
//!
//! The probes run one after another. Every wait is bounded by [`Options::timeout`], every probe by
//! a few timeouts, and the whole check by [`Options::budget`]: probes the budget does not reach
//! are skipped, and one it cuts short is reported as skipped rather than failed, so a hung, dead
//! or merely slow server still gets a finished card in time. After every probe a basic round trip
//! tells whether the server survived it; when it did not, the probe is failed and the rest are
//! skipped, rather than reporting noise. This module never binds a listening socket, never talks
//! to anything but the given target, and never prints: the CLI does that.
//!
//! - [`card`]: the report card, its verdict, its rendering as a table.
//! - `tcp`, `udp`: the probes of each transport, in the order they run.
//! - `judge`: what the text probes send in the encoding graded, and what counts as correct.
//! - `detect`: the `encoding` row, which encoding the server appears to assume.
//! - `connection`: a slow client, half-close, several messages on one connection; `latency`:
//!   round trips timed; `crowd`: many clients at once and a burst of connects; `loss`: UDP
//!   requests under loss, with retries.
//! - `wire`: bounded exchanges (send, read until the reply is complete, the peer closes or a wait
//!   times out), and how an exchange ended, in words.

pub mod card;
mod connection;
mod crowd;
mod detect;
mod judge;
mod latency;
mod loss;
pub mod program;
mod tcp;
mod udp;
mod wire;

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use card::{Card, Row, Status};

use crate::net::{NetError, Transport};
use crate::transform::{encode_text, uppercase, Encoding};

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
}

/// Why a check could not run at all.
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
}

/// A probe: its name, and what it does to the server at the address.
type Probe = (&'static str, fn(&Ctx) -> Row);

/// What every probe needs: where, how patiently, until when, and in which encoding.
#[derive(Debug)]
struct Ctx {
    addr: SocketAddr,
    timeout: Duration,
    budget: Duration,
    /// When the budget runs out.
    deadline: Instant,
    /// The encoding given with `--encoding`, if any.
    given: Option<Encoding>,
    /// The basic round trip's message, written in the encoding graded.
    hello: Vec<u8>,
    /// Its correct reply.
    hello_reply: Vec<u8>,
}

impl Ctx {
    fn new(options: &Options, addr: SocketAddr, started: Instant) -> Self {
        let mut ctx = Self {
            addr,
            timeout: options.timeout,
            budget: options.budget,
            deadline: started + options.budget,
            given: options.encoding,
            hello: Vec::new(),
            hello_reply: Vec::new(),
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

    /// One wait: the timeout, or what is left of the budget when that is less (never zero,
    /// which sockets read as "forever").
    fn wait(&self) -> Duration {
        self.timeout.min(self.left()).max(Duration::from_millis(1))
    }

    /// What is left of the budget.
    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The end of a span starting now, or of the budget when that comes first.
    fn until(&self, span: Duration) -> Instant {
        (Instant::now() + span).min(self.deadline)
    }

    /// Whether the budget has run out.
    fn spent(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// The basic round trip every probe is followed by.
const HELLO: &str = "hello, world";

/// Runs every probe of the transport against the target and returns the card.
///
/// # Errors
/// [`CheckError`] when the target does not resolve or cannot be reached at all.
pub fn run(options: &Options) -> Result<Card, CheckError> {
    let started = Instant::now();
    let addr = resolve(&options.target)?;
    let ctx = Ctx::new(options, addr, started);
    let (probes, alive): (&[Probe], fn(&Ctx) -> bool) = match options.transport {
        Transport::Tcp => {
            tcp::reachable(&ctx)?;
            (tcp::PROBES, tcp::alive)
        }
        Transport::Udp => {
            udp::reachable(&ctx)?;
            (udp::PROBES, udp::alive)
        }
    };
    let mut rows = Vec::with_capacity(probes.len());
    let mut stopped: Option<(String, &str)> = None;
    let mut ran_out = false;
    for (name, probe) in probes {
        if stopped.is_none() && ctx.spent() {
            ran_out = true;
            let why = format!("not run: the {:?} budget ran out", ctx.budget);
            stopped = Some((why, "Raise --budget, or find out what made the probes above slow."));
        }
        if let Some((why, advice)) = &stopped {
            rows.push(Row::new(name, Status::Skip, why.clone(), advice));
            continue;
        }
        let mut row = probe(&ctx);
        if ctx.spent() {
            // Cut short: what it saw so far proves nothing either way, unless it already passed.
            if !matches!(row.status, Status::Pass | Status::Info) {
                row = row.cut_short(ctx.budget);
                ran_out = true;
            }
        } else if rows.is_empty() && row.status == Status::Fail {
            stopped = Some(("not tested: the basic round trip failed".to_owned(), FIX_ABOVE));
        } else if !alive(&ctx) && !ctx.spent() {
            row = row.died();
            stopped = Some((format!("not tested: the server died after probe {name}"), FIX_ABOVE));
        }
        rows.push(row);
    }
    Ok(Card::new(options, addr, rows, started.elapsed(), ran_out))
}

/// Advice on rows skipped because of a row above.
const FIX_ABOVE: &str = "Fix the rows above, then check again.";

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
        let options = Options { target: String::new(), transport: Transport::Tcp, timeout, budget, encoding };
        Self::new(&options, SocketAddr::from(([127, 0, 0, 1], 9)), started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_never_outlast_the_budget() {
        let (timeout, budget) = (Duration::from_secs(5), Duration::from_millis(200));
        let ctx = Ctx::for_test(timeout, budget, None, Instant::now());
        assert!(ctx.wait() <= Duration::from_millis(200));
        assert!(ctx.until(Duration::from_secs(60)) <= ctx.deadline);
        let spent = Ctx::for_test(timeout, budget, None, Instant::now() - Duration::from_secs(1));
        assert!(spent.spent());
        assert_eq!(spent.wait(), Duration::from_millis(1), "a zero wait would block forever");
    }

    #[test]
    fn the_round_trip_is_written_in_the_encoding_graded() {
        let ctx = |encoding| {
            Ctx::for_test(Duration::from_secs(1), Duration::from_secs(30), encoding, Instant::now())
        };
        let utf8 = ctx(None);
        assert_eq!(utf8.hello, b"hello, world");
        assert_eq!(utf8.hello_reply, b"HELLO, WORLD");
        let utf16 = ctx(Some(Encoding::Utf16Le));
        assert_eq!(utf16.hello.len(), 24);
        assert_eq!(utf16.hello_reply.get(..2), Some(&b"H\0"[..]));
    }
}
