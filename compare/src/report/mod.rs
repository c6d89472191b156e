//! docs/BENCHMARKS.md: the machine and the run, the targets (each met or missed), upcase against
//! C and Python, the costs per request, and a table per workload, all from medians over the
//! rounds.
//!
//! Everything from the analysis marker on in the existing file is kept as it is: that is where
//! people write profiles and explanations. Only formats what [`Results`] holds; never measures.

pub mod markdown;
mod summary;
mod tables;

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;

use self::markdown::{table, thousands};
use crate::measuring::costs::Costs;
use crate::measuring::{Figure, Outcome};
use crate::peers::Peer;
use crate::system::Kernel;
use crate::workloads::Workload;

/// The line after which the file is written by people; kept when the tables are regenerated.
pub const ANALYSIS_MARKER: &str = "<!-- analysis: kept by upcase-compare -->";
/// The marker as `bench/run`, the shell script this crate replaced, wrote it: recognised too.
const OLD_ANALYSIS_MARKER: &str = "<!-- analysis: kept by bench/run -->";

/// Everything a run found, as the report needs it.
#[derive(Debug, Default)]
pub struct Results {
    /// The workloads run, in order.
    pub workloads: Vec<Workload>,
    /// Each run's outcome, by workload id and peer, in round order.
    pub runs: HashMap<(&'static str, Peer), Vec<Outcome>>,
    /// The peers started, with how each was started.
    pub peers: Vec<(Peer, String)>,
    /// Costs per request by workload id and peer, or why a pair was not counted.
    pub costs: Vec<(&'static str, Peer, Result<Costs, String>)>,
    /// Why costs were not counted at all, if they were not.
    pub costs_note: Option<String>,
    /// The facts of the run.
    pub meta: Meta,
}

/// The facts of a run, for its header.
#[derive(Debug, Default)]
pub struct Meta {
    /// The command that ran it.
    pub command: String,
    /// When it started.
    pub date: String,
    /// Rounds of each timed workload.
    pub rounds: u32,
    /// Seconds per timed run.
    pub duration_s: u64,
    /// Seconds per counted run.
    pub costs_duration_s: u64,
    /// Idle connections in the memory workload.
    pub idle_conns: usize,
    /// How long the whole run took, s.
    pub elapsed_s: u64,
    /// Load averages at the start and at the end.
    pub load: (String, String),
    /// The kernel's settings at the start.
    pub kernel: Kernel,
    /// The commit measured.
    pub commit: String,
    /// What the report says about the machine.
    pub machine: Vec<(String, String)>,
}

impl Results {
    /// The median of `figure` over the runs of `peer` in `workload` that succeeded.
    pub fn median(&self, workload: &str, peer: Peer, figure: Figure) -> Option<f64> {
        let runs =
            self.runs.iter().find(|((id, p), _)| *id == workload && *p == peer).map(|(_, runs)| runs)?;
        let mut values: Vec<f64> = runs
            .iter()
            .filter_map(|outcome| match outcome {
                Outcome::Measured(figures) => figures.get(figure),
                Outcome::Failed(_) => None,
            })
            .collect();
        values.sort_by(f64::total_cmp);
        let middle = values.len() / 2;
        match values.len() {
            0 => None,
            n if n % 2 == 1 => values.get(middle).copied(),
            _ => Some((values.get(middle - 1)? + values.get(middle)?) / 2.0),
        }
    }

    /// The ids of the workloads in the plan, in run order.
    pub fn workloads(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.workloads.iter().map(|w| w.id)
    }

    /// Whether `workload` was in the plan.
    pub fn has(&self, workload: &str) -> bool {
        self.workloads.iter().any(|w| w.id == workload)
    }
}

/// Writes the report to `out`, keeping the analysis of the file already there.
pub fn write(results: &Results, out: &Path) -> anyhow::Result<()> {
    let analysis = std::fs::read_to_string(out)
        .ok()
        .and_then(|previous| {
            let at = previous.find(ANALYSIS_MARKER).or_else(|| previous.find(OLD_ANALYSIS_MARKER))?;
            previous.get(at..).map(str::to_owned)
        })
        .unwrap_or_else(default_analysis);
    if let Some(dir) = out.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = format!("{}\n{analysis}", document(results));
    std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))
}

fn default_analysis() -> String {
    format!(
        "{ANALYSIS_MARKER}\n\n## Analysis\n\nWritten by people, not by `upcase-compare`: profiles, explanations, what \
         changed between runs.\n`upcase-compare` keeps everything from the marker line above to the end of the file.\n"
    )
}

/// The generated part of the report.
pub fn document(results: &Results) -> String {
    let meta = &results.meta;
    let runs = if meta.rounds == 1 { "1 run".to_owned() } else { format!("{} runs", meta.rounds) };
    let mut out = vec!["# Benchmarks".to_owned(), String::new()];
    out.push(format!(
        "Generated by `cargo run --release -p upcase-compare` (`--help` for its options; `--quick` for a smoke run): do \
         not edit above the analysis marker, it is rewritten. upcase against two C servers, the lecture's Python \
         servers, socat + tr and iperf3, all on loopback, all loaded by the same load generator (upcase's bench, which \
         checks every reply). Each figure is the **median** of {runs} of {} s, the peers taking turns (A B C A B C …).\n",
        meta.duration_s
    ));
    out.push("## Machine and run\n".to_owned());
    let mut facts = meta.machine.clone();
    facts.extend([
        ("date".to_owned(), meta.date.clone()),
        ("command".to_owned(), format!("`{}`", meta.command)),
        ("upcase commit".to_owned(), meta.commit.clone()),
        (
            "load average (1, 5, 15 min) at start, at end".to_owned(),
            format!("{}; {}", meta.load.0, meta.load.1),
        ),
        ("whole run".to_owned(), format!("{} min {} s", meta.elapsed_s / 60, meta.elapsed_s % 60)),
    ]);
    let rows: Vec<Vec<String>> = facts.into_iter().map(|(k, v)| vec![k, v]).collect();
    out.push(table(&["", ""], &rows, false));
    out.push("Peers, each on its own free port of 127.0.0.1:\n".to_owned());
    let rows: Vec<Vec<String>> = results
        .peers
        .iter()
        .map(|(peer, command)| vec![peer.label().to_owned(), format!("`{command}`")])
        .collect();
    out.push(table(&["peer", "command"], &rows, false));
    out.push(how_to_read(meta.idle_conns));
    out.push("## Targets\n".to_owned());
    out.push(summary::targets(results));
    out.push("\n## upcase async against C and Python\n".to_owned());
    out.push(summary::ratios(results));
    out.push("\n## Cost per request: system calls, context switches, allocations\n".to_owned());
    out.push(summary::costs(results));
    let encodings = summary::encodings(results);
    if !encodings.is_empty() {
        out.push("\n## Encodings: cost per byte against UTF-8\n".to_owned());
        out.push(encodings);
    }
    out.push("\n## Workloads\n".to_owned());
    for workload in &results.workloads {
        out.push(format!("### {}\n", workload.title));
        out.push(format!("`{}`: `{}`\n", workload.id, workload.flags()));
        out.push(tables::workload(results, workload));
    }
    out.join("\n").trim_end().to_owned() + "\n"
}

fn how_to_read(idle_conns: usize) -> String {
    let idle = thousands(idle_conns as u64);
    format!(
        "How to read these:

- **Server CPU** is the server process's user + system time over the run (`/proc/PID/stat`, 10 ms
  ticks) divided by the correct replies: on a shared machine, the steadier figure to compare servers
  by. socat's includes its forked children (counted once they exit). **Bench CPU** is the load
  generator's own share of a core: near 100 %, it is the bottleneck, not the server.
- The machine has few cores, shared by the server, the load generator (one thread) and whatever
  else runs: requests/s and latency are noisy; ratios between peers measured in alternation are
  steadier than absolute figures.
- **The C reference** (`compare/peers/tuned_upper.c`, \"C, thread per core\") is the strongest C
  server we could write: a thread per core, each with its own `SO_REUSEPORT` UDP socket (up to 32
  datagrams per `recvmmsg`, answered by one `sendmmsg`) and its own listener in an edge-triggered
  epoll loop, no allocation per request or connection, no system call only to hear `EAGAIN`. The
  targets and the ratios compare against it. **C epoll, one thread** (`compare/peers/epoll_upper.c`)
  is the simpler reference of earlier runs (level-triggered, a datagram per system call), kept as
  the like-for-like single-loop design. Both uppercase **ASCII only** (16 bytes at a time, SSE2):
  far less work than Unicode, which flatters them; they run the ASCII workloads only.
- The **Python servers** are the lecture's, limitations included (`tests/peers/`): the TCP one answers
  one request per connection, so of the TCP workloads only crr and idle connections apply.
- With **one flow**, every request wakes a sleeping server and then the bench: CPU per request then
  includes the cost of waking up (large in a virtual machine), and it swings with where the
  scheduler puts the two processes. The figures at 32 flows are steadier.
- **socat + tr** forks a process per connection; with `stdbuf -o0`, `tr` answers as data comes, so
  it also runs rr on one connection and the stream.
- **iperf3** moves bytes one way without looking at them (its figure is client → server); the
  bench's stream sends and receives at once and checks every byte: the ceiling, not a peer.
- Stream: \"in\" is what the bench sent (what the server uppercased); Unicode replies are longer.
  Idle connections: resident memory (`VmRSS`, user space; socket buffers are the kernel's) grown
  while {idle} connections sat idle, per connection the server kept open; measured once per peer,
  on a freshly started server, which must then answer a few of them and release them all.
"
    )
}
