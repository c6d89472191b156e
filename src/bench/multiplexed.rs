//! Multiplexed clients (the default): every flow is a task, and all of them share the bench's
//! runtime threads (`--threads`), so one or two threads can drive thousands of flows.
//!
//! Opens the flows before the clock starts, runs them, closes an interval whenever one ends,
//! and gathers the flows' tallies. A flow that has not finished a second after the hard stop is
//! stuck: it is aborted and counted, never waited for.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::connect::{open_flows, Opened};
use super::flow::{Problem, Tally};
use super::interval::Collector;
use super::payload::Payload;
use super::report::Measured;
use super::{finish, progress, start, stream, tcp, udp, BenchError, Options, Progress};

/// Runs the flows of `options` against `addr`, as tasks of the current runtime.
pub(crate) async fn load(
    options: &Options,
    addr: SocketAddr,
    payload: Payload,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<Measured, BenchError> {
    let flows = open_flows(options, addr).await?;
    let (live, started) = start(options);
    let mut tasks = Vec::with_capacity(options.conns);
    for (id, opened) in flows.into_iter().enumerate() {
        let (live, payload) = (Arc::clone(&live), payload.clone());
        tasks.push(tokio::spawn(async move {
            match opened {
                Opened::Rr(initial) => tcp::rr(live, id, addr, payload, initial).await,
                Opened::Stream(initial) => stream::run(live, id, addr, payload, initial).await,
                Opened::Crr => tcp::crr(live, id, addr, payload).await,
                Opened::Udp(socket) => udp::rr(live, id, addr, payload, socket).await,
            }
        }));
    }
    let mut collector = Collector::new(options.interval);
    while let Some(end) = collector.next_end(&live) {
        tokio::time::sleep_until(end).await;
        on_progress(&progress(&live, collector.close(&live)));
    }
    // Flows end by the hard stop by themselves; one that has not a second later is stuck, and
    // only its requests in flight are lost by stopping it.
    let hard_stop = live.hard_stop + Duration::from_secs(1);
    let mut tally = Tally::total(Arc::clone(&live));
    for (id, mut task) in tasks.into_iter().enumerate() {
        match tokio::time::timeout_at(hard_stop, &mut task).await {
            Ok(Ok(flow)) => tally.merge(flow),
            Ok(Err(e)) => tally.problem(Problem::Connection, || format!("flow {id} stopped: {e}")),
            Err(_) => {
                task.abort();
                tally.problem(Problem::Timeout, || {
                    format!("flow {id} was still waiting for the server at the end")
                });
            }
        }
    }
    on_progress(&progress(&live, collector.close_last(&live)));
    Ok(finish(options, &live, started, tally, collector, options.threads))
}
