//! What a card is graded on: the criteria its rows belong to, so that one flaw costs once (three
//! cut sizes are one "reads the whole message"), a server's and a client's. Naming only: the
//! points are the rubric's ([`super::rubric`]).

use serde::{Deserialize, Serialize};

use crate::net::Transport;

/// What the rubric gives points for; each row of the card belongs to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// The lecture's own client gets exactly the uppercase of its sentence, and so does every
    /// later request: nothing more (NUL padding, stale bytes), nothing left out.
    LectureClient,
    /// A message longer than one buffer, sent slowly, or holding several lines comes back whole.
    WholeMessage,
    /// ß, ﬁ, Greek, Cyrillic and emoji are uppercased in full, even cut across two reads.
    Unicode,
    /// Nothing a client sends (no bytes at all, bytes that are not UTF-8, a datagram from port
    /// 7) ends the server or gets a wrong answer.
    BadInput,
    /// A second client is served while a first is idle; a hundred or a thousand at once too.
    ManyClients,
    /// After the client's half-close, the whole reply and then a close (TCP only).
    CleanClose,
    /// Watched while it ran (only when upcase runs the program): no CPU spent while idle, no
    /// thread, process or zombie left per connection, ends on SIGTERM, restarts at once.
    RunsCleanly,
    /// A client: prints the reply to its sentence.
    PrintsTheReply,
    /// A UDP client: a lost reply makes it send again, not wait forever.
    SurvivesLoss,
    /// A client: a reply a second and a half late is still awaited and printed.
    WaitsForLateReplies,
    /// A client: a reply in several segments, or of 5,000 bytes, is printed whole.
    ReadsTheWholeReply,
    /// A client: a reply that is not UTF-8 is printed (replaced or escaped), not a crash.
    HandlesBadBytes,
    /// A client: with no server, one clear line and a non-zero exit, not a traceback or a hang.
    FailsClearly,
}

impl Criterion {
    /// Every criterion, a server's then a client's, in the order cards list them.
    pub const ALL: [Self; 13] = [
        Self::LectureClient,
        Self::WholeMessage,
        Self::Unicode,
        Self::BadInput,
        Self::ManyClients,
        Self::CleanClose,
        Self::RunsCleanly,
        Self::PrintsTheReply,
        Self::SurvivesLoss,
        Self::WaitsForLateReplies,
        Self::ReadsTheWholeReply,
        Self::HandlesBadBytes,
        Self::FailsClearly,
    ];

    /// The name in rubric files and JSON.
    pub fn id(self) -> &'static str {
        match self {
            Self::LectureClient => "lecture_client",
            Self::WholeMessage => "whole_message",
            Self::Unicode => "unicode",
            Self::BadInput => "bad_input",
            Self::ManyClients => "many_clients",
            Self::CleanClose => "clean_close",
            Self::RunsCleanly => "runs_cleanly",
            Self::PrintsTheReply => "prints_the_reply",
            Self::SurvivesLoss => "survives_loss",
            Self::WaitsForLateReplies => "waits_for_late_replies",
            Self::ReadsTheWholeReply => "reads_the_whole_reply",
            Self::HandlesBadBytes => "handles_bad_bytes",
            Self::FailsClearly => "fails_clearly",
        }
    }

    /// What a student reads on the card.
    pub fn title(self) -> &'static str {
        match self {
            Self::LectureClient => "answers the lecture's client",
            Self::WholeMessage => "reads the whole message",
            Self::Unicode => "full Unicode",
            Self::BadInput => "survives bad input",
            Self::ManyClients => "serves many clients",
            Self::CleanClose => "closes cleanly",
            Self::RunsCleanly => "runs cleanly",
            Self::PrintsTheReply => "prints the reply",
            Self::SurvivesLoss => "survives a lost datagram",
            Self::WaitsForLateReplies => "waits for a late reply",
            Self::ReadsTheWholeReply => "reads the whole reply",
            Self::HandlesBadBytes => "handles bytes that are not UTF-8",
            Self::FailsClearly => "fails clearly with no server",
        }
    }

    /// The criterion a row of that name belongs to; `None` for a row no criterion claims (it is
    /// shown, never graded).
    pub fn for_row(name: &str) -> Option<Self> {
        let criterion = match name {
            "lecture client" | "shorter message" | "reply source" => Self::LectureClient,
            "two lines" | "slow client" => Self::WholeMessage,
            size if size.starts_with("size ") => Self::WholeMessage,
            "unicode" | "split character" | "encoding" => Self::Unicode,
            "empty connection" | "empty message" | "invalid utf-8" | "source port 7" => Self::BadInput,
            "concurrency" | "many clients" | "connect burst" | "latency" | "loss" => Self::ManyClients,
            "half-close" | "persistent" => Self::CleanClose,
            "start" | "idle cpu" | "threads" | "processes" | "zombies" | "restart" | "stop" => {
                Self::RunsCleanly
            }
            "normal reply" => Self::PrintsTheReply,
            "lost reply" => Self::SurvivesLoss,
            "late reply" => Self::WaitsForLateReplies,
            "segmented reply" | "5,000-byte reply" => Self::ReadsTheWholeReply,
            "reply not utf-8" => Self::HandlesBadBytes,
            "no server" => Self::FailsClearly,
            _ => return None,
        };
        Some(criterion)
    }

    /// Whether a transport has rows of this criterion (UDP has no connection to close, TCP
    /// loses nothing).
    pub fn applies_to(self, transport: Transport) -> bool {
        !matches!(
            (self, transport),
            (Self::CleanClose, Transport::Udp) | (Self::SurvivesLoss, Transport::Tcp)
        )
    }

    /// Whether it grades a client (`upcase check --client`) rather than a server.
    pub fn is_for_clients(self) -> bool {
        matches!(
            self,
            Self::PrintsTheReply
                | Self::SurvivesLoss
                | Self::WaitsForLateReplies
                | Self::ReadsTheWholeReply
                | Self::HandlesBadBytes
                | Self::FailsClearly
        )
    }

    /// Whether only a check that runs the program itself has rows of this criterion.
    pub fn needs_program(self) -> bool {
        self == Self::RunsCleanly
    }
}
