//! What a program's processes cost while it runs: CPU time, threads, processes and zombies of its
//! whole process group, sampled from `/proc` by a background thread, with the peaks kept.
//!
//! A server that spins after EOF burns CPU while idle, one that starts a thread per connection
//! and never ends it grows its thread count, one that forks and never waits piles up zombies:
//! none of that shows in a reply, all of it shows here. Reads only (through
//! `bench::process`, the one place that reads process costs); never signals anything.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::bench::process::{group_members, open_descriptors, schedule, stat, Process, Schedule};

/// How often the background thread samples.
const EVERY: Duration = Duration::from_millis(100);

/// The program's process group at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// Processes still running (the program and the children it started), zombies excluded.
    pub processes: usize,
    /// Threads of those processes together.
    pub threads: usize,
    /// Children that exited and were never reaped by their parent (state `Z`).
    pub zombies: usize,
    /// File descriptors those processes hold open: a server that never closes its connections
    /// keeps one per client.
    pub descriptors: usize,
    /// CPU time the group's processes have used, as far as they are still there to ask.
    pub cpu: Duration,
}

/// What the background sampling saw, from the start (or restart) to now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Watch {
    /// CPU time used by the group while watched, summed per process between samples (a child
    /// that came and went between two samples is missed).
    pub cpu: Duration,
    /// The most threads seen at once.
    pub peak_threads: usize,
    /// The most processes seen at once.
    pub peak_processes: usize,
    /// The most zombies seen at once.
    pub peak_zombies: usize,
    /// The group when it first answered (see `Program::wait_ready`), to compare with.
    pub at_ready: Option<Sample>,
    /// The last sample.
    pub latest: Sample,
    /// How many samples were taken.
    pub samples: u32,
}

/// CPU used, and wanted, over a stretch of wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuUse {
    /// Time the group's threads ran on a core in that stretch.
    pub running: Duration,
    /// Time they were runnable but waited for a core (other programs had them).
    pub waiting: Duration,
    /// The stretch.
    pub wall: Duration,
}

impl CpuUse {
    /// Cores kept busy on average: 1.0 is one core all the time.
    pub fn cores(&self) -> f64 {
        self.running.as_secs_f64() / self.wall.as_secs_f64().max(f64::EPSILON)
    }

    /// Cores wanted on average, running or waiting to run: a thread spinning while the program
    /// is idle wants 1.0 whatever else keeps the machine busy; an idle program wants about 0.
    pub fn wanted(&self) -> f64 {
        (self.running + self.waiting).as_secs_f64() / self.wall.as_secs_f64().max(f64::EPSILON)
    }
}

/// One reading of the group, per process, for differences between readings.
#[derive(Debug, Clone, Default)]
pub(super) struct Reading {
    pub(super) sample: Sample,
    cpu_by_pid: HashMap<u32, Duration>,
}

/// Reads the members of `group` now.
pub(super) fn read(group: u32) -> Reading {
    let mut reading = Reading::default();
    for pid in group_members(group).unwrap_or_default() {
        let Ok(stat) = stat(Process::Pid(pid)) else { continue };
        if stat.state == 'Z' {
            reading.sample.zombies += 1;
        } else {
            reading.sample.processes += 1;
            reading.sample.threads += stat.threads;
            reading.sample.descriptors += open_descriptors(Process::Pid(pid)).unwrap_or_default();
        }
        reading.sample.cpu += stat.cpu;
        reading.cpu_by_pid.insert(pid, stat.cpu);
    }
    reading
}

/// How long each member of `group` has run and waited to run: one file per thread, so read only
/// for [`CpuUse`], not at every sample.
pub(super) fn schedules(group: u32) -> HashMap<u32, Schedule> {
    let members = group_members(group).unwrap_or_default();
    members.into_iter().filter_map(|pid| Some((pid, schedule(Process::Pid(pid)).ok()?))).collect()
}

/// What the group ran and waited between two [`schedules`] readings `wall` apart; per process,
/// as [`cpu_between`] does.
pub(super) fn use_between(
    before: &HashMap<u32, Schedule>,
    after: &HashMap<u32, Schedule>,
    wall: Duration,
) -> CpuUse {
    let mut used = CpuUse { running: Duration::ZERO, waiting: Duration::ZERO, wall };
    for (pid, now) in after {
        let then = before.get(pid).copied().unwrap_or_default();
        used.running += now.running.saturating_sub(then.running);
        used.waiting += now.waiting.saturating_sub(then.waiting);
    }
    used
}

/// CPU used between two readings: per process, what it used since `before` (all of it, if it is
/// new). A process that ended in between takes its last stretch with it.
pub(super) fn cpu_between(before: &Reading, after: &Reading) -> Duration {
    after
        .cpu_by_pid
        .iter()
        .map(|(pid, cpu)| cpu.saturating_sub(before.cpu_by_pid.get(pid).copied().unwrap_or_default()))
        .sum()
}

/// The background sampler of one run of a program; stops when dropped.
#[derive(Debug)]
pub(super) struct Watcher {
    seen: Arc<Mutex<Watch>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    pub(super) fn start(group: u32) -> Self {
        let seen = Arc::new(Mutex::new(Watch::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            thread::spawn(move || sample_until(group, &seen, &stop))
        };
        Self { seen, stop, thread: Some(thread) }
    }

    pub(super) fn watch(&self) -> Watch {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn mark_ready(&self, sample: Sample) {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).at_ready = Some(sample);
    }

    /// Stops sampling and waits for the last sample to be counted.
    pub(super) fn finish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.finish();
    }
}

fn sample_until(group: u32, seen: &Mutex<Watch>, stop: &AtomicBool) {
    let mut previous = Reading::default();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let reading = read(group);
        {
            let mut watch = seen.lock().unwrap_or_else(PoisonError::into_inner);
            watch.cpu += cpu_between(&previous, &reading);
            watch.peak_threads = watch.peak_threads.max(reading.sample.threads);
            watch.peak_processes = watch.peak_processes.max(reading.sample.processes);
            watch.peak_zombies = watch.peak_zombies.max(reading.sample.zombies);
            watch.latest = reading.sample;
            watch.samples += 1;
        }
        previous = reading;
        next += EVERY;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(cpu_by_pid: &[(u32, u64)]) -> Reading {
        let cpu_by_pid = cpu_by_pid.iter().map(|&(pid, ms)| (pid, Duration::from_millis(ms))).collect();
        Reading { sample: Sample::default(), cpu_by_pid }
    }

    #[test]
    fn cpu_between_readings_counts_each_process_once() {
        let before = reading(&[(10, 500), (11, 200), (12, 900)]);
        let after = reading(&[(10, 800), (11, 200), (13, 50)]);
        // 10 used 300 ms, 11 nothing, 12 ended (not counted), 13 is new: all of its 50 ms.
        assert_eq!(cpu_between(&before, &after), Duration::from_millis(350));
    }

    #[test]
    fn cores_used_and_wanted_over_wall_time() {
        let ms = Duration::from_millis;
        let schedule = |running, waiting| Schedule { running: ms(running), waiting: ms(waiting) };
        let before = HashMap::from([(10, schedule(100, 50)), (11, schedule(900, 0))]);
        let after = HashMap::from([(10, schedule(500, 650)), (12, schedule(20, 10))]);
        let used = use_between(&before, &after, Duration::from_secs(1));
        assert_eq!((used.running, used.waiting), (ms(420), ms(610)));
        assert!((used.cores() - 0.42).abs() < 1e-9);
        assert!((used.wanted() - 1.03).abs() < 1e-9);
    }
}
