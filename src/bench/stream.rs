//! The TCP `stream` flow: one connection written and read at once for the whole run, for
//! throughput, with every reply byte checked against the uppercase of the text it answers.
//!
//! Writing and reading run side by side in one task; neither may wait on the other, or a server
//! with backpressure (ours) would stop both. Memory stays bounded: the reply is checked as it
//! arrives, never collected. The checking ([`Replies`]) is shared with the independent clients'
//! stream flow, which runs the two sides on two threads.

use std::collections::VecDeque;
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
    flow: usize,
    addr: SocketAddr,
    unit: Payload,
    initial: io::Result<TcpStream>,
) -> Tally {
    let mut tally = Tally::for_flow(Arc::clone(&live), flow);
    let mut connection = match initial {
        Ok(connection) => connection,
        Err(e) => {
            tally.problem(Problem::Connection, || {
                format!("cannot connect to tcp {addr}: {}", describe_io(&e))
            });
            return tally;
        }
    };
    let (chunk, chunk_reply) = chunk(&unit);
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
    let mut replies = Replies::new(addr, unit.expected());
    let read = async {
        let mut reader = reader;
        let mut buffer = vec![0; STREAM_WRITE];
        loop {
            let give_up = live.hard_stop.min(Instant::now() + live.timeout);
            let n = match tokio::time::timeout_at(give_up, reader.read(&mut buffer)).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => break Err((Problem::Connection, format!("tcp {addr}: {}", describe_io(&e)))),
                Err(_) => break replies.silent(owed.load(Ordering::Acquire), live.timeout),
            };
            let got = buffer.get(..n).unwrap_or_default();
            let owed = owed.load(Ordering::Acquire);
            let starts = std::iter::from_fn(|| started.try_recv().ok());
            match replies.take(got, owed, starts, &mut tally) {
                Ok(true) => {}
                Ok(false) => break Ok(()),
                Err(failed) => break Err(failed),
            }
        }
    };
    let (outcome, written) = {
        tokio::pin!(write, read);
        // The reader decides: it ends only after the writer, or when the stream failed, in
        // which case a writer still waiting on the server is dropped.
        tokio::select! {
            written = &mut write => (read.await, Some(written)),
            read = &mut read => (read, None),
        }
    };
    settle(&mut tally, addr, outcome, written, sent.load(Ordering::Relaxed), replies.received);
    tally
}

/// What a stream flow writes at a time: the text repeated to about 64 KiB, and the length of its
/// reply.
pub(crate) fn chunk(unit: &Payload) -> (Vec<u8>, u64) {
    let units = (STREAM_WRITE / unit.request().len().max(1)).max(1);
    (unit.request().repeat(units), (unit.expected().len() * units) as u64)
}

/// The reading side of a stream flow, whether a task or a thread runs it: checks every piece of
/// the reply as it comes, and counts a write as done when the last byte of its reply is in.
pub(crate) struct Replies<'a> {
    addr: SocketAddr,
    checker: StreamChecker<'a>,
    /// Reply bytes so far.
    pub(crate) received: u64,
    /// Writes not yet fully answered: the reply length at which each is, and when it began.
    pending: VecDeque<(u64, Instant)>,
}

impl<'a> Replies<'a> {
    pub(crate) fn new(addr: SocketAddr, expected: &'a [u8]) -> Self {
        Self { addr, checker: StreamChecker { expected, position: 0 }, received: 0, pending: VecDeque::new() }
    }

    /// Takes the piece `got` of the reply (empty: the server closed); `owed` is the reply's whole
    /// length once the writer is done (`u64::MAX` until then), `starts` the writes begun since.
    /// `Ok(true)`: read on; `Ok(false)`: the reply is complete.
    pub(crate) fn take(
        &mut self,
        got: &[u8],
        owed: u64,
        starts: impl Iterator<Item = (u64, Instant)>,
        tally: &mut Tally,
    ) -> Result<bool, (Problem, String)> {
        let addr = self.addr;
        if got.is_empty() {
            return if self.received == owed {
                Ok(false)
            } else {
                let received = self.received;
                Err((
                    Problem::Connection,
                    format!("tcp {addr}: the server closed after {received} reply bytes"),
                ))
            };
        }
        self.checker.check(self.received, got).map_err(|described| (Problem::Wrong, described))?;
        self.received += got.len() as u64;
        if self.received > owed {
            return Err((Problem::Wrong, format!("tcp {addr}: more reply bytes than were owed ({owed})")));
        }
        self.pending.extend(starts);
        while self.pending.front().is_some_and(|(end, _)| *end <= self.received) {
            if let Some((_, began)) = self.pending.pop_front() {
                tally.ok(began, began);
            }
        }
        Ok(true)
    }

    /// Nothing came for `timeout`: done if the whole reply is in, else a failure.
    pub(crate) fn silent(&self, owed: u64, timeout: std::time::Duration) -> Result<(), (Problem, String)> {
        if self.received == owed {
            return Ok(());
        }
        let (addr, received) = (self.addr, self.received);
        Err((
            Problem::Timeout,
            format!("tcp {addr}: the reply stopped after {received} bytes (none for {timeout:?})"),
        ))
    }
}

/// Counts the bytes of a finished stream flow and the failure that ended it, if any.
pub(crate) fn settle(
    tally: &mut Tally,
    addr: SocketAddr,
    outcome: Result<(), (Problem, String)>,
    written: Option<io::Result<()>>,
    sent: u64,
    received: u64,
) {
    tally.bytes_sent += sent;
    tally.bytes_received += received;
    match (outcome, written) {
        (Err((problem, described)), _) => tally.problem(problem, || described),
        (Ok(()), Some(Err(e))) => {
            tally.problem(Problem::Connection, || format!("tcp {addr}: cannot send: {}", describe_io(&e)));
        }
        (Ok(()), _) => {}
    }
}

/// Checks each piece of a reply stream against `expected` repeated without end; the error says
/// where the first difference is.
struct StreamChecker<'a> {
    expected: &'a [u8],
    position: usize,
}

impl StreamChecker<'_> {
    fn check(&mut self, offset: u64, mut rest: &[u8]) -> Result<(), String> {
        let mut consumed = 0usize;
        while !rest.is_empty() {
            let want = self.expected.get(self.position..).unwrap_or_default();
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
            self.position = (self.position + n) % self.expected.len();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_checker_follows_the_text_across_pieces_and_points_at_a_difference() {
        let mut checker = StreamChecker { expected: b"ABC", position: 0 };
        assert_eq!(checker.check(0, b"AB"), Ok(()));
        assert_eq!(checker.check(2, b"CABCA"), Ok(()));
        assert_eq!(checker.check(7, b"BC"), Ok(()));
        let error = checker.check(9, b"ABx").err().unwrap_or_default();
        assert!(error.starts_with("reply stream byte 11: expected \"C"), "{error}");
    }
}
