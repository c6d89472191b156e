//! Why a bench could not start, and how a wrong reply is put into words for the report.
//!
//! Every message says what failed, where, and what to try. Nothing here decides what counts as
//! a failure: the flows do.

use std::io;

use crate::format::excerpt;
use crate::net::NetError;

/// Why a run could not start. Once the load is running, failures are counted in the
/// [`super::Report`] instead.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The options contradict each other or make no sense.
    #[error("{0}")]
    Invalid(String),
    /// The target could not be resolved or reached.
    #[error(transparent)]
    Net(#[from] NetError),
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
