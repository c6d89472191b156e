//! What every model does with a TCP byte stream, whatever its I/O: each chunk read is counted and
//! uppercased into the reply buffer; at the end of the stream the uppercaser gives back a
//! character left unfinished, the invalid bytes are counted, and the server half-closes.
//!
//! Reading again only after the reply is written is what gives backpressure: a client that does
//! not read stops the server reading from it, so one connection never holds more than one read
//! chunk and its uppercase in memory. This module never touches a socket but to half-close it.

use std::io;
use std::ops::Deref;

use super::connection::ConnectionGuard;
use super::stats::add;
use super::Context;
use crate::transform::Uppercaser;

/// One chunk just read from a client: counted, checked for the tests' fault trigger, and its
/// uppercase written into `reply` (cleared first).
pub(crate) fn answer_chunk<C: Deref<Target = Context>>(
    chunk: &[u8],
    uppercaser: &mut Uppercaser,
    reply: &mut Vec<u8>,
    connection: &mut ConnectionGuard<C>,
) {
    connection.received(chunk.len());
    connection.context().inject_fault(chunk);
    reply.clear();
    uppercaser.push(chunk, reply);
}

/// The client finished sending: the last of the reply (a character cut off by the end of the
/// stream, passed through) into `reply` (cleared first), and the stream's invalid bytes counted.
pub(crate) fn finish(uppercaser: &mut Uppercaser, reply: &mut Vec<u8>, context: &Context) {
    reply.clear();
    uppercaser.finish(reply);
    add(&context.stats.invalid_bytes, uppercaser.invalid_bytes());
}

/// Counts reply bytes the socket took.
pub(crate) fn sent(context: &Context, bytes: usize) {
    add(&context.stats.tcp_bytes_out, bytes as u64);
}

/// Shuts down the server's side once the whole reply is written, so the client, reading until
/// the end, knows it has all of it.
pub(crate) fn half_close(socket: &impl std::os::fd::AsFd) -> io::Result<()> {
    socket2::SockRef::from(socket).shutdown(std::net::Shutdown::Write)
}
