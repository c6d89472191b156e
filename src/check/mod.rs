//! `upcase check`: grades any server that claims to speak the lecture's protocol and produces a
//! report card, one row per probe (pass, warn, fail, skip, info), with evidence and advice.
//!
//! The probes are plain blocking sockets, one at a time, each wait bounded by
//! [`Options::timeout`], so a hung or dead server still gets a finished card. After every probe a
//! basic round trip tells whether the server survived it; when it did not, the probe is failed
//! and the rest are skipped, rather than reporting noise. This module never binds a listening
//! socket, never talks to anything but the given target, and never prints: the CLI does that.
//!
//! - [`card`]: the report card, its verdict, its rendering as a table.
//! - `tcp`, `udp`: the probes of each transport; `more`: many clients, persistence, UDP reply
//!   source and reflection guard, latency.
//! - `wire`: bounded exchanges (send, read until the reply is complete, the peer closes or a wait
//!   times out).

pub mod card;
mod more;
mod tcp;
mod udp;
mod wire;

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

pub use card::{Card, Row, Status};

use crate::transform::{uppercase, Encoding};

/// Which transport a check grades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// A connection per message, replies streamed back.
    Tcp,
    /// A datagram per message, a datagram per reply.
    Udp,
}

/// What to check and how patiently.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server, HOST:PORT.
    pub target: String,
    /// The transport to grade.
    pub transport: Transport,
    /// The longest any single wait (a connect, a reply) may take.
    pub timeout: Duration,
}

/// Why a check could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The target did not resolve to any address.
    #[error("cannot resolve {target}: {reason}")]
    Resolve {
        /// The target as given.
        target: String,
        /// What the resolver said.
        reason: String,
    },
    /// Nothing answered at the address: refused, or no connection within the timeout.
    #[error("cannot reach {addr} over {transport}: {reason}")]
    Unreachable {
        /// The address tried.
        addr: SocketAddr,
        /// "tcp" or "udp".
        transport: &'static str,
        /// What the socket said.
        reason: String,
    },
}

/// A probe: its name, and what it does to the server at the address.
type Probe = (&'static str, fn(&Ctx) -> Row);

/// What every probe needs.
#[derive(Debug)]
struct Ctx {
    addr: SocketAddr,
    timeout: Duration,
}

/// The correct reply to `message`: its full Unicode uppercase, in UTF-8.
fn expected(message: &[u8]) -> Vec<u8> {
    uppercase(message, Encoding::Utf8)
}

/// The basic round trip every probe is followed by.
const HELLO: &[u8] = b"hello, world";

/// Runs every probe of the transport against the target and returns the card.
///
/// # Errors
/// [`CheckError`] when the target does not resolve or cannot be reached at all.
pub fn run(options: &Options) -> Result<Card, CheckError> {
    let addr = resolve(&options.target)?;
    let ctx = Ctx { addr, timeout: options.timeout };
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
    let mut stopped: Option<String> = None;
    for (name, probe) in probes {
        if let Some(why) = &stopped {
            rows.push(Row::new(name, Status::Skip, why.clone(), "Fix the rows above, then check again."));
            continue;
        }
        let mut row = probe(&ctx);
        if rows.is_empty() && row.status == Status::Fail {
            stopped = Some("not tested: the basic round trip failed".to_owned());
        } else if !alive(&ctx) {
            row = row.died();
            stopped = Some(format!("not tested: the server died after probe {name}"));
        }
        rows.push(row);
    }
    Ok(Card::new(options, addr, rows))
}

/// The first address of the target.
fn resolve(target: &str) -> Result<SocketAddr, CheckError> {
    let failed = |reason: String| CheckError::Resolve { target: target.to_owned(), reason };
    target
        .to_socket_addrs()
        .map_err(|e| failed(e.to_string()))?
        .next()
        .ok_or_else(|| failed("no address".to_owned()))
}

/// `n` with thousands separators (30,000), as the bench writes its figures.
fn thousands(n: usize) -> String {
    crate::bench::thousands(u64::try_from(n).unwrap_or(u64::MAX))
}

/// An ASCII lowercase message of exactly `len` bytes.
fn ascii_message(len: usize) -> Vec<u8> {
    b"the quick brown fox jumps over the lazy dog ".iter().copied().cycle().take(len).collect()
}

/// Judges a reply to a message of `len` ASCII bytes that should come back whole and uppercased.
fn judge_size(len: usize, message: &[u8], reply: &[u8], advice_cut: &str) -> Row {
    let name = format!("size {}", thousands(len));
    let want = expected(message);
    if reply == want {
        return Row::new(&name, Status::Pass, format!("{} bytes came back whole", thousands(len)), "");
    }
    if reply.is_empty() {
        return Row::new(&name, Status::Fail, "no reply", advice_cut);
    }
    if want.starts_with(reply) {
        let cut = thousands(reply.len());
        return Row::new(
            &name,
            Status::Fail,
            format!("cut at {cut} bytes: the server reads with a {cut}-byte buffer once"),
            advice_cut,
        );
    }
    Row::new(
        &name,
        Status::Fail,
        format!("wrong reply: {} bytes, not the {} expected", thousands(reply.len()), thousands(want.len())),
        "Reply with exactly the uppercase of what was sent.",
    )
}

/// Text that exercises full Unicode uppercasing: ß, ﬁ, accented Greek, Cyrillic, an emoji, and
/// ΐ, whose uppercase is three characters.
const UNICODE: &str = "straße ﬁne άλφα ωμέγα привет 🎉 ΐ";

/// Judges the reply to [`UNICODE`].
fn judge_unicode(reply: &[u8]) -> Row {
    let name = "unicode";
    let want = expected(UNICODE.as_bytes());
    if reply == want {
        return Row::new(name, Status::Pass, "ß, ﬁ, Greek, Cyrillic, emoji and ΐ uppercased in full", "");
    }
    if reply == UNICODE.to_ascii_uppercase().as_bytes() {
        return Row::new(
            name,
            Status::Warn,
            "uppercases ASCII only: ß, Greek and Cyrillic came back unchanged",
            "Uppercase with full Unicode rules (str.upper() in Python, to_uppercase() in Rust).",
        );
    }
    if reply.is_empty() {
        return Row::new(name, Status::Fail, "no reply", "Decode UTF-8, uppercase, encode UTF-8.");
    }
    Row::new(
        name,
        Status::Fail,
        format!("wrong reply: {:?}", String::from_utf8_lossy(reply)),
        "Uppercase with full Unicode rules; ß becomes SS and ΐ three characters.",
    )
}

/// Invalid UTF-8 with ASCII around it.
const INVALID: &[u8] = b"abc\xff\xfe def";

/// Judges the reply to [`INVALID`]; silence is a warn here, turned to a fail when the server
/// died of it.
fn judge_invalid(reply: &[u8]) -> Row {
    let name = "invalid utf-8";
    if reply == expected(INVALID) {
        return Row::new(name, Status::Pass, "answered, invalid bytes passed through unchanged", "");
    }
    if reply.is_empty() {
        return Row::new(
            name,
            Status::Warn,
            "no reply to a message with invalid UTF-8: dropped, but the server still answers",
            "Answer anyway: uppercase what decodes and pass the other bytes through.",
        );
    }
    if String::from_utf8_lossy(reply).contains('\u{FFFD}') {
        return Row::new(
            name,
            Status::Warn,
            "answered, but replaced the invalid bytes with U+FFFD",
            "Pass bytes that do not decode through unchanged.",
        );
    }
    Row::new(
        name,
        Status::Fail,
        format!("wrong reply: {:?}", String::from_utf8_lossy(reply)),
        "Uppercase what decodes and pass the other bytes through.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(7), "7");
        assert_eq!(thousands(1024), "1,024");
        assert_eq!(thousands(30_000), "30,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn a_cut_reply_names_the_cut() {
        let message = ascii_message(1025);
        let want = expected(&message);
        let row = judge_size(1025, &message, want.get(..1024).unwrap_or_default(), "");
        assert_eq!(row.status, Status::Fail);
        assert!(row.evidence.starts_with("cut at 1,024 bytes"), "{}", row.evidence);
    }

    #[test]
    fn ascii_only_uppercasing_is_a_warn() {
        assert_eq!(judge_unicode(UNICODE.to_ascii_uppercase().as_bytes()).status, Status::Warn);
        assert_eq!(judge_unicode(&expected(UNICODE.as_bytes())).status, Status::Pass);
    }
}
