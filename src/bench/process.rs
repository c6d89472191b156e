//! What a process costs, read from `/proc` (Linux): CPU time (how much work the server, and the
//! bench itself, did per request: the most stable efficiency figure on a shared, noisy machine;
//! with its reaped children, for a server that forks),
//! resident memory and open file descriptors (what idle connections cost).
//!
//! `upcase bench --server-pid`, the comparison harness and the tests all measure through here, so
//! a figure means the same wherever it is quoted; so does the supervisor of a program under test
//! (`check::program`), which also needs a process's state, parent and group ([`stat`]) and the
//! members of a process group ([`group_members`]). Only reads; never signals or otherwise touches
//! the process it measures.

use std::io;
use std::time::Duration;

/// Clock ticks per second of `/proc/PID/stat`'s times (`sysconf(_SC_CLK_TCK)`). Linux reports
/// these in USER_HZ, which is 100 on every architecture it supports; assumed here rather than
/// asked of libc, which upcase does not otherwise need.
const CLOCK_TICKS_PER_SECOND: u64 = 100;

/// Which process to measure: this one, or another by its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// The bench itself.
    Myself,
    /// Another process (the server under load).
    Pid(u32),
}

/// User plus system CPU time used so far by `process`, all its threads together.
pub fn cpu_time(process: Process) -> io::Result<Duration> {
    Ok(stat(process)?.cpu)
}

/// [`cpu_time`] plus that of the children `process` has reaped: a server that forks a process
/// per connection (socat) does its work there, which counts once each child has exited.
pub fn cpu_time_with_children(process: Process) -> io::Result<Duration> {
    let stat = stat(process)?;
    Ok(stat.cpu + stat.reaped_children_cpu)
}

/// What one reading of `/proc/PID/stat` says about a process: read at once, so the figures agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `R` running, `S` sleeping, `Z` zombie (exited, not yet reaped by its parent), ...
    pub state: char,
    /// Its parent's process id.
    pub parent: u32,
    /// Its process group: a supervisor signals and watches a whole group at once.
    pub group: u32,
    /// Its threads.
    pub threads: usize,
    /// User plus system CPU time used so far, all its threads together.
    pub cpu: Duration,
    /// User plus system CPU time of the children it has reaped.
    pub reaped_children_cpu: Duration,
}

/// Reads `/proc/PID/stat` of `process`.
pub fn stat(process: Process) -> io::Result<Stat> {
    let path = process.path("stat");
    let text = std::fs::read_to_string(&path)?;
    parse_stat(&text)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("unexpected format of {path}")))
}

/// How long the threads of a process have run on a core, and waited for one while runnable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Schedule {
    /// Time on a core, all threads together.
    pub running: Duration,
    /// Time runnable but waiting for a free core. Running plus waiting over a stretch of wall
    /// time is how many cores the process wanted, however busy the machine: a thread that spins
    /// wants one whole core even when it gets a quarter of one.
    pub waiting: Duration,
}

/// Reads `/proc/PID/task/*/schedstat` of `process` (nanoseconds), summed over its threads;
/// threads that end during the reading are skipped.
pub fn schedule(process: Process) -> io::Result<Schedule> {
    let mut total = Schedule::default();
    for task in std::fs::read_dir(process.path("task"))? {
        let Ok(text) = std::fs::read_to_string(task?.path().join("schedstat")) else { continue };
        let mut fields = text.split_whitespace().map(|field| field.parse::<u64>().ok());
        if let (Some(Some(running)), Some(Some(waiting))) = (fields.next(), fields.next()) {
            total.running += Duration::from_nanos(running);
            total.waiting += Duration::from_nanos(waiting);
        }
    }
    Ok(total)
}

/// The processes of process group `group` (zombies included), found by reading every
/// `/proc/PID/stat`: Linux keeps no list of a group's members. Processes that end during the scan
/// are skipped.
pub fn group_members(group: u32) -> io::Result<Vec<u32>> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        if stat(Process::Pid(pid)).is_ok_and(|stat| stat.group == group) {
            members.push(pid);
        }
    }
    Ok(members)
}

/// Resident memory of `process`, in KiB (`VmRSS` of `/proc/PID/status`).
pub fn resident_kib(process: Process) -> io::Result<u64> {
    let path = process.path("status");
    let status = std::fs::read_to_string(&path)?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("no VmRSS line in {path}")))
}

/// File descriptors `process` holds open (each socket, each accepted connection is one).
pub fn open_descriptors(process: Process) -> io::Result<usize> {
    Ok(std::fs::read_dir(process.path("fd"))?.count())
}

/// Threads of `process` (the `Threads` line of `/proc/PID/status`).
pub fn threads(process: Process) -> io::Result<usize> {
    let path = process.path("status");
    let status = std::fs::read_to_string(&path)?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("no Threads line in {path}")))
}

impl Process {
    /// `/proc/PID/<entry>` of this process.
    fn path(self, entry: &str) -> String {
        match self {
            Self::Myself => format!("/proc/self/{entry}"),
            Self::Pid(pid) => format!("/proc/{pid}/{entry}"),
        }
    }
}

/// The fields [`Stat`] keeps, from the text of `/proc/PID/stat`.
fn parse_stat(stat: &str) -> Option<Stat> {
    // The command name (field 2) is in parentheses and may itself hold spaces and parentheses:
    // the fields after it start after the last `)`. Then: state (3), ppid (4), pgrp (5), ...,
    // utime (14), stime (15), cutime (16), cstime (17), ..., num_threads (20).
    let (_, after_name) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after_name.split_whitespace().take(18).collect();
    let field = |at: usize| fields.get(at).copied();
    let number = |at: usize| field(at)?.parse::<u64>().ok();
    let ticks = number(11)?.checked_add(number(12)?)?;
    let children = number(13)?.checked_add(number(14)?)?;
    let duration = |ticks: u64| Duration::from_millis(ticks.saturating_mul(1000) / CLOCK_TICKS_PER_SECOND);
    Some(Stat {
        state: field(0)?.chars().next()?,
        parent: field(1)?.parse().ok()?,
        group: field(2)?.parse().ok()?,
        threads: field(17)?.parse().ok()?,
        cpu: duration(ticks),
        reaped_children_cpu: duration(children),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_the_fields_after_a_command_name_with_spaces() {
        let stat = "4242 (upcase (serve) x) Z 17 4240 4242 0 -1 4194560 1021 0 0 0 250 75 40 12 20 0 3 0";
        let want = Stat {
            state: 'Z',
            parent: 17,
            group: 4240,
            threads: 3,
            cpu: Duration::from_millis(3250),
            reaped_children_cpu: Duration::from_millis(520),
        };
        assert_eq!(parse_stat(stat), Some(want));
        assert_eq!(parse_stat("4242 (cut short) S 1 2"), None);
    }

    #[test]
    fn this_process_is_a_member_of_its_own_group() {
        let me = stat(Process::Myself).unwrap();
        assert_eq!(me.parent, std::os::unix::process::parent_id());
        assert!(me.state != 'Z');
        assert!(me.threads >= 1);
        assert!(group_members(me.group).unwrap().contains(&std::process::id()));
    }

    #[test]
    fn a_thread_that_works_is_scheduled() {
        // A child with one busy thread: this test binary's own threads come and go with other
        // tests, and a thread that ends takes its times out of the sum.
        let mut busy = std::process::Command::new("sh").args(["-c", "while :; do :; done"]).spawn().unwrap();
        let pid = Process::Pid(busy.id());
        let before = schedule(pid);
        std::thread::sleep(Duration::from_millis(50));
        let after = schedule(pid);
        let _ = busy.kill();
        let _ = busy.wait();
        let (before, after) = (before.unwrap(), after.unwrap());
        assert!(after.running > before.running, "{before:?} then {after:?}");
        assert!(after.waiting >= before.waiting);
    }

    #[test]
    fn this_process_can_be_measured() {
        assert!(cpu_time(Process::Myself).is_ok());
        assert!(resident_kib(Process::Myself).is_ok_and(|kib| kib > 0));
        let pid = Process::Pid(std::process::id());
        assert!(open_descriptors(pid).is_ok_and(|fds| fds >= 3), "stdin, stdout, stderr");
        assert!(threads(pid).is_ok_and(|n| n >= 1));
    }
}
