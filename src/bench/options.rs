//! What a bench is asked to do ([`Options`]), the choices in it ([`Pattern`], [`Clients`]), and
//! the one check that they make sense together before anything is sent.
//!
//! Plain data and its validation: nothing here opens a socket or reads a flag.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::interval::Interval;
use super::payload::Payload;
use super::{BenchError, Text};
use crate::net::{Transport, MAX_IPV4_PAYLOAD};
use crate::transform::Encoding;

/// `--clients independent` runs a thread per flow; more than this many threads is refused.
pub const MAX_INDEPENDENT_FLOWS: usize = 4_096;

/// At most this many percentiles are reported (each is a column of the table).
pub const MAX_PERCENTILES: usize = 12;

/// How each flow talks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pattern {
    /// Request/response on a connection kept open: the server's cost per request.
    #[default]
    Rr,
    /// Connect, request, response, close: the lecture's client, and the server's cost per
    /// connection. TCP only.
    Crr,
    /// Both directions at once for the whole run: throughput. TCP only.
    Stream,
}

impl Pattern {
    /// `rr`, `crr` or `stream`, as `--pattern` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rr => "rr",
            Self::Crr => "crr",
            Self::Stream => "stream",
        }
    }
}

/// How the flows are driven: the load a server sees differs, so a report says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Clients {
    /// All flows share the bench's few runtime threads (`--threads`): cheap for the bench, so
    /// it can drive many flows, but the server sees their requests in bursts, as one client
    /// multiplexing many connections would send them.
    #[default]
    Multiplexed,
    /// Each flow is its own OS thread with blocking sockets, as independent clients (separate
    /// programs, users) are: requests reach the server one by one, each wake-up its own.
    Independent,
}

impl Clients {
    /// `multiplexed` or `independent`, as `--clients` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Multiplexed => "multiplexed",
            Self::Independent => "independent",
        }
    }
}

/// What to run. [`Options::default`] is `upcase bench` without flags.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server, `HOST:PORT` or `[V6]:PORT`.
    pub target: String,
    /// UDP or TCP.
    pub transport: Transport,
    /// rr, crr or stream.
    pub pattern: Pattern,
    /// Flows at once: TCP connections (crr: connections in turn), UDP sockets.
    pub conns: usize,
    /// How long to send requests.
    pub duration: Duration,
    /// Bytes per request (stream: bytes of the text repeated through the connection).
    pub size: usize,
    /// Which text to send.
    pub text: Text,
    /// The encoding the server reads: the text is written in it, and replies are checked
    /// against its uppercase in it.
    pub encoding: Encoding,
    /// Open loop at this many requests per second over all flows; `None`: closed loop, each
    /// flow sends as soon as its previous reply is in.
    pub rate: Option<f64>,
    /// How long to wait for a connection or a reply before counting a failure.
    pub timeout: Duration,
    /// Measure this process's CPU time (the server's), to give its cost per request (Linux).
    pub server_pid: Option<u32>,
    /// Threads that run the flows when they are multiplexed. One leaves the other cores to a
    /// server on the same machine.
    pub threads: usize,
    /// Multiplexed flows, or a thread per flow.
    pub clients: Clients,
    /// The length of the intervals the run is cut into, for figures over time.
    pub interval: Duration,
    /// The latency percentiles to report, in ascending order (`99.9` is the 99.9th).
    pub percentiles: Vec<f64>,
}

/// The percentiles reported unless told otherwise.
pub fn default_percentiles() -> Vec<f64> {
    vec![50.0, 90.0, 99.0, 99.9]
}

impl Default for Options {
    fn default() -> Self {
        Self {
            target: "localhost:12000".to_owned(),
            transport: Transport::Tcp,
            pattern: Pattern::Rr,
            conns: 1,
            duration: Duration::from_secs(5),
            size: 64,
            text: Text::Ascii,
            encoding: Encoding::Utf8,
            rate: None,
            timeout: Duration::from_secs(1),
            server_pid: None,
            threads: 1,
            clients: Clients::Multiplexed,
            interval: Duration::from_secs(1),
            percentiles: default_percentiles(),
        }
    }
}

/// How far the run has got, given to the caller at the end of every interval.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Time since the load started.
    pub elapsed: Duration,
    /// Replies so far, correct or not.
    pub completed: u64,
    /// Failures so far.
    pub errors: u64,
    /// The interval that just ended.
    pub interval: Interval,
}

/// Refuses options that contradict each other or make no sense, saying which and what to do.
pub(crate) fn validate(options: &Options) -> Result<(), BenchError> {
    let invalid = |why: &str| Err(BenchError::Invalid(why.to_owned()));
    if options.transport == Transport::Udp && options.pattern != Pattern::Rr {
        let pattern = options.pattern.name();
        return Err(BenchError::Invalid(format!(
            "--pattern {pattern} needs TCP (UDP has no connections or streams); use --pattern rr \
             with --udp, or drop --udp"
        )));
    }
    if options.conns == 0 {
        return invalid("--conns must be at least 1");
    }
    if options.clients == Clients::Independent && options.conns > MAX_INDEPENDENT_FLOWS {
        return Err(BenchError::Invalid(format!(
            "--clients independent runs a thread per flow: at most {MAX_INDEPENDENT_FLOWS} flows, not {}; \
             use --clients multiplexed for more",
            options.conns
        )));
    }
    if options.size == 0 {
        return invalid("--size must be at least 1 byte");
    }
    if options.duration.is_zero() || options.timeout.is_zero() {
        return invalid("--duration and --timeout must be longer than 0");
    }
    if options.duration > Duration::from_secs(365 * 24 * 3600) {
        return invalid("--duration must be under a year");
    }
    if options.interval < Duration::from_millis(10) {
        return invalid("--interval must be at least 10ms");
    }
    if options.percentiles.is_empty() || options.percentiles.len() > MAX_PERCENTILES {
        return Err(BenchError::Invalid(format!("--percentiles takes 1 to {MAX_PERCENTILES} percentiles")));
    }
    if options.percentiles.iter().any(|p| !(0.0..=100.0).contains(p)) {
        return invalid("--percentiles must be between 0 and 100");
    }
    match options.rate {
        Some(_) if options.pattern == Pattern::Stream => {
            return invalid("--rate paces requests: use it with --pattern rr or crr, not stream")
        }
        Some(rate) if !(rate.is_finite() && rate > 0.0) => {
            return invalid("--rate must be a positive number")
        }
        _ => {}
    }
    if options.transport == Transport::Udp {
        let reply = Payload::new(options.size, options.text, options.encoding, true).expected().len();
        if options.size.max(reply) > MAX_IPV4_PAYLOAD {
            return Err(BenchError::Invalid(format!(
                "a {}-byte request (reply: {reply} bytes) does not fit in one UDP datagram (at most \
                 {MAX_IPV4_PAYLOAD}); lower --size, or use TCP",
                options.size
            )));
        }
    }
    Ok(())
}
