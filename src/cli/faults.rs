//! The fault options of `upcase serve`: replies lost, late, doubled, reordered or sent in slow
//! pieces on purpose, so that students can test their own client (docs/TESTING-CLIENTS.md).
//! Parsing only: [`upcase::faults`] decides, the server carries the decisions out.

use std::time::Duration;

use clap::Args;

use super::parse_duration;
use upcase::faults::{Chance, Delay, Faults, Split};

/// Flags of `upcase serve` that inject faults. None is on by default.
#[derive(Debug, Args)]
#[command(next_help_heading = "Faults, for testing a client")]
pub(super) struct FaultArgs {
    /// UDP: drop this share of replies (0 to 1), as a lossy network would.
    #[arg(long, value_name = "P", value_parser = parse_chance)]
    drop: Option<Chance>,

    /// Send replies D late: every one, or a share P of them with D@P (e.g. 1500ms@0.2). TCP: the
    /// reply's first byte waits.
    #[arg(long, value_name = "D[@P]", value_parser = parse_delay)]
    delay: Option<Delay>,

    /// UDP: send this share of replies twice.
    #[arg(long, value_name = "P", value_parser = parse_chance)]
    duplicate: Option<Chance>,

    /// UDP: hold this share of replies and send each after the next reply (or after 1 s, if no
    /// other reply comes).
    #[arg(long, value_name = "P", value_parser = parse_chance)]
    reorder: Option<Chance>,

    /// TCP: send replies in segments of this many bytes, with --pause between them: every reply,
    /// or a share P of them with BYTES@P.
    #[arg(long, value_name = "BYTES[@P]", value_parser = parse_split)]
    split: Option<Split>,

    /// TCP: the pause between two segments of a split reply.
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = parse_duration)]
    pause: Duration,

    /// The seed of every fault decision: the same seed and options, the same faults, reply after
    /// reply [default: a new one each run, logged at start].
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
}

impl FaultArgs {
    /// The faults asked for; `None` when there are none, so the server's send paths stay as they
    /// are.
    pub(super) fn faults(&self) -> Option<Faults> {
        let faults = Faults {
            drop: self.drop.unwrap_or(Chance::NEVER),
            delay: self.delay,
            duplicate: self.duplicate.unwrap_or(Chance::NEVER),
            reorder: self.reorder.unwrap_or(Chance::NEVER),
            split: self.split,
            pause: self.pause,
            seed: self.seed.unwrap_or_else(fresh_seed),
        };
        faults.any().then_some(faults)
    }
}

/// A seed nobody chose: the clock's nanoseconds and the process id, mixed.
fn fresh_seed() -> u64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

fn parse_chance(text: &str) -> Result<Chance, String> {
    text.parse().map_err(|e: upcase::faults::FaultParseError| e.to_string())
}

fn parse_delay(text: &str) -> Result<Delay, String> {
    text.parse().map_err(|e: upcase::faults::FaultParseError| e.to_string())
}

fn parse_split(text: &str) -> Result<Split, String> {
    text.parse().map_err(|e: upcase::faults::FaultParseError| e.to_string())
}
