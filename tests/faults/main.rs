//! The fault battery: the real `upcase serve` binary, as a child process, against clients that
//! misbehave and against signals and restarts under load, in every concurrency model it applies
//! to. One module per concern:
//! - `tcp`: a reset in the middle of a stream; slowloris.
//! - `udp`: a flood from 1,000 source ports; datagrams from low ports and from the server's own
//!   port; the per-source rate limit.
//! - `signals`: SIGTERM during a 100 MiB stream; a restart on the same port while clients hammer
//!   it; a second signal.
//! - `resources`: the connection limit; 10,000 idle connections; memory under a client that never
//!   reads; accept errors when descriptors run out.
//!
//! Each test says in its comment what must hold. Everything is loopback only and bounded in time:
//! every wait has a timeout and every loop a bound on its count, so a broken server fails a test
//! instead of hanging it. Figures worth keeping (memory per idle connection, memory under a
//! client that never reads, shutdown time under load) are printed with `eprintln!`; see them with
//! `cargo test --test faults -- --nocapture`.
//!
//! This file holds only what the modules share: reading the server's exit summary.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "../support/mod.rs"]
mod support;

mod resources;
mod signals;
mod tcp;
mod udp;

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use support::*;

/// The counters of the server's exit summary (`stopped: name=value ...`; absent ones are 0).
struct Summary {
    line: String,
    counters: HashMap<String, u64>,
}

impl Summary {
    fn get(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// Waits (bounded) for the `stopped:` line of a server that has exited, and parses it.
fn summary(guard: &Guard) -> Summary {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = guard.stderr();
        if let Some(rest) = log.lines().find_map(|l| l.split_once("stopped: ").map(|(_, rest)| rest)) {
            let counters = rest
                .split_whitespace()
                .filter_map(|pair| pair.split_once('='))
                .map(|(name, value)| (name.to_owned(), value.parse().unwrap()))
                .collect();
            return Summary { line: rest.trim().to_owned(), counters };
        }
        assert!(Instant::now() < deadline, "no `stopped:` summary in the server's stderr:\n{log}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// SIGTERM, then the exit (bounded; it must be status 0) and its summary.
fn stop(server: &mut UpcaseServer) -> Summary {
    server.guard.sigterm();
    let status = server.guard.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM; stderr:\n{}", server.guard.stderr());
    summary(&server.guard)
}
