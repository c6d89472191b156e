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
    context.wake_workers();
    let grace = context.config.grace;
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        let open = context.connections.open();
        tracing::info!("grace period of {grace:?} over: closing {open} open connection(s)");
        shutdown.force.cancel();
        context.connections.close_all();
        context.wake_workers();
        tracker.wait().await;
    }
}

/// Ctrl-C and SIGTERM, listened for from the moment [`Signals::install`] returns: a server
/// installs them before it says it is listening, so that a signal sent as soon as it does is a
/// graceful stop, not the default action that kills the process.
#[derive(Debug)]
pub struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Starts listening for Ctrl-C and SIGTERM (within a Tokio runtime).
    ///
    /// # Errors
    /// When the signal handlers cannot be installed; the server then stops only by SIGKILL.
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    /// The first signal cancels `stop` (a graceful stop, with `grace` for open streams); a second
    /// one makes this return, for the caller to exit at once.
    pub async fn stop_on_second(mut self, stop: CancellationToken, grace: Duration) {
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
                "stopping: finishing open streams for up to {grace:?} (signal again to exit at once)"
            );
            stop.cancel();
        }
    }
}
