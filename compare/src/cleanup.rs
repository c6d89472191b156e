//! What a run must undo however it ends: servers it started, a kernel setting it changed, probes
//! it added.
//!
//! Each owner (a running server, the saved sysctl, the probes) undoes its change in its own
//! `Drop`, which covers a normal end, an error and a panic. For Ctrl-C and SIGTERM, which end
//! the process without running destructors, each owner also registers an action here while its
//! change is in place; [`install`]'s handler runs what is registered, then exits with 130.
//! Nothing here decides what to undo: the owners do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

type Action = Box<dyn FnOnce() + Send>;

static PENDING: Mutex<Vec<(u64, Action)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Exit status after an interruption (128 + SIGINT), as shells report it.
const EXIT_INTERRUPTED: i32 = 130;

/// Runs the registered actions on Ctrl-C or SIGTERM, then exits. Call once, at the start.
pub fn install() -> anyhow::Result<()> {
    ctrlc::set_handler(|| {
        eprintln!("upcase-compare: interrupted; stopping what it started");
        run_pending();
        std::process::exit(EXIT_INTERRUPTED);
    })
    .map_err(|e| anyhow::anyhow!("cannot handle Ctrl-C: {e}"))
}

/// An action registered for an interruption; dropping it unregisters it without running it
/// (its owner has undone the change itself).
#[derive(Debug)]
pub struct OnInterrupt(u64);

impl OnInterrupt {
    /// Registers `action` to run if the process is interrupted while the result is alive.
    pub fn register(action: impl FnOnce() + Send + 'static) -> Self {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        PENDING.lock().unwrap_or_else(PoisonError::into_inner).push((id, Box::new(action)));
        Self(id)
    }
}

impl Drop for OnInterrupt {
    fn drop(&mut self) {
        PENDING.lock().unwrap_or_else(PoisonError::into_inner).retain(|(id, _)| *id != self.0);
    }
}

/// Runs every registered action, newest first (a server started under perf goes before the
/// probes perf counts with).
fn run_pending() {
    let actions = std::mem::take(&mut *PENDING.lock().unwrap_or_else(PoisonError::into_inner));
    for (_, action) in actions.into_iter().rev() {
        action();
    }
}
