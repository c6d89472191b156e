//! Faults injected into replies on purpose, so that a client can be tested against a network
//! that loses, delays, duplicates and reorders datagrams, and against a TCP server that sends a
//! reply in pieces, slowly: what `upcase serve --drop 0.2 --seed 7` does, and what
//! `upcase check --client` plays to grade a client (docs/TESTING-CLIENTS.md).
//!
//! This module only decides: a [`Plan`], seeded, says for each reply what happens to it, and the
//! same seed and options give the same decisions, reply after reply. It never touches a socket,
//! a clock or a thread; the server's send paths carry the decisions out.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A probability, from 0 (never) to 1 (always).
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd)]
pub struct Chance(f64);

impl Chance {
    /// Never.
    pub const NEVER: Self = Self(0.0);
    /// Always.
    pub const ALWAYS: Self = Self(1.0);

    /// The probability, `None` when it is not a number from 0 to 1.
    pub fn new(probability: f64) -> Option<Self> {
        (0.0..=1.0).contains(&probability).then_some(Self(probability))
    }

    /// The probability, 0 to 1.
    pub fn get(self) -> f64 {
        self.0
    }

    /// Whether it can ever happen.
    pub fn is_possible(self) -> bool {
        self.0 > 0.0
    }
}

/// Why a fault option could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FaultParseError(String);

impl FromStr for Chance {
    type Err = FaultParseError;

    /// `0.2`: a reply in five, on average.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.trim().parse::<f64>().ok().and_then(Self::new).ok_or_else(|| {
            FaultParseError(format!(
                "{text:?} is not a probability: give a number from 0 to 1 (0.1 for one reply in ten, 1 for all)"
            ))
        })
    }
}

impl fmt::Display for Chance {
    /// `20%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let percent = format!("{:.1}", self.0 * 100.0);
        write!(f, "{}%", percent.strip_suffix(".0").unwrap_or(&percent))
    }
}

/// Replies held back before they are sent: by how long, and how often.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delay {
    /// How long a delayed reply waits.
    pub by: Duration,
    /// How often a reply is delayed.
    pub chance: Chance,
}

impl FromStr for Delay {
    type Err = FaultParseError;

    /// `300ms` (every reply) or `300ms@0.5` (half of them).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (by, chance) = with_chance(text)?;
        let by = humantime::parse_duration(by.trim()).map_err(|e| {
            FaultParseError(format!("{by:?} is not a duration: {e} (write e.g. 300ms or 2s)"))
        })?;
        Ok(Self { by, chance })
    }
}

/// TCP replies sent in segments of a few bytes, with a pause between them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    /// Bytes per segment (at least 1).
    pub bytes: usize,
    /// How often a reply is split.
    pub chance: Chance,
}

impl FromStr for Split {
    type Err = FaultParseError;

    /// `8` (every reply in segments of 8 bytes) or `8@0.5` (half of them).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (bytes, chance) = with_chance(text)?;
        match bytes.trim().parse::<usize>() {
            Ok(bytes) if bytes > 0 => Ok(Self { bytes, chance }),
            _ => Err(FaultParseError(format!(
                "{bytes:?} is not a segment size: give a number of bytes, 1 or more"
            ))),
        }
    }
}

/// `VALUE` or `VALUE@PROBABILITY`.
fn with_chance(text: &str) -> Result<(&str, Chance), FaultParseError> {
    match text.split_once('@') {
        Some((value, chance)) => Ok((value, chance.parse()?)),
        None => Ok((text, Chance::ALWAYS)),
    }
}

/// Every fault to inject, and the seed that makes the run reproducible. The default injects none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// UDP: how often a reply is not sent at all.
    pub drop: Chance,
    /// UDP: replies sent late. TCP: replies whose first byte waits.
    pub delay: Option<Delay>,
    /// UDP: how often a reply is sent twice.
    pub duplicate: Chance,
    /// UDP: how often a reply is held and sent after the next one (or after [`REORDER_HOLD`],
    /// when no other reply comes).
    pub reorder: Chance,
    /// TCP: replies sent in segments.
    pub split: Option<Split>,
    /// TCP: the pause between two segments of a split reply.
    pub pause: Duration,
    /// The seed of every decision: the same seed and faults, the same decisions.
    pub seed: u64,
}

/// The longest a reordered UDP reply waits for another reply to overtake it: past this it is
/// sent anyway, so that a client sending one request at a time still gets its reply.
pub const REORDER_HOLD: Duration = Duration::from_secs(1);

impl Faults {
    /// Whether any fault can happen.
    pub fn any(&self) -> bool {
        self.drop.is_possible()
            || self.delay.is_some_and(|d| d.chance.is_possible() && !d.by.is_zero())
            || self.duplicate.is_possible()
            || self.reorder.is_possible()
            || self.split.is_some_and(|s| s.chance.is_possible())
    }

    /// The decisions for one stream of replies (a worker, a thread, a connection): the seed's own
    /// sequence, numbered `stream`, so that two streams never repeat each other.
    pub fn plan(&self, stream: u64) -> Plan {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(stream);
        Plan { faults: self.clone(), rng }
    }

    /// One line for a log: which faults are on, and the seed to run them again.
    pub fn describe(&self) -> String {
        let mut on = Vec::new();
        if self.drop.is_possible() {
            on.push(format!("UDP replies dropped {}", self.drop));
        }
        if let Some(delay) = self.delay.filter(|d| d.chance.is_possible()) {
            on.push(format!("replies delayed {} by {}", delay.chance, humantime::format_duration(delay.by)));
        }
        if self.duplicate.is_possible() {
            on.push(format!("UDP replies duplicated {}", self.duplicate));
        }
        if self.reorder.is_possible() {
            on.push(format!("UDP replies reordered {}", self.reorder));
        }
        if let Some(split) = self.split.filter(|s| s.chance.is_possible()) {
            on.push(format!(
                "TCP replies split {} into {}-byte segments {} apart",
                split.chance,
                split.bytes,
                humantime::format_duration(self.pause)
            ));
        }
        if on.is_empty() {
            return "no faults".to_owned();
        }
        format!("{} (seed {})", on.join(", "), self.seed)
    }
}

/// What happens to one UDP reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpFate {
    /// Not sent at all (nothing else applies).
    pub drop: bool,
    /// Sent this late.
    pub delay: Option<Duration>,
    /// Sent twice.
    pub duplicate: bool,
    /// Held, and sent after the next reply.
    pub reorder: bool,
}

/// What happens to one TCP reply (the reply to one read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpFate {
    /// Its first byte waits this long.
    pub delay: Option<Duration>,
    /// Sent in segments of this many bytes, with this pause between them.
    pub segments: Option<(usize, Duration)>,
}

/// Seeded decisions, one reply after another.
#[derive(Debug, Clone)]
pub struct Plan {
    faults: Faults,
    rng: ChaCha8Rng,
}

impl Plan {
    /// The fate of the next UDP reply. Every call draws the same number of times, whatever the
    /// outcome, so one decision never shifts the next.
    pub fn udp_reply(&mut self) -> UdpFate {
        let drop = self.roll(self.faults.drop);
        let delay = self.faults.delay.map(|d| (self.roll(d.chance), d.by));
        let duplicate = self.roll(self.faults.duplicate);
        let reorder = self.roll(self.faults.reorder);
        if drop {
            return UdpFate { drop, ..UdpFate::default() };
        }
        let delay = delay.filter(|(late, by)| *late && !by.is_zero()).map(|(_, by)| by);
        // A reply already late is not also held for the next one.
        UdpFate { drop, delay, duplicate, reorder: reorder && delay.is_none() }
    }

    /// The fate of the next TCP reply.
    pub fn tcp_reply(&mut self) -> TcpFate {
        let delay = self.faults.delay.map(|d| (self.roll(d.chance), d.by));
        let split = self.faults.split.map(|s| (self.roll(s.chance), s.bytes));
        TcpFate {
            delay: delay.filter(|(late, by)| *late && !by.is_zero()).map(|(_, by)| by),
            segments: split.filter(|(split, _)| *split).map(|(_, bytes)| (bytes.max(1), self.faults.pause)),
        }
    }

    /// Whether something of `chance` happens this time: a uniform draw in [0, 1) below it.
    fn roll(&mut self, chance: Chance) -> bool {
        // The top 53 bits, the precision of an f64: uniform in [0, 1).
        let uniform = (self.rng.next_u64() >> 11) as f64 / (1_u64 << 53) as f64;
        uniform < chance.get()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn lossy(seed: u64) -> Faults {
        Faults {
            drop: Chance(0.3),
            delay: Some(Delay { by: Duration::from_millis(50), chance: Chance(0.2) }),
            duplicate: Chance(0.1),
            reorder: Chance(0.1),
            split: Some(Split { bytes: 4, chance: Chance(0.5) }),
            pause: Duration::from_millis(10),
            seed,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_decisions() {
        let decisions = |seed, stream| {
            let mut plan = lossy(seed).plan(stream);
            (0..200).map(|_| (plan.udp_reply(), plan.tcp_reply())).collect::<Vec<_>>()
        };
        assert_eq!(decisions(7, 0), decisions(7, 0));
        assert_ne!(decisions(7, 0), decisions(8, 0), "another seed, other decisions");
        assert_ne!(decisions(7, 0), decisions(7, 1), "another stream, other decisions");
    }

    #[test]
    fn each_fault_comes_about_as_often_as_asked() {
        let mut plan = lossy(42).plan(0);
        let fates: Vec<UdpFate> = (0..10_000).map(|_| plan.udp_reply()).collect();
        let share = |f: fn(&UdpFate) -> bool| fates.iter().filter(|fate| f(fate)).count() as f64 / 10_000.0;
        let dropped = share(|f| f.drop);
        assert!((0.27..0.33).contains(&dropped), "dropped {dropped}");
        // Of the 70% not dropped: 20% delayed, 10% duplicated, 10% of the rest reordered.
        let delayed = share(|f| f.delay.is_some());
        assert!((0.12..0.16).contains(&delayed), "delayed {delayed}");
        assert!(fates.iter().all(|f| !(f.drop && (f.duplicate || f.delay.is_some()))));
        assert!(fates.iter().all(|f| !(f.reorder && f.delay.is_some())));
        let split = (0..10_000).filter(|_| plan.tcp_reply().segments.is_some()).count();
        assert!((4_700..5_300).contains(&split), "split {split}");
    }

    #[test]
    fn never_and_always_mean_it() {
        let mut none = Faults::default().plan(0);
        assert!((0..1000).all(|_| none.udp_reply() == UdpFate::default()));
        assert!(!Faults::default().any());
        let all = Faults { drop: Chance::ALWAYS, ..Faults::default() };
        let mut plan = all.plan(3);
        assert!((0..1000).all(|_| plan.udp_reply().drop));
        assert!(all.any());
    }

    #[test]
    fn options_are_read_with_clear_errors() {
        assert_eq!("0.25".parse::<Chance>(), Ok(Chance(0.25)));
        let err = "1.5".parse::<Chance>().unwrap_err().to_string();
        assert!(err.contains("from 0 to 1"), "{err}");
        assert!("-0.1".parse::<Chance>().is_err() && "NaN".parse::<Chance>().is_err());
        assert_eq!(
            "300ms@0.5".parse::<Delay>(),
            Ok(Delay { by: Duration::from_millis(300), chance: Chance(0.5) })
        );
        assert_eq!("2s".parse::<Delay>(), Ok(Delay { by: Duration::from_secs(2), chance: Chance::ALWAYS }));
        assert!("soon".parse::<Delay>().unwrap_err().to_string().contains("300ms"));
        assert!("1s@2".parse::<Delay>().unwrap_err().to_string().contains("from 0 to 1"));
        assert_eq!("8".parse::<Split>(), Ok(Split { bytes: 8, chance: Chance::ALWAYS }));
        assert!("0".parse::<Split>().unwrap_err().to_string().contains("1 or more"));
    }

    #[test]
    fn the_start_line_names_every_fault_and_the_seed() {
        let line = lossy(9).describe();
        assert_eq!(
            line,
            "UDP replies dropped 30%, replies delayed 20% by 50ms, UDP replies duplicated 10%, \
             UDP replies reordered 10%, TCP replies split 50% into 4-byte segments 10ms apart (seed 9)"
        );
        assert_eq!(Faults::default().describe(), "no faults");
    }
}
