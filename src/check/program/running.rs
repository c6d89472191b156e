//! Every process group the supervisor has started and not yet reaped. A program under test runs
//! in a group of its own, which a terminal's Ctrl-C does not reach: a grader that is itself being
//! stopped calls [`kill_all`] so that nothing it started outlives it.
//!
//! A group is listed from its start until its leader is reaped; the leader is reaped only once
//! the group is gone, so a listed id is never another program's.

use std::sync::{Mutex, PoisonError};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

static GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

pub(super) fn started(group: u32) {
    GROUPS.lock().unwrap_or_else(PoisonError::into_inner).push(group);
}

pub(super) fn reaped(group: u32) {
    GROUPS.lock().unwrap_or_else(PoisonError::into_inner).retain(|&g| g != group);
}

/// Sends SIGKILL to every process group started by the supervisor and not yet reaped: for a
/// grader stopped by a signal, which exits next.
pub fn kill_all() {
    for &group in GROUPS.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        if let Ok(group) = i32::try_from(group) {
            let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
        }
    }
}
