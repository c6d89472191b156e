//! What a process costs, read from `/proc` (Linux): CPU time (how much work the server, and the
//! bench itself, did per request: the most stable efficiency figure on a shared, noisy machine;
//! with its reaped children, for a server that forks),
//! resident memory and open file descriptors (what idle connections cost).
//!
//! `upcase bench --server-pid`, the comparison harness and the tests all measure through here, so
//! a figure means the same wherever it is quoted. Only reads; never signals or otherwise touches
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
    let [utime, stime, _, _] = stat_times(process)?;
    Ok(ticks_to_duration(utime + stime))
}

/// [`cpu_time`] plus that of the children `process` has reaped: a server that forks a process
/// per connection (socat) does its work there, which counts once each child has exited.
pub fn cpu_time_with_children(process: Process) -> io::Result<Duration> {
    let [utime, stime, cutime, cstime] = stat_times(process)?;
    Ok(ticks_to_duration(utime + stime + cutime + cstime))
}

fn stat_times(process: Process) -> io::Result<[u64; 4]> {
    let path = process.path("stat");
    let stat = std::fs::read_to_string(&path)?;
    parse_stat(&stat)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("unexpected format of {path}")))
}

fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_millis(ticks.saturating_mul(1000) / CLOCK_TICKS_PER_SECOND)
}

/// Resident memory of `process`, in KiB (`VmRSS` of `/proc/PID/status`).
pub fn resident_kib(process: Process) -> io::Result<u64> {
    status_field(process, "VmRSS:")
}

/// File descriptors `process` holds open (each socket, each accepted connection is one).
pub fn open_descriptors(process: Process) -> io::Result<usize> {
    Ok(std::fs::read_dir(process.path("fd"))?.count())
}

/// Threads of `process` (the `Threads` line of `/proc/PID/status`).
pub fn threads(process: Process) -> io::Result<usize> {
    status_field(process, "Threads:")
}

/// The number on the `name` line of `/proc/PID/status` (a unit after it, like `kB`, is dropped).
fn status_field<T: std::str::FromStr>(process: Process, name: &str) -> io::Result<T> {
    let path = process.path("status");
    let status = std::fs::read_to_string(&path)?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("no {name} number in {path}")))
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

/// utime, stime, cutime and cstime, in clock ticks, from the text of `/proc/PID/stat`.
fn parse_stat(stat: &str) -> Option<[u64; 4]> {
    // The command name (field 2) is in parentheses and may itself hold spaces and parentheses:
    // the fields after it start after the last `)`. Then: state (3), ..., utime (14), stime (15),
    // cutime (16), cstime (17).
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(11);
    let mut next = || fields.next()?.parse::<u64>().ok();
    Some([next()?, next()?, next()?, next()?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_time_after_a_command_name_with_spaces() {
        let stat = "4242 (upcase (serve) x) S 1 4242 4242 0 -1 4194560 1021 0 0 0 250 75 0 0 20 0 3 0";
        assert_eq!(parse_stat(stat), Some([250, 75, 0, 0]));
        let reaped = "4242 (socat) S 1 4242 4242 0 -1 4194560 1021 0 0 0 250 75 40 12 20 0 3 0";
        assert_eq!(parse_stat(reaped), Some([250, 75, 40, 12]));
        assert_eq!(parse_stat("4242 (cut short) S 1 2"), None);
    }

    #[test]
    fn this_process_can_be_measured() {
        assert!(cpu_time(Process::Myself).is_ok());
        assert!(cpu_time_with_children(Process::Myself).is_ok());
        assert!(resident_kib(Process::Myself).is_ok_and(|kib| kib > 0));
        let pid = Process::Pid(std::process::id());
        assert!(open_descriptors(pid).is_ok_and(|fds| fds >= 3), "stdin, stdout, stderr");
        assert!(threads(pid).is_ok_and(|n| n >= 1));
    }
}
