//! How a server stops, in every model: stop accepting and answering, let open TCP streams finish
//! for a grace period, then close whatever is left; and the signals that start it.
//!
//! The sequence: [`Shutdown::stop`] is cancelled (a signal, or [`super::Server::shutdown`]); the
//! accept and receive loops see it and return (blocking loops within [`STOP_POLL`]); open
//! connections carry on until they finish or [`super::Config::grace`] runs out; then
//! [`Shutdown::force`] is cancelled and every connection still open is closed through the
//! server's connection set. This module must never end a connection before the grace is over.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Context;

/// How long a blocking loop waits in `accept` or `recv_from` before checking for a stop.
pub(crate) const STOP_POLL: Duration = Duration::from_millis(100);

/// The two steps of a shutdown, shared by every loop and connection of one server.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shutdown {
    /// Stop accepting and stop answering UDP; open TCP streams carry on.
    pub(crate) stop: CancellationToken,
    /// The grace period is over: close every TCP connection now.
    pub(crate) force: CancellationToken,
}

/// Waits for the stop, then for the server's loops and connections (`tracker`) to finish within
/// the grace period; past it, closes every connection still open and waits for them to end.
pub(crate) async fn drain(context: &Context, tracker: &TaskTracker) {
    let shutdown = &context.shutdown;
    shutdown.stop.cancelled().await;
    let grace = context.config.grace;
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        let open = context.stats.tcp_open.load(std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            grace_ms = grace.as_millis() as u64,
            open,
            "grace period over: closing the connections still open"
        );
        shutdown.force.cancel();
        context.connections.close_all();
        tracker.wait().await;
    }
}

/// SIGINT and SIGTERM, caught from the moment this is made: until then either one ends the
/// process at once. Made before a server says it is ready, so that a signal sent as soon as it
/// has said so starts a graceful stop.
#[derive(Debug)]
pub struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers (within a Tokio runtime).
    ///
    /// # Errors
    /// When the signal handlers cannot be installed; the server then stops only by SIGKILL.
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    /// The first Ctrl-C or SIGTERM cancels `stop` (a graceful stop, with `grace` for open
    /// streams); a second one makes this return, for the caller to exit at once.
    pub async fn stop_on_first(mut self, stop: CancellationToken, grace: Duration) {
        for signals_seen in 1.. {
            tokio::select! {
                _ = self.interrupt.recv() => {}
                _ = self.terminate.recv() => {}
            }
            if signals_seen > 1 {
                tracing::warn!("second signal: exiting at once");
                break;
            }
            tracing::info!(
                grace_ms = grace.as_millis() as u64,
                "stopping: finishing open streams within the grace period (signal again to exit at once)"
            );
            stop.cancel();
        }
    }
}

/// [`StopSignals::install`], then [`StopSignals::stop_on_first`].
///
/// # Errors
/// When the signal handlers cannot be installed; the server then stops only by SIGKILL.
pub async fn stop_on_signals(stop: CancellationToken, grace: Duration) -> std::io::Result<()> {
    StopSignals::install()?.stop_on_first(stop, grace).await;
    Ok(())
}
