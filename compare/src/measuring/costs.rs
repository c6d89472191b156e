//! What a server spends per request: system calls, context switches and allocations, counted by
//! `perf stat` over the server's every thread and child process, only while the load runs.
//!
//! - system calls: the `raw_syscalls:sys_enter` tracepoint;
//! - context switches: the `context-switches` software event (each one a sleep and a wake-up);
//! - allocations: calls to glibc's malloc, calloc, realloc, posix_memalign, aligned_alloc and
//!   memalign, through uprobes added here (and removed again). Every peer allocates through
//!   glibc: Rust's default allocator, C, socat and tr call it directly, and Python runs with
//!   PYTHONMALLOC=malloc so that its small objects, which it otherwise carves from its own pools,
//!   count too.
//!
//! Each count is its own run on a freshly started server, under `perf stat` with counting off
//! until the load starts and off again when it ends (perf's control FIFOs). The probes make each
//! allocation cost a trap, so these runs are never timed. Needs perf, and root for the uprobes.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::stat::Mode;

use crate::cleanup::OnInterrupt;
use crate::peers::{Peer, Programs, Running};
use crate::tools;
use crate::workloads::BenchLoad;

const SYSCALLS: &str = "raw_syscalls:sys_enter";
const SWITCHES: &str = "context-switches";
const ALLOCATORS: [&str; 6] = ["malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc", "memalign"];
/// How long perf may take to stop once the server has.
const STOP_WITHIN: Duration = Duration::from_secs(15);

/// What a server spent over one counted run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Costs {
    /// Correct replies (crr: connections) in the run.
    pub requests: u64,
    /// System calls.
    pub syscalls: u64,
    /// Context switches.
    pub context_switches: u64,
    /// Calls to glibc's allocation functions.
    pub allocations: u64,
}

impl Costs {
    /// `count` per request.
    pub fn per_request(&self, count: u64) -> f64 {
        count as f64 / self.requests.max(1) as f64
    }
}

/// Counts costs: holds the allocation probes for as long as it lives.
#[derive(Debug)]
pub struct Counter {
    events: Vec<String>,
    added: Vec<String>,
    dir: PathBuf,
    duration: Duration,
    _on_interrupt: OnInterrupt,
}

impl Counter {
    /// Adds the uprobes on the glibc that `binary` loads (every peer loads the same), and keeps
    /// files in `dir`; each count runs the load for `duration`.
    pub fn new(binary: &Path, dir: &Path, duration: Duration) -> anyhow::Result<Self> {
        if !nix::unistd::geteuid().is_root() {
            bail!("counting allocations needs uprobes, which need root");
        }
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let libc = libc_of(binary)?;
        let listed = perf(&["probe", "-l"])?;
        let (mut events, mut added) = (vec![SYSCALLS.to_owned(), SWITCHES.to_owned()], Vec::new());
        for function in ALLOCATORS {
            let event = format!("probe_libc:{function}");
            if listed.lines().any(|line| line.split_whitespace().next() == Some(event.as_str())) {
                events.push(event);
                continue;
            }
            let mut add = Command::new("perf");
            add.args(["probe", "-q", "-x"]).arg(&libc).args(["--add", function]);
            let out = tools::run_bounded(add, Duration::from_secs(60))?;
            if out.status.success() {
                events.push(event.clone());
                added.push(event);
            } else if function == "malloc" {
                remove_probes(&added);
                bail!("cannot probe malloc in {}: {}", libc.display(), tools::last_line(&out.stderr));
            }
        }
        let to_remove = added.clone();
        let _on_interrupt = OnInterrupt::register(move || remove_probes(&to_remove));
        Ok(Self { events, added, dir: dir.to_path_buf(), duration, _on_interrupt })
    }

    /// Starts `peer` afresh under `perf stat`, counts while `load` runs, stops it.
    pub fn count(
        &self,
        peer: Peer,
        programs: &Programs,
        workload: &str,
        load: &BenchLoad,
    ) -> anyhow::Result<Costs> {
        let name = format!("{workload}-{}", peer.name());
        let counts = self.dir.join(format!("{name}.perf"));
        let control = Control::new(&self.dir, &name)?;
        let wrapper: Vec<OsString> = [
            "perf",
            "stat",
            "-D",
            "-1",
            "--control",
            &format!("fifo:{},{}", control.ctl.display(), control.ack.display()),
            "-x,",
            "-o",
            &counts.to_string_lossy(),
            "-e",
            &self.events.join(","),
            "--",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        let log = self.dir.join(format!("{name}.log"));
        let mut running =
            Running::start_under(peer, programs, &log, &wrapper, &[("PYTHONMALLOC", "malloc")])?;
        control.send("enable")?;
        let options = load.options(running.addr(), self.duration, None);
        let report =
            options.and_then(|options| upcase::bench::run(&options, &mut |_| {}).map_err(Into::into));
        control.send("disable")?;
        running.stop_children_then_wait(STOP_WITHIN)?;
        let report = report?;
        if let Some(problems) = report.problems() {
            bail!(
                "the load failed: {problems}{}",
                report.first_problem.map(|p| format!("; first: {p}")).unwrap_or_default()
            );
        }
        let text = fs::read_to_string(&counts)
            .with_context(|| format!("perf stat wrote no {}", counts.display()))?;
        let count = |event: &str| {
            parse_count(&text, event).with_context(|| format!("perf stat counted nothing for {event}"))
        };
        let mut allocations = 0;
        for event in self.events.iter().filter(|e| e.starts_with("probe_libc:")) {
            allocations += count(event)?;
        }
        Ok(Costs {
            requests: report.requests,
            syscalls: count(SYSCALLS)?,
            context_switches: count(SWITCHES)?,
            allocations,
        })
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        remove_probes(&self.added);
    }
}

fn remove_probes(events: &[String]) {
    for event in events {
        let mut delete = Command::new("perf");
        delete.args(["probe", "-q", "-d", event]);
        let _ = tools::run_bounded(delete, Duration::from_secs(60));
    }
}

fn perf(args: &[&str]) -> anyhow::Result<String> {
    let mut command = Command::new("perf");
    command.args(args);
    let out = tools::run_bounded(command, Duration::from_secs(60))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The glibc that `binary` loads, from `ldd`.
fn libc_of(binary: &Path) -> anyhow::Result<PathBuf> {
    let mut ldd = Command::new("ldd");
    ldd.arg(binary);
    let out = tools::run_bounded(ldd, Duration::from_secs(30))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let path = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("libc.so.6 => "))
        .and_then(|rest| rest.split_whitespace().next())
        .with_context(|| format!("cannot find the libc of {} in ldd's output", binary.display()))?;
    fs::canonicalize(path).with_context(|| format!("cannot resolve {path}"))
}

/// The count of `event` in `perf stat -x,` output (`COUNT,UNIT,EVENT,...` per line); `None`
/// if it is missing or `<not counted>`.
fn parse_count(text: &str, event: &str) -> Option<u64> {
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let mut fields = line.split(',');
        let count = fields.next()?;
        let _unit = fields.next()?;
        (fields.next()? == event).then(|| count.parse().ok())?
    })
}

/// perf stat's control FIFOs: `enable` and `disable`, each acknowledged.
struct Control {
    ctl: PathBuf,
    ack: PathBuf,
    ctl_file: File,
    ack_file: File,
}

impl Control {
    fn new(dir: &Path, name: &str) -> anyhow::Result<Self> {
        let (ctl, ack) = (dir.join(format!("{name}.ctl.fifo")), dir.join(format!("{name}.ack.fifo")));
        for fifo in [&ctl, &ack] {
            let _ = fs::remove_file(fifo);
            nix::unistd::mkfifo(fifo, Mode::S_IRUSR | Mode::S_IWUSR)
                .with_context(|| format!("cannot make the FIFO {}", fifo.display()))?;
        }
        // Opened for reading and writing, so that opening never waits for perf's end.
        let open = |path: &Path, flags| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(flags)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))
        };
        let ctl_file = open(&ctl, 0)?;
        let ack_file = open(&ack, nix::libc::O_NONBLOCK)?;
        Ok(Self { ctl, ack, ctl_file, ack_file })
    }

    fn send(&self, command: &str) -> anyhow::Result<()> {
        (&self.ctl_file).write_all(format!("{command}\n").as_bytes())?;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut reply = Vec::new();
        while !String::from_utf8_lossy(&reply).contains("ack") {
            let mut chunk = [0; 64];
            match (&self.ack_file).read(&mut chunk) {
                Ok(n) => reply.extend(chunk.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(10))
                }
                Err(e) => return Err(e).context("cannot read perf stat's acknowledgement"),
            }
            if Instant::now() >= deadline {
                bail!("perf stat did not acknowledge `{command}` within 5 s");
            }
        }
        Ok(())
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.ctl);
        let _ = fs::remove_file(&self.ack);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_read_from_perf_stat_csv() {
        let text = "# started on Mon\n\n1234,,raw_syscalls:sys_enter,2000000,100.00,,\n\
                    56,,context-switches,2000000,100.00,,\n<not counted>,,probe_libc:malloc,0,0.00,,\n";
        assert_eq!(parse_count(text, SYSCALLS), Some(1234));
        assert_eq!(parse_count(text, SWITCHES), Some(56));
        assert_eq!(parse_count(text, "probe_libc:malloc"), None);
        assert_eq!(parse_count(text, "probe_libc:calloc"), None);
    }
}
