//! The `stream` flow of independent clients: one connection written by one thread and read by
//! another for the whole run, as a blocking client must to send and receive at once.
//!
//! The reply is checked exactly as the multiplexed flow checks it ([`Replies`]), as it arrives,
//! never collected. When the reading side fails it shuts the connection down, so a writer blocked
//! on a server that stopped reading is released; neither side waits longer than the timeout.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use tokio::time::Instant;

use super::STACK;
use crate::bench::flow::{Problem, Run, Tally};
use crate::bench::payload::Payload;
use crate::bench::stream::{chunk, settle, Replies};
use crate::net::{describe_io, is_timeout};

/// Reads at most this much at a time.
const READ: usize = 64 * 1024;

/// `stream`: writes the text over and over until the run ends (on a second thread) while reading
/// the uppercase back (on this one), then half-closes and reads the rest.
pub(super) fn run(
    live: Arc<Run>,
    flow: usize,
    addr: SocketAddr,
    unit: Payload,
    initial: io::Result<TcpStream>,
) -> Tally {
    let mut tally = Tally::for_flow(Arc::clone(&live), flow);
    let cannot = |what: &str, e: &io::Error| format!("{what} tcp {addr}: {}", describe_io(e));
    let (mut reader, mut writer) = match initial.and_then(|stream| Ok((stream.try_clone()?, stream))) {
        Ok(pair) => pair,
        Err(e) => {
            tally.problem(Problem::Connection, || cannot("cannot connect to", &e));
            return tally;
        }
    };
    let (chunk, chunk_reply) = chunk(&unit);
    let sent = AtomicU64::new(0);
    // Until the writer is done, the number of reply bytes it is owed is not known.
    let owed = AtomicU64::new(u64::MAX);
    let (starts, started) = mpsc::channel();
    let mut replies = Replies::new(addr, unit.expected());
    let (outcome, written) = thread::scope(|scope| {
        let write = || {
            let mut chunks = 0u64;
            let outcome = (|| {
                while live.running() {
                    // Sent before writing: the reply can end before `write_all` returns.
                    let _ = starts.send(((chunks + 1) * chunk_reply, Instant::now()));
                    writer.write_all(&chunk)?;
                    chunks += 1;
                    sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
                writer.shutdown(Shutdown::Write)
            })();
            owed.store(chunks * chunk_reply, Ordering::Release);
            outcome
        };
        let writing = match thread::Builder::new().stack_size(STACK).spawn_scoped(scope, write) {
            Ok(writing) => writing,
            Err(e) => {
                return (Err((Problem::Connection, cannot("cannot start a writer thread for", &e))), None)
            }
        };
        let outcome = read(&live, addr, &mut reader, &mut replies, &owed, &started, &mut tally);
        if outcome.is_err() {
            // Releases a writer blocked on a server that no longer reads.
            let _ = reader.shutdown(Shutdown::Both);
        }
        let written = writing.join().unwrap_or_else(|_| Err(io::Error::other("the writer thread panicked")));
        (outcome, Some(written))
    });
    settle(&mut tally, addr, outcome, written, sent.load(Ordering::Relaxed), replies.received);
    tally
}

/// Reads and checks the reply until it is complete or fails.
fn read(
    live: &Run,
    addr: SocketAddr,
    reader: &mut TcpStream,
    replies: &mut Replies<'_>,
    owed: &AtomicU64,
    started: &mpsc::Receiver<(u64, Instant)>,
    tally: &mut Tally,
) -> Result<(), (Problem, String)> {
    let mut buffer = vec![0; READ];
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => return replies.silent(owed.load(Ordering::Acquire), live.timeout),
            Err(e) => return Err((Problem::Connection, format!("tcp {addr}: {}", describe_io(&e)))),
        };
        let owed = owed.load(Ordering::Acquire);
        if !replies.take(buffer.get(..n).unwrap_or_default(), owed, started.try_iter(), tally)? {
            return Ok(());
        }
        if Instant::now() >= live.hard_stop {
            return replies.silent(owed, live.timeout);
        }
    }
}
