//! The machine and the kernel settings that shape the figures: what the report shows about
//! them, and the one setting a run may change (`tcp_tw_reuse_delay`), restored afterwards.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};

use crate::cleanup::OnInterrupt;
use crate::tools;

const TW_REUSE_DELAY: &str = "/proc/sys/net/ipv4/tcp_tw_reuse_delay";

/// `net.ipv4.tcp_tw_reuse_delay` changed for the run; the old value is written back when this
/// is dropped (or on Ctrl-C).
#[derive(Debug)]
pub struct TwReuseDelay {
    saved: String,
    _on_interrupt: OnInterrupt,
}

impl TwReuseDelay {
    /// Sets it to `ms`, remembering the value it had.
    pub fn set(ms: u32) -> anyhow::Result<Self> {
        if !Path::new(TW_REUSE_DELAY).exists() {
            bail!("no {TW_REUSE_DELAY} here (it came with Linux 6.12)");
        }
        let saved = read(TW_REUSE_DELAY).with_context(|| format!("cannot read {TW_REUSE_DELAY}"))?;
        std::fs::write(TW_REUSE_DELAY, format!("{ms}\n"))
            .with_context(|| format!("cannot write {TW_REUSE_DELAY} (run as root)"))?;
        let restore = saved.clone();
        let _on_interrupt = OnInterrupt::register(move || {
            let _ = std::fs::write(TW_REUSE_DELAY, format!("{restore}\n"));
        });
        println!("==> net.ipv4.tcp_tw_reuse_delay: {saved} -> {ms} ms for this run");
        Ok(Self { saved, _on_interrupt })
    }
}

impl Drop for TwReuseDelay {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(TW_REUSE_DELAY, format!("{}\n", self.saved)) {
            eprintln!("upcase-compare: cannot restore {TW_REUSE_DELAY} to {}: {e}", self.saved);
        }
    }
}

/// The kernel's settings for connections to one address, read at the start of a run: they set
/// the ceiling of crr on loopback.
#[derive(Debug, Clone, Default)]
pub struct Kernel {
    /// `ip_local_port_range`: the client ports connect() picks from.
    pub port_range: Option<(u32, u32)>,
    /// `tcp_tw_reuse` (0: never reuse a port in TIME_WAIT).
    pub tw_reuse: Option<u32>,
    /// `tcp_tw_reuse_delay`, ms (1000 where the kernel has no such setting).
    pub tw_reuse_delay_ms: u32,
    /// `tcp_max_tw_buckets`.
    pub tw_max: Option<u64>,
    /// Connections in TIME_WAIT at the start, every program's.
    pub time_wait: Option<u64>,
}

impl Kernel {
    /// Reads the settings now.
    pub fn read() -> Self {
        let port_range = read("/proc/sys/net/ipv4/ip_local_port_range").ok().and_then(|text| {
            let mut ports = text.split_whitespace().filter_map(|p| p.parse().ok());
            Some((ports.next()?, ports.next()?))
        });
        Self {
            port_range,
            tw_reuse: read("/proc/sys/net/ipv4/tcp_tw_reuse").ok().and_then(|v| v.parse().ok()),
            tw_reuse_delay_ms: read(TW_REUSE_DELAY).ok().and_then(|v| v.parse().ok()).unwrap_or(1000),
            tw_max: read("/proc/sys/net/ipv4/tcp_max_tw_buckets").ok().and_then(|v| v.parse().ok()),
            time_wait: time_wait(),
        }
    }

    /// Connections per second at which crr to one address runs out of client ports when every
    /// connection leaves a TIME_WAIT: connect() takes the even ports of the local range first,
    /// and loopback reuses one in TIME_WAIT after `tcp_tw_reuse_delay`. `None` if unknown.
    pub fn crr_cap(&self) -> Option<f64> {
        let (low, high) = self.port_range?;
        if self.tw_reuse == Some(0) || self.tw_reuse_delay_ms == 0 {
            return None;
        }
        Some(f64::from(high - low + 1) / 2.0 / (f64::from(self.tw_reuse_delay_ms) / 1000.0))
    }
}

/// Connections in TIME_WAIT (`tw` of the `TCP:` line of /proc/net/sockstat).
fn time_wait() -> Option<u64> {
    let sockstat = read("/proc/net/sockstat").ok()?;
    let line = sockstat.lines().find(|line| line.starts_with("TCP:"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    words.windows(2).find(|pair| pair.first() == Some(&"tw")).and_then(|pair| pair.get(1)?.parse().ok())
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    read("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Now, as `2026-11-25 00:04 UTC` for people and `20261125T000412Z` for file names.
pub fn now() -> (String, String) {
    let rfc3339 = humantime::format_rfc3339_seconds(SystemTime::now()).to_string(); // 2026-11-25T00:04:12Z
    let date = format!("{} UTC", rfc3339.get(..16).unwrap_or(&rfc3339).replace('T', " "));
    let stamp: String = rfc3339.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    (date, stamp)
}

/// The repository's commit, `-dirty` if what is measured (the code, the C servers) has changes.
pub fn commit(root: &Path) -> String {
    let git = |args: &[&str]| {
        let mut command = Command::new("git");
        command.current_dir(root).args(args);
        tools::run_bounded(command, Duration::from_secs(30)).ok()
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]).filter(|out| out.status.success()) else {
        return "unknown".to_owned();
    };
    let dirty = git(&["diff", "--quiet", "HEAD", "--", "src", "Cargo.toml", "Cargo.lock", "compare/peers"])
        .is_some_and(|out| !out.status.success());
    format!("{}{}", String::from_utf8_lossy(&head.stdout).trim(), if dirty { "-dirty" } else { "" })
}

/// What the report says about the machine, as label and value.
pub fn machine() -> Vec<(String, String)> {
    let cpu = read("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = std::thread::available_parallelism().map_or_else(|_| "unknown".to_owned(), |n| n.to_string());
    let kernel = format!(
        "{} {}",
        read("/proc/sys/kernel/ostype").unwrap_or_default(),
        read("/proc/sys/kernel/osrelease").unwrap_or_default()
    );
    let version = |program: &str, args: &[&str], pick: &dyn Fn(&str) -> bool| {
        let mut command = Command::new(program);
        command.args(args);
        tools::run_bounded(command, Duration::from_secs(10))
            .ok()
            .and_then(|out| {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                text.lines().find(|line| pick(line)).map(|line| line.trim().to_owned())
            })
            .unwrap_or_else(|| "not installed".to_owned())
    };
    let any = |line: &str| !line.trim().is_empty();
    vec![
        ("CPU".to_owned(), cpu),
        ("cores".to_owned(), cores),
        ("kernel".to_owned(), kernel),
        ("rustc".to_owned(), version("rustc", &["--version"], &any)),
        ("gcc".to_owned(), version("gcc", &["--version"], &any)),
        ("python".to_owned(), version("python3", &["--version"], &any)),
        ("socat".to_owned(), version("socat", &["-V"], &|line| line.contains("socat version"))),
        ("iperf3".to_owned(), version("iperf3", &["--version"], &any)),
    ]
}

fn read(path: &str) -> std::io::Result<String> {
    std::fs::read_to_string(path).map(|text| text.trim().to_owned())
}
