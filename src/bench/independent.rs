//! Independent clients (`--clients independent`): every flow is an OS thread of its own with
//! blocking `std::net` sockets, as separate programs or users are. Each request then reaches the
//! server on its own, with its own wake-up on both sides, instead of in the bursts that one thread
//! driving many flows sends; servers that look cheap under multiplexed load can cost more here.
//!
//! The flows (`tcp`, `udp`, `stream` below) check every reply, keep the same tallies, pace an open
//! loop the same way and feed the same report and intervals as the multiplexed ones; only how
//! they wait differs. Each thread opens its connection or socket, then waits at a gate until all
//! are ready, so that opening them does not eat into the run. A flow that has not finished a
//! second after the hard stop is counted and left behind, never waited for.

mod stream;
mod tcp;
mod udp;

use std::io;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use tokio::time::Instant;

use super::flow::{Problem, Run, Tally};
use super::interval::Collector;
use super::payload::Payload;
use super::report::Measured;
use super::{finish, progress, start, BenchError, Options, Pattern, Progress, BACK_OFF};
use crate::net::Transport;

/// Stack of a flow's thread: its buffers are on the heap, and thousands of threads must fit.
const STACK: usize = 256 * 1024;

/// A flow's connection or socket, opened by its own thread before the clock starts.
enum Opened {
    Rr(io::Result<TcpStream>),
    Stream(io::Result<TcpStream>),
    Crr,
    Udp(io::Result<UdpSocket>),
}

/// Runs the flows of `options` against `addr`, a thread each.
pub(crate) fn load(
    options: &Options,
    addr: SocketAddr,
    payload: &Payload,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<Measured, BenchError> {
    let gate = Arc::new(Gate::default());
    let (done, finished) = mpsc::channel();
    let mut threads = Vec::with_capacity(options.conns);
    for id in 0..options.conns {
        let (waiting, done, payload) = (Arc::clone(&gate), done.clone(), payload.clone());
        let (transport, pattern, timeout) = (options.transport, options.pattern, options.timeout);
        let flow = move || {
            let opened = match (transport, pattern) {
                (Transport::Udp, _) => Opened::Udp(udp::socket_for(addr, timeout)),
                (Transport::Tcp, Pattern::Crr) => Opened::Crr,
                (Transport::Tcp, Pattern::Rr) => Opened::Rr(tcp::connect(addr, timeout)),
                (Transport::Tcp, Pattern::Stream) => Opened::Stream(tcp::connect(addr, timeout)),
            };
            let Some(live) = waiting.arrive() else { return };
            let tally = match opened {
                Opened::Rr(initial) => tcp::rr(live, id, addr, payload, initial),
                Opened::Crr => tcp::crr(live, id, addr, payload),
                Opened::Udp(socket) => udp::rr(live, id, addr, payload, socket),
                Opened::Stream(initial) => stream::run(live, id, addr, payload, initial),
            };
            let _ = done.send((id, tally));
        };
        match thread::Builder::new().name(format!("upcase-flow-{id}")).stack_size(STACK).spawn(flow) {
            Ok(thread) => threads.push(thread),
            Err(reason) => {
                gate.cancel();
                return Err(BenchError::Setup {
                    what: "cannot start a thread per flow (lower --conns, or use --clients multiplexed)",
                    reason,
                });
            }
        }
    }
    drop(done);
    // Every thread opens within the timeout; one that has not arrived by then joins late.
    gate.wait_for(options.conns, options.timeout + Duration::from_secs(5));
    let (live, started) = start(options);
    gate.open(Arc::clone(&live));

    let mut collector = Collector::new(options.interval);
    while let Some(end) = collector.next_end(&live) {
        sleep_until(end);
        on_progress(&progress(&live, collector.close(&live)));
    }
    let hard_stop = live.hard_stop + Duration::from_secs(1);
    let mut tally = Tally::total(Arc::clone(&live));
    let mut reported = vec![false; options.conns];
    while let Ok((id, flow)) = finished.recv_timeout(hard_stop.saturating_duration_since(Instant::now())) {
        if let Some(reported) = reported.get_mut(id) {
            *reported = true;
        }
        tally.merge(flow);
    }
    for (id, thread) in threads.iter().enumerate() {
        if reported.get(id) == Some(&true) {
            continue;
        }
        if thread.is_finished() {
            tally.problem(Problem::Connection, || {
                format!("flow {id} stopped without a tally (its thread panicked)")
            });
        } else {
            // Left behind: its socket times out by itself, and it ends with the process.
            tally.problem(Problem::Timeout, || {
                format!("flow {id} was still waiting for the server at the end")
            });
        }
    }
    on_progress(&progress(&live, collector.close_last(&live)));
    let per_flow = if options.pattern == Pattern::Stream { 2 } else { 1 };
    Ok(finish(options, &live, started, tally, collector, options.conns * per_flow))
}

/// Sleeps this thread until `until`.
fn sleep_until(until: Instant) {
    let now = Instant::now();
    if until > now {
        thread::sleep(until - now);
    }
}

/// After a failed connection, waits [`BACK_OFF`] (or until the deadline) before the next try.
fn back_off(live: &Run) {
    sleep_until((Instant::now() + BACK_OFF).min(live.deadline));
}

/// Where the flows' threads wait until every one has opened its connection, to start together.
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    arrived: usize,
    /// `None` until decided; then the run to join, or `None` inside when the bench gave up.
    decided: Option<Option<Arc<Run>>>,
}

impl Gate {
    /// A flow is ready: waits for the run to start, and returns it (`None`: the bench gave up).
    fn arrive(&self) -> Option<Arc<Run>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.arrived += 1;
        self.changed.notify_all();
        loop {
            if let Some(decided) = &state.decided {
                return decided.clone();
            }
            state = self.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Waits until `flows` have arrived, or `patience` has passed.
    fn wait_for(&self, flows: usize, patience: Duration) {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = self.changed.wait_timeout_while(state, patience, |state| state.arrived < flows);
    }

    /// Starts the run for every flow, arrived or still to come.
    fn open(&self, live: Arc<Run>) {
        self.decide(Some(live));
    }

    /// Tells every flow there will be no run.
    fn cancel(&self) {
        self.decide(None);
    }

    fn decide(&self, run: Option<Arc<Run>>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.decided = Some(run);
        self.changed.notify_all();
    }
}
