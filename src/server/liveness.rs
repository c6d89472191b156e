//! Whether the async model's workers are still turning. Each worker marks the instant it starts
//! on what a wait returned, and marks itself waiting again before the next wait, so that a worker
//! stuck inside one turn (a bug, an endless loop) can be told from an idle one, which waits as
//! long as nobody writes. systemd's watchdog and the admin endpoint's `/health` ask; nothing on
//! a worker's path ever waits or allocates for it: two relaxed stores a turn.
//!
//! The blocking models are not watched: the iterative one is busy with one client for as long as
//! that client takes, by design.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Each worker's state: 0 while it waits, else 1 + the milliseconds from `epoch` to the start of
/// its current turn.
#[derive(Debug)]
pub(crate) struct Liveness {
    epoch: Instant,
    busy_since: Box<[AtomicU64]>,
}

impl Liveness {
    /// Room for `workers` workers, all waiting.
    pub(crate) fn new(workers: usize) -> Self {
        Self { epoch: Instant::now(), busy_since: (0..workers).map(|_| AtomicU64::new(0)).collect() }
    }

    /// Worker `worker` starts a turn at `now`.
    pub(crate) fn working(&self, worker: usize, now: Instant) {
        if let Some(slot) = self.busy_since.get(worker) {
            let since = now.saturating_duration_since(self.epoch).as_millis();
            slot.store(u64::try_from(since).unwrap_or(u64::MAX - 1) + 1, Ordering::Relaxed);
        }
    }

    /// Worker `worker` is about to wait.
    pub(crate) fn waiting(&self, worker: usize) {
        if let Some(slot) = self.busy_since.get(worker) {
            slot.store(0, Ordering::Relaxed);
        }
    }

    /// The first worker that has been in one turn for longer than `limit`, and for how long.
    pub(crate) fn stuck(&self, limit: Duration) -> Option<(usize, Duration)> {
        self.stuck_at(limit, Instant::now())
    }

    fn stuck_at(&self, limit: Duration, now: Instant) -> Option<(usize, Duration)> {
        let elapsed =
            u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX);
        self.busy_since.iter().enumerate().find_map(|(worker, slot)| {
            let since = slot.load(Ordering::Relaxed).checked_sub(1)?;
            let busy = Duration::from_millis(elapsed.saturating_sub(since));
            (busy > limit).then_some((worker, busy))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_worker_long_in_one_turn_is_stuck() {
        let liveness = Liveness::new(3);
        let start = liveness.epoch;
        let limit = Duration::from_secs(1);
        assert_eq!(liveness.stuck_at(limit, start + Duration::from_secs(60)), None, "idle is not stuck");
        liveness.working(1, start + Duration::from_secs(10));
        liveness.working(2, start + Duration::from_secs(11));
        assert_eq!(liveness.stuck_at(limit, start + Duration::from_millis(10_500)), None);
        assert_eq!(
            liveness.stuck_at(limit, start + Duration::from_secs(12)),
            Some((1, Duration::from_secs(2)))
        );
        liveness.waiting(1);
        assert_eq!(liveness.stuck_at(limit, start + Duration::from_secs(12)), None);
        assert_eq!(
            liveness.stuck_at(limit, start + Duration::from_secs(13)),
            Some((2, Duration::from_secs(2)))
        );
        liveness.working(7, start);
        liveness.waiting(7);
    }
}
