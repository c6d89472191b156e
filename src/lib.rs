//! upcase: the classic socket-programming example, a server that answers a sentence with the
//! same sentence uppercased, built as real software.
//!
//! The crate is laid out the way the service is built:
//!
//! - [`transform`]: bytes in, uppercase bytes out. Pure, no I/O; the one module that knows text.
//! - [`server`]: the service over UDP and TCP, one file per protocol and concurrency model
//!   (iterative, thread per connection, async), sharing binding, limits, counters and shutdown.
//! - [`bench`]: `upcase bench`, a load generator that checks every reply (rr, crr, stream).
//! - [`check`]: `upcase check`, a report card grading any server against the lecture's protocol.
//! - [`client`]: `upcase send`, the lecture's client made robust (timeouts, retries, streaming).
//! - [`net`]: what server and client share about the network: address resolution, datagram sizes.
//! - [`cli`]: the command line of the `upcase` binary; the only place that parses flags.

pub mod bench;
pub mod check;
pub mod cli;
pub mod client;
pub mod net;
pub mod server;
pub mod transform;
