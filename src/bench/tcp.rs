//! The TCP request flows: `rr` on a persistent connection, and `crr` with a connection per
//! request (the lecture's client). `stream` is in its own module.
//!
//! Each flow is one task that owns its connection and its [`Tally`]. Every reply is compared
//! with the expected uppercase as it arrives; a flow never waits longer than the timeout for
//! anything, and after any failure it starts again on a fresh connection, so one broken reply
//! cannot misalign the rest. These flows must never block a thread or share a lock in the
//! request loop: many of them run on one or two threads.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::flow::{Pacer, Problem, Run, Tally};
use super::payload::Payload;
use super::{back_off, mismatch};
use crate::net::describe_io;

/// Connects to `addr` within `timeout`, with Nagle's algorithm off: a request must leave at
/// once, not wait for the previous reply's acknowledgement.
pub(crate) async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("no answer within {timeout:?}")))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// `rr`: request, reply, next request, on one connection (opened again after any failure).
pub(crate) async fn rr(
    live: Arc<Run>,
    flow: usize,
    addr: SocketAddr,
    mut payload: Payload,
    initial: io::Result<TcpStream>,
) -> Tally {
    let mut tally = Tally::for_flow(Arc::clone(&live), flow);
    let mut pacer = Pacer::new(Arc::clone(&live), flow);
    let mut stream = match initial {
        Ok(stream) => Some(stream),
        Err(e) => {
            tally.problem(Problem::Connection, || {
                format!("cannot connect to tcp {addr}: {}", describe_io(&e))
            });
            None
        }
    };
    let mut reply = vec![0; payload.expected().len()];
    let mut sequence = 0u32;
    // Correct replies on the current connection, to tell a server that closes after one.
    let mut answered_here = 0u64;
    while let Some(due) = pacer.next(&mut tally).await {
        let connection = match stream.as_mut() {
            Some(connection) => connection,
            None => match connect(addr, live.timeout).await {
                Ok(connection) => {
                    answered_here = 0;
                    stream.insert(connection)
                }
                Err(e) => {
                    let why = || format!("cannot connect to tcp {addr}: {}", describe_io(&e));
                    tally.problem(Problem::Connection, why);
                    back_off(&live).await;
                    continue;
                }
            },
        };
        payload.stamp(sequence);
        sequence = sequence.wrapping_add(1);
        let sent = Instant::now();
        let mut filled = 0;
        let exchange = exchange(connection, payload.request(), payload.expected(), &mut reply, &mut filled);
        let outcome = tokio::time::timeout(live.timeout, exchange).await;
        tally.bytes_sent += payload.request().len() as u64;
        tally.bytes_received += filled as u64;
        let got = reply.get(..filled).unwrap_or_default();
        match outcome {
            Ok(Ok(())) if got == payload.expected() => {
                tally.ok(due, sent);
                answered_here += 1;
                continue;
            }
            Ok(Ok(())) => {
                tally.problem(Problem::Wrong, || format!("tcp {addr}: {}", mismatch(payload.expected(), got)))
            }
            Ok(Err(e)) => {
                let expected = reply.len();
                tally.problem(Problem::Connection, || failed_rr(addr, &e, answered_here, filled, expected));
            }
            Err(_) if !payload.expected().starts_with(got) => {
                tally
                    .problem(Problem::Wrong, || format!("tcp {addr}: {}", mismatch(payload.expected(), got)));
            }
            Err(_) => tally.problem(Problem::Timeout, || {
                format!(
                    "tcp {addr}: {filled} of {} reply bytes within {:?}, then nothing",
                    reply.len(),
                    live.timeout
                )
            }),
        }
        stream = None;
    }
    tally
}

/// How a failed `rr` exchange is described; a server that closed the connection after one
/// reply is most likely the lecture's, which `crr` measures.
pub(crate) fn failed_rr(
    addr: SocketAddr,
    error: &io::Error,
    answered: u64,
    filled: usize,
    expected: usize,
) -> String {
    let what = describe_io(error);
    if answered > 0 && filled == 0 && error.kind() == io::ErrorKind::UnexpectedEof {
        format!(
            "tcp {addr}: {what} after {answered} {replies} on it (a server that answers one request per \
             connection, as the lecture's does, needs --pattern crr)",
            replies = if answered == 1 { "reply" } else { "replies" }
        )
    } else {
        format!("tcp {addr}: {what} ({filled} of {expected} reply bytes in, {answered} replies before on it)")
    }
}

/// Sends `request` while reading the reply, until `reply` holds as many bytes as `expected` or
/// the first differing byte arrives. `filled` says how far it got, even if the caller gives up.
///
/// Sending and reading at once: a server that answers as it reads could otherwise fill both
/// sides' buffers with a large request and wait on us forever.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    expected: &[u8],
    reply: &mut [u8],
    filled: &mut usize,
) -> io::Result<()> {
    let (mut reader, mut writer) = stream.split();
    let (sent, received) =
        tokio::join!(writer.write_all(request), read_reply(&mut reader, expected, reply, filled));
    received?;
    // A server may answer wrongly before reading everything; the reply says more than the send.
    sent
}

/// Reads into `reply` until it is full or holds a byte that `expected` does not.
async fn read_reply(
    reader: &mut (impl AsyncRead + Unpin),
    expected: &[u8],
    reply: &mut [u8],
    filled: &mut usize,
) -> io::Result<()> {
    while *filled < reply.len() {
        let Some(space) = reply.get_mut(*filled..) else { break };
        let n = reader.read(space).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"));
        }
        let start = *filled;
        *filled += n;
        if reply.get(start..*filled) != expected.get(start..*filled) {
            break;
        }
    }
    Ok(())
}

/// `crr`: the lecture's client for every request: connect, send, half-close, read until the
/// server closes, close.
pub(crate) async fn crr(live: Arc<Run>, flow: usize, addr: SocketAddr, mut payload: Payload) -> Tally {
    let mut tally = Tally::for_flow(Arc::clone(&live), flow);
    let mut pacer = Pacer::new(Arc::clone(&live), flow);
    let mut reply = Vec::with_capacity(payload.expected().len() + 1);
    let mut sequence = 0u32;
    while let Some(due) = pacer.next(&mut tally).await {
        payload.stamp(sequence);
        sequence = sequence.wrapping_add(1);
        reply.clear();
        let sent = Instant::now();
        let exchange = connect_send_close(addr, payload.request(), payload.expected().len(), &mut reply);
        let outcome = tokio::time::timeout(live.timeout, exchange).await;
        tally.bytes_received += reply.len() as u64;
        match outcome {
            Ok(Ok(())) if reply == payload.expected() => {
                tally.bytes_sent += payload.request().len() as u64;
                tally.ok(due, sent);
            }
            Ok(Ok(())) => tally
                .problem(Problem::Wrong, || format!("tcp {addr}: {}", mismatch(payload.expected(), &reply))),
            Ok(Err(Crr::Connect(e))) => {
                tally.problem(Problem::Connection, || {
                    format!("cannot connect to tcp {addr}: {}", describe_io(&e))
                });
                back_off(&live).await;
            }
            Ok(Err(Crr::Exchange(e))) => tally.problem(Problem::Connection, || {
                format!("tcp {addr}: {} after {} reply bytes", describe_io(&e), reply.len())
            }),
            Err(_) => tally.problem(Problem::Timeout, || {
                format!("tcp {addr}: no end of reply within {:?} ({} bytes came)", live.timeout, reply.len())
            }),
        }
    }
    tally
}

/// Where a `crr` exchange failed.
enum Crr {
    Connect(io::Error),
    Exchange(io::Error),
}

/// One `crr` exchange. Reads at most one byte more than `expected_len`: enough to see that a
/// reply is too long, without letting a server fill our memory.
async fn connect_send_close(
    addr: SocketAddr,
    request: &[u8],
    expected_len: usize,
    reply: &mut Vec<u8>,
) -> Result<(), Crr> {
    let mut stream = TcpStream::connect(addr).await.map_err(Crr::Connect)?;
    let (reader, mut writer) = stream.split();
    let send = async {
        writer.write_all(request).await?;
        writer.shutdown().await
    };
    let limit = u64::try_from(expected_len).unwrap_or(u64::MAX).saturating_add(1);
    let mut reader = reader.take(limit);
    let (sent, received) = tokio::join!(send, reader.read_to_end(reply));
    received.map_err(Crr::Exchange)?;
    sent.map_err(Crr::Exchange)
}
