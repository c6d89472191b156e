//! What a program under test writes on stdout and stderr, kept in bounded tails, and what it is
//! given on stdin.
//!
//! A thread per stream reads until the pipe closes and keeps only the last bytes, so a program
//! that prints a line per request for hours costs a fixed amount of memory. Never blocks the
//! supervisor: reading a tail takes a lock held only for a copy.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// The end of what a program wrote on one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// The last bytes written, at most the limit the program was started with.
    pub bytes: Vec<u8>,
    /// Everything written so far, counted, including what no longer fits in `bytes`.
    pub total: u64,
}

impl Output {
    /// Bytes written and no longer kept (the tail starts mid-way when this is not 0).
    pub fn dropped(&self) -> u64 {
        self.total.saturating_sub(self.bytes.len() as u64)
    }

    /// The kept bytes as text, invalid UTF-8 replaced: for evidence, never for judging bytes.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

#[derive(Debug, Default)]
struct State {
    kept: VecDeque<u8>,
    total: u64,
    closed: bool,
}

/// One stream being drained into a bounded tail.
#[derive(Debug, Clone)]
pub(super) struct Capture {
    state: Arc<Mutex<State>>,
    limit: usize,
}

impl Capture {
    /// Starts draining `pipe` on its own thread, keeping its last `limit` bytes (no pipe: an
    /// empty stream, closed).
    pub(super) fn start(pipe: Option<impl Read + Send + 'static>, limit: usize) -> Self {
        let capture = Self { state: Arc::default(), limit };
        let filling = capture.clone();
        match pipe {
            Some(pipe) => drop(thread::spawn(move || filling.drain(pipe))),
            None => capture.lock().closed = true,
        }
        capture
    }

    fn drain(&self, mut pipe: impl Read) {
        let mut chunk = vec![0; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.keep(chunk.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        self.lock().closed = true;
    }

    fn keep(&self, bytes: &[u8]) {
        let mut state = self.lock();
        state.total += bytes.len() as u64;
        let bytes = bytes.get(bytes.len().saturating_sub(self.limit)..).unwrap_or_default();
        state.kept.extend(bytes);
        let excess = state.kept.len().saturating_sub(self.limit);
        state.kept.drain(..excess);
    }

    /// The tail so far.
    pub(super) fn output(&self) -> Output {
        let state = self.lock();
        Output { bytes: state.kept.iter().copied().collect(), total: state.total }
    }

    /// Waits, at most `within`, until the program's end of the pipe is closed (every process that
    /// held it has exited), so the tail holds its last words. Whether it closed.
    pub(super) fn wait_closed(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.lock().closed {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A reader thread cannot panic while holding the lock; were it poisoned, the data is
        // still a valid tail.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Writes `input` to the program's stdin on its own thread, then closes it (end of input). A
/// program that exits or closes stdin before reading it all is its own business.
pub(super) fn feed(mut stdin: impl Write + Send + 'static, input: Vec<u8>) {
    thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn keeps_only_the_last_bytes_and_counts_them_all() {
        let capture = Capture::start(Some(&b"0123456789abcdef"[..]), 5);
        assert!(capture.wait_closed(Duration::from_secs(5)));
        let output = capture.output();
        assert_eq!(output.bytes, b"bcdef");
        assert_eq!((output.total, output.dropped()), (16, 11));
    }

    #[test]
    fn keeps_a_tail_across_many_small_writes() {
        struct Drip(u32);
        impl Read for Drip {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Ok(0);
                }
                self.0 -= 1;
                buf[..3].copy_from_slice(format!("{:03}", self.0 % 1000).as_bytes());
                Ok(3)
            }
        }
        let capture = Capture::start(Some(Drip(10_000)), 7);
        assert!(capture.wait_closed(Duration::from_secs(5)));
        assert_eq!(capture.output().text(), "2001000");
        assert_eq!(capture.output().total, 30_000);
    }
}
