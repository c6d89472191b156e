//! The TCP `stream` flow: one connection written and read at once for the whole run, for
//! throughput, with every reply byte checked against the uppercase of the text it answers.
//!
//! Writing and reading run side by side in one task; neither may wait on the other, or a server
//! with backpressure (ours) would stop both. Memory stays bounded: the reply is checked as it
//! arrives, never collected.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::flow::{Problem, Run, Tally};
use super::payload::Payload;
use crate::format::excerpt;
use crate::net::describe_io;

/// Bytes a stream flow writes per call: big enough that the write loop is not the limit.
const STREAM_WRITE: usize = 64 * 1024;

/// `stream`: writes the text over and over until the run ends while reading the uppercase back,
/// then half-closes and reads the rest. Each write of up to 64 KiB counts as one request, whose
/// latency is the time from starting to write it to receiving the last byte of its reply.
pub(crate) async fn run(
    live: Arc<Run>,
    addr: SocketAddr,
    unit: Payload,
    initial: io::Result<TcpStream>,
) -> Tally {
    let mut tally = Tally::new(Arc::clone(&live));
    let mut connection = match initial {
        Ok(connection) => connection,
        Err(e) => {
            tally.problem(Problem::Connection, || {
                format!("cannot connect to tcp {addr}: {}", describe_io(&e))
            });
            return tally;
        }
    };
    let units = (STREAM_WRITE / unit.request().len().max(1)).max(1);
    let chunk = unit.request().repeat(units);
    let chunk_reply = (unit.expected().len() * units) as u64;
    let (reader, writer) = connection.split();
    let sent = AtomicU64::new(0);
    // Until the writer is done, the number of reply bytes it is owed is not known.
    let owed = AtomicU64::new(u64::MAX);
    let (starts, mut started) = tokio::sync::mpsc::unbounded_channel();
    let write = async {
        let mut writer = writer;
        let mut chunks = 0u64;
        let outcome = async {
            while live.running() {
                // Sent before writing: the reply can end before `write_all` returns.
                let _ = starts.send(((chunks + 1) * chunk_reply, Instant::now()));
                writer.write_all(&chunk).await?;
                chunks += 1;
                sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            writer.shutdown().await
        }
        .await;
        owed.store(chunks * chunk_reply, Ordering::Release);
        outcome
    };
    let read = async {
        let mut checker = stream_checker(unit.expected());
        let mut reader = reader;
        let mut buffer = vec![0; STREAM_WRITE];
        let mut received = 0u64;
        let mut pending = std::collections::VecDeque::new();
        let outcome = loop {
            let give_up = live.hard_stop.min(Instant::now() + live.timeout);
            let n = match tokio::time::timeout_at(give_up, reader.read(&mut buffer)).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => break Err((Problem::Connection, format!("tcp {addr}: {}", describe_io(&e)))),
                Err(_) if received == owed.load(Ordering::Acquire) => break Ok(received),
                Err(_) => {
                    break Err((
                        Problem::Timeout,
                        format!(
                            "tcp {addr}: the reply stopped after {received} bytes (none for {:?})",
                            live.timeout
                        ),
                    ))
                }
            };
            let owed = owed.load(Ordering::Acquire);
            if n == 0 {
                break if received == owed {
                    Ok(received)
                } else {
                    Err((
                        Problem::Connection,
                        format!("tcp {addr}: the server closed after {received} reply bytes"),
                    ))
                };
            }
            let got = buffer.get(..n).unwrap_or_default();
            if let Err(described) = checker(received, got) {
                break Err((Problem::Wrong, described));
            }
            received += n as u64;
            if received > owed {
                break Err((Problem::Wrong, format!("tcp {addr}: more reply bytes than were owed ({owed})")));
            }
            while let Ok(start) = started.try_recv() {
                pending.push_back(start);
            }
            while pending.front().is_some_and(|(end, _)| *end <= received) {
                if let Some((_, at)) = pending.pop_front() {
                    tally.ok(Instant::now().saturating_duration_since(at));
                }
            }
        };
        (outcome, received)
    };
    let ((outcome, received), written) = {
        tokio::pin!(write, read);
        // The reader decides: it ends only after the writer, or when the stream failed, in
        // which case a writer still waiting on the server is dropped.
        tokio::select! {
            written = &mut write => (read.await, Some(written)),
            read = &mut read => (read, None),
        }
    };
    tally.bytes_sent += sent.load(Ordering::Relaxed);
    tally.bytes_received += received;
    match (outcome, written) {
        (Err((problem, described)), _) => tally.problem(problem, || described),
        (Ok(_), Some(Err(e))) => {
            tally.problem(Problem::Connection, || format!("tcp {addr}: cannot send: {}", describe_io(&e)));
        }
        (Ok(_), _) => {}
    }
    tally
}

/// Checks each piece of a reply stream against `expected` repeated without end; the error says
/// where the first difference is.
fn stream_checker(expected: &[u8]) -> impl FnMut(u64, &[u8]) -> Result<(), String> + '_ {
    let mut position = 0usize;
    move |offset, mut rest| {
        let mut consumed = 0usize;
        while !rest.is_empty() {
            let want = expected.get(position..).unwrap_or_default();
            let n = want.len().min(rest.len());
            if n == 0 {
                return Err("reply bytes to an empty request".to_owned());
            }
            let (head, tail) = rest.split_at(n);
            if want.get(..n) != Some(head) {
                let at = head.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
                return Err(format!(
                    "reply stream byte {}: expected {}, got {}",
                    offset + (consumed + at) as u64,
                    excerpt(want.get(at..).unwrap_or_default()),
                    excerpt(head.get(at..).unwrap_or_default())
                ));
            }
            consumed += n;
            rest = tail;
            position = (position + n) % expected.len();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_checker_follows_the_text_across_pieces_and_points_at_a_difference() {
        let mut check = stream_checker(b"ABC");
        assert_eq!(check(0, b"AB"), Ok(()));
        assert_eq!(check(2, b"CABCA"), Ok(()));
        assert_eq!(check(7, b"BC"), Ok(()));
        let error = check(9, b"ABx").err().unwrap_or_default();
        assert!(error.starts_with("reply stream byte 11: expected \"C"), "{error}");
    }
}
