//! Why a bench could not start, and how failures are put into words for the report.
//!
//! Every message says what failed, where, and what to try. Nothing here decides what counts as
//! a failure: the flows do.

use std::io;
use std::net::SocketAddr;

/// Why a run could not start. Once the load is running, failures are counted in the
/// [`Report`] instead.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The options contradict each other or make no sense.
    #[error("{0}")]
    Invalid(String),
    /// The target is not a resolvable `host:port`.
    #[error("cannot resolve {target:?}: {reason} (give HOST:PORT, e.g. localhost:12000 or [::1]:12000)")]
    Resolve {
        /// The target as given.
        target: String,
        /// Why it did not resolve.
        reason: io::Error,
    },
    /// No address of the target accepted a TCP connection.
    #[error("cannot connect to tcp {addr}: {}{}", describe_io(reason), connect_hint(reason))]
    Connect {
        /// The first address tried.
        addr: SocketAddr,
        /// Why it failed.
        reason: io::Error,
    },
    /// Every address of the target said that nothing listens on that UDP port.
    #[error(
        "no server on udp {addr}: port unreachable (is a server running? start one with `upcase serve`)"
    )]
    Unreachable {
        /// The first address tried.
        addr: SocketAddr,
    },
    /// The server's CPU time cannot be read.
    #[error(
        "cannot read the CPU time of process {pid} (/proc/{pid}/stat): {reason} (give the server's process \
         id, e.g. from `pgrep -f 'upcase serve'`; Linux only)"
    )]
    ServerPid {
        /// The process id given.
        pid: u32,
        /// Why it cannot be read.
        reason: io::Error,
    },
    /// Something on this machine failed before the load began: sockets, threads.
    #[error("cannot set up the load: {what}: {reason}")]
    Setup {
        /// What was being set up.
        what: &'static str,
        /// The operating system's reason.
        reason: io::Error,
    },
}

/// An I/O error in a few plain words.
pub(crate) fn describe_io(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset by the server".to_owned(),
        io::ErrorKind::BrokenPipe => "the server closed the connection while we were sending".to_owned(),
        io::ErrorKind::AddrNotAvailable => {
            "no local port left (too many connections in TIME_WAIT: fewer --conns, or a shorter run)"
                .to_owned()
        }
        _ => error.to_string(),
    }
}

fn connect_hint(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => " (is a server running? start one with `upcase serve`)",
        io::ErrorKind::TimedOut => " (check the host, the port and firewalls, or raise --timeout)",
        _ => "",
    }
}

/// How a wrong reply differs from the expected one.
pub(crate) fn mismatch(expected: &[u8], got: &[u8]) -> String {
    let at = expected.iter().zip(got).position(|(a, b)| a != b).unwrap_or(expected.len().min(got.len()));
    format!(
        "wrong reply ({} bytes, expected {}): from byte {at}, expected {}, got {}",
        got.len(),
        expected.len(),
        excerpt(expected.get(at..).unwrap_or_default()),
        excerpt(got.get(at..).unwrap_or_default())
    )
}

/// The first few bytes of `bytes`, quoted and escaped, to show in a message.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    const SHOWN: usize = 24;
    let shown = String::from_utf8_lossy(bytes.get(..SHOWN).unwrap_or(bytes));
    let more = if bytes.len() > SHOWN { "…" } else { "" };
    format!("{shown:?}{more}")
}
