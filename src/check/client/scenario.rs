//! The scenarios a client is run through, one row each, in order: what sentence it is given on
//! stdin, what the server played does with the reply, and what the client should print.
//!
//! Data only: the stage plays them, judging turns a run into a row.

use std::time::Duration;

use super::stage::Act;
use crate::faults::{Chance, Delay, Faults, Split};
use crate::net::Transport;
use crate::transform::{uppercase, Encoding};

/// How late the late reply is: past the one second many clients wait, short of what a patient
/// one waits.
pub(super) const LATE_BY: Duration = Duration::from_millis(1500);
/// The segments of a segmented reply, and the pause between them.
pub(super) const SEGMENT: usize = 10;
pub(super) const SEGMENT_PAUSE: Duration = Duration::from_millis(300);
/// The length of the long reply: more than the 1,024 or 2,048 bytes students read at once.
pub(super) const LONG: usize = 5_000;

/// One scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scenario {
    /// The lecture's exchange: a sentence, its uppercase.
    Normal,
    /// UDP: the first reply is lost; a retry is answered.
    Lost,
    /// Every reply comes 1.5 s late.
    Late,
    /// TCP: the reply comes in 10-byte segments, 300 ms apart.
    Segmented,
    /// A 5,000-byte sentence, and its reply.
    Long,
    /// The reply is in Latin-1: `É` is the byte 0xC9, which is not UTF-8.
    NotUtf8,
    /// Nothing listens at the address.
    NoServer,
}

impl Scenario {
    /// The scenarios of a transport, in the order they run: the lecture's exchange first.
    pub(super) fn for_transport(transport: Transport) -> Vec<Self> {
        let all = [
            Self::Normal,
            Self::Lost,
            Self::Late,
            Self::Segmented,
            Self::Long,
            Self::NotUtf8,
            Self::NoServer,
        ];
        all.into_iter().filter(|scenario| scenario.applies_to(transport)).collect()
    }

    fn applies_to(self, transport: Transport) -> bool {
        match self {
            Self::Lost => transport == Transport::Udp,
            Self::Segmented => transport == Transport::Tcp,
            _ => true,
        }
    }

    /// The row's name (see [`crate::check::Criterion::for_row`]).
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal reply",
            Self::Lost => "lost reply",
            Self::Late => "late reply",
            Self::Segmented => "segmented reply",
            Self::Long => "5,000-byte reply",
            Self::NotUtf8 => "reply not utf-8",
            Self::NoServer => "no server",
        }
    }

    /// The sentence the client is given (its stdin is the sentence and a newline).
    pub(super) fn sentence(self) -> Vec<u8> {
        let text = match self {
            Self::Normal | Self::NoServer => "hello, world",
            Self::Lost => "is anybody there",
            Self::Late => "take your time",
            Self::Segmented => "the quick brown fox jumps over the lazy dog",
            Self::NotUtf8 => "café au lait",
            Self::Long => {
                let unit = b"the quick brown fox jumps over the lazy dog, ";
                return unit.iter().copied().cycle().take(LONG).collect();
            }
        };
        text.as_bytes().to_vec()
    }

    /// What the server played sends for a request.
    fn reply(self) -> fn(&[u8]) -> Vec<u8> {
        match self {
            Self::NotUtf8 => latin1_uppercase,
            _ => utf8_uppercase,
        }
    }

    /// The reply to the sentence itself: what the client should print.
    pub(super) fn expected(self) -> Vec<u8> {
        self.reply()(&self.sentence())
    }

    /// What the server played does (nothing, with no server).
    pub(super) fn act(self) -> Act {
        let (faults, faulty) = match self {
            Self::Lost => (Faults { drop: Chance::ALWAYS, ..Faults::default() }, 1),
            Self::Late => {
                let delay = Delay { by: LATE_BY, chance: Chance::ALWAYS };
                (Faults { delay: Some(delay), ..Faults::default() }, usize::MAX)
            }
            Self::Segmented => {
                let split = Split { bytes: SEGMENT, chance: Chance::ALWAYS };
                (Faults { split: Some(split), pause: SEGMENT_PAUSE, ..Faults::default() }, usize::MAX)
            }
            _ => (Faults::default(), 0),
        };
        Act { faults, faulty, reply: self.reply(), sentence_len: self.sentence().len() }
    }
}

fn utf8_uppercase(request: &[u8]) -> Vec<u8> {
    uppercase(request, Encoding::Utf8)
}

/// The uppercase written in Latin-1 (ISO-8859-1: one byte per character up to U+00FF, `?` for the
/// rest), as a server that never decided on UTF-8 sends it.
fn latin1_uppercase(request: &[u8]) -> Vec<u8> {
    let upper = uppercase(request, Encoding::Utf8);
    String::from_utf8_lossy(&upper).chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_transport_gets_its_own_scenarios() {
        let names = |t| Scenario::for_transport(t).into_iter().map(Scenario::name).collect::<Vec<_>>();
        assert_eq!(
            names(Transport::Tcp),
            [
                "normal reply",
                "late reply",
                "segmented reply",
                "5,000-byte reply",
                "reply not utf-8",
                "no server"
            ]
        );
        assert_eq!(
            names(Transport::Udp),
            ["normal reply", "lost reply", "late reply", "5,000-byte reply", "reply not utf-8", "no server"]
        );
    }

    #[test]
    fn every_row_is_charged_to_a_client_criterion_of_its_transport() {
        for transport in [Transport::Tcp, Transport::Udp] {
            for scenario in Scenario::for_transport(transport) {
                let criterion = crate::check::Criterion::for_row(scenario.name());
                assert!(
                    criterion.is_some_and(|c| c.is_for_clients() && c.applies_to(transport)),
                    "{scenario:?}"
                );
            }
        }
    }

    #[test]
    fn the_replies_are_what_the_scenarios_promise() {
        assert_eq!(Scenario::Normal.expected(), b"HELLO, WORLD");
        assert_eq!(Scenario::NotUtf8.expected(), b"CAF\xC9 AU LAIT");
        assert!(std::str::from_utf8(&Scenario::NotUtf8.expected()).is_err());
        let long = Scenario::Long.expected();
        assert_eq!(long.len(), LONG);
        assert!(long.is_ascii() && long.starts_with(b"THE QUICK BROWN FOX"));
        assert!(Scenario::Segmented.sentence().len() > 3 * SEGMENT);
    }
}
