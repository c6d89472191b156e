//! What every model does with a TCP byte stream, whatever its I/O: each chunk read is counted and
//! uppercased into the reply buffer; at the end of the stream the uppercaser gives back a
//! character left unfinished, and the invalid bytes are counted. Once the reply is written, the
//! model closes the socket: with nothing left unread, that sends the client the end of the
//! stream after the reply, as a half-close would.
//!
//! Reading again only after the reply is written is what gives backpressure: a client that does
//! not read stops the server reading from it, so one connection never holds more than one read
//! chunk and its uppercase in memory. This module never touches a socket.

use super::stats::add;
use super::Context;
use crate::transform::Uppercaser;

/// One chunk just read from a client (perhaps empty, at the end of the stream): counted, checked
/// for the tests' fault trigger, and its uppercase written into `reply` (cleared first).
pub(crate) fn answer_chunk(
    chunk: &[u8],
    uppercaser: &mut Uppercaser,
    reply: &mut Vec<u8>,
    context: &Context,
) {
    add(&context.stats.tcp_bytes_in, chunk.len() as u64);
    context.inject_fault(chunk);
    reply.clear();
    uppercaser.push(chunk, reply);
}

/// The client finished sending: the last of the reply (a character cut off by the end of the
/// stream, passed through) added to `reply`, and the stream's invalid bytes counted.
pub(crate) fn finish(uppercaser: &mut Uppercaser, reply: &mut Vec<u8>, context: &Context) {
    uppercaser.finish(reply);
    add(&context.stats.invalid_bytes, uppercaser.invalid_bytes());
}

/// Counts reply bytes the socket took.
pub(crate) fn sent(context: &Context, bytes: usize) {
    add(&context.stats.tcp_bytes_out, bytes as u64);
}
