//! upcase: the classic socket-programming example, a server that answers a sentence with the
//! same sentence uppercased, built as real software.
//!
//! The crate is laid out the way the service is built:
//!
//! - [`transform`]: bytes in, uppercase bytes out. Pure, no I/O; the one module that knows text.
//! - [`server`]: the service over UDP and TCP, one file per concurrency model, UDP and TCP
//!   together (iterative, thread per connection, an event loop per core), sharing binding,
//!   limits, counters and shutdown.
//! - [`bench`](mod@bench): `upcase bench`, a load generator that checks every reply (rr, crr, stream).
//! - [`check`]: `upcase check`, a report card grading any server against the lecture's protocol.
//! - [`grade`]: `upcase grade`, a whole class checked, and the grades and cards handed back.
//! - [`client`]: `upcase send`, the lecture's client made robust (timeouts, retries, streaming).
//! - [`faults`]: seeded decisions to lose, delay, duplicate, reorder or split replies on purpose,
//!   for testing a client (`upcase serve --drop`, `upcase check --client`).
//! - [`net`]: the network vocabulary all of them share: [`net::Transport`], address resolution,
//!   datagram sizes, and the one error for a server that cannot be reached ([`net::NetError`]).
//! - [`format`](mod@format): how figures and bytes are written for people, the same in every report.
//! - [`admin`]: `serve --admin`, the HTTP endpoint for operators: Prometheus metrics, a health
//!   check for balancers, and a live status page of the open connections.
//!
//! The command line lives in the binary (`src/main.rs`, `src/cli/`), not here: the library never
//! parses flags, prints usage or exits the process.

pub mod admin;
pub mod bench;
pub mod check;
pub mod client;
pub mod faults;
pub mod format;
pub mod grade;
pub mod net;
pub mod server;
pub mod transform;
