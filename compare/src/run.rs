//! The order of a comparison: plan, tools, builds, peers, the rounds (peers taking turns), the
//! costs on fresh peers, and the report. Prints one line per run as it goes.
//!
//! Every peer started here is owned by a guard and stopped when the run ends, however it ends.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::measuring::costs::Counter;
use crate::measuring::{self, Figures, Outcome};
use crate::options::Options;
use crate::peers::{Peer, Programs, Running};
use crate::report::{self, Meta, Results};
use crate::system::{self, Kernel, TwReuseDelay};
use crate::tools::{self, Tool};
use crate::workloads::{self, Load, Workload, COSTED};

/// Runs the comparison `options` describe and writes its report.
pub fn run(options: &Options) -> anyhow::Result<()> {
    crate::cleanup::install()?;
    let root = tools::root();
    let work = tools::work_dir(&root);
    let plan = workloads::select(workloads::all(options.idle_conns()), &options.only, &options.peers)?;
    let out = options.out(&root);
    let costed: Vec<&Workload> = plan.iter().filter(|w| COSTED.contains(&w.id)).collect();
    let count_costs = !options.no_costs && !costed.is_empty();
    let needed: Vec<Peer> =
        Peer::ALL.into_iter().filter(|peer| plan.iter().any(|w| w.peers.contains(peer))).collect();

    let mut tools_needed: Vec<Tool> = needed.iter().flat_map(|peer| peer.tools().iter().copied()).collect();
    if count_costs {
        tools_needed.push(tools::PERF);
    }
    tools::ensure(&tools_needed, !options.no_install)?;
    // Idle connections need as many descriptors here and in the server (which inherits this).
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let programs = build(&root, &work, &needed, options.upcase.as_deref())?;

    let (date, stamp) = system::now();
    let dir = work.join(format!("run-{stamp}-{}", std::process::id()));
    fs::create_dir_all(dir.join("peers")).with_context(|| format!("cannot create {}", dir.display()))?;
    let _tw_reuse_delay = options.tw_reuse_delay.map(TwReuseDelay::set).transpose()?;
    let kernel = Kernel::read();
    let load_start = system::load_average();
    let rounds = options.rounds();
    let duration = options.duration();
    let timed: usize =
        plan.iter().filter(|w| !matches!(w.load, Load::Idle { .. })).map(|w| w.peers.len()).sum();
    let idle: usize =
        plan.iter().filter(|w| matches!(w.load, Load::Idle { .. })).map(|w| w.peers.len()).sum();
    let total = timed * rounds as usize + idle;
    let costs_runs: usize = if count_costs { costed.iter().map(|w| w.peers.len()).sum() } else { 0 };
    let estimate = total as u64 * (duration.as_secs() + 1)
        + idle as u64 * 4
        + 15
        + costs_runs as u64 * (options.costs_duration().as_secs() + 2);
    let ids: Vec<&str> = plan.iter().map(|w| w.id).collect();
    println!("==> plan: {}", ids.join(" "));
    println!(
        "==> {} timed runs of {} s ({rounds} rounds) + {idle} idle-connection runs + {costs_runs} counted runs: about {} min {} s",
        timed * rounds as usize,
        duration.as_secs(),
        estimate / 60,
        estimate % 60
    );
    let started = Instant::now();

    println!("==> starting peers");
    let mut running: BTreeMap<Peer, Result<Running, String>> = BTreeMap::new();
    let mut commands = Vec::new();
    for &peer in &needed {
        let log = dir.join("peers").join(format!("{}.log", peer.name()));
        let started = Running::start(peer, &programs, &log).map_err(|e| format!("{e:#}"));
        match &started {
            Ok(r) => {
                println!("    {:<16} port {:<5} pid {:<7} ready", peer.name(), r.port, r.pid());
                commands.push((peer, r.command.clone()));
            }
            Err(why) => println!("    {:<16} {why}", peer.name()),
        }
        running.insert(peer, started);
    }

    let mut runs: HashMap<(&'static str, Peer), Vec<Outcome>> = HashMap::new();
    let mut done = 0;
    for workload in &plan {
        let passes = if matches!(workload.load, Load::Idle { .. }) { 1 } else { rounds }; // memory: once, fresh
        for round in 1..=passes {
            // The order turns each round, so that no peer always runs right after the same one.
            let count = workload.peers.len();
            for i in 0..count {
                let Some(&peer) = workload.peers.get((i + round as usize - 1) % count) else { continue };
                let outcome = run_one(workload, running.get_mut(&peer), duration, &dir, round);
                done += 1;
                println!(
                    "[{done:>3}/{total} {:>4}s] {:<16} round {round}/{passes}  {:<16} {}",
                    started.elapsed().as_secs(),
                    workload.id,
                    peer.name(),
                    summary(&outcome)
                );
                runs.entry((workload.id, peer)).or_default().push(outcome);
                thread::sleep(Duration::from_millis(200));
            }
        }
    }
    drop(running);

    let (costs, costs_note) = if options.no_costs {
        (Vec::new(), Some("not measured (--no-costs)".to_owned()))
    } else if costed.is_empty() {
        (Vec::new(), None)
    } else {
        count(&costed, &programs, &dir, options.costs_duration())
    };

    let results = Results {
        workloads: plan.clone(),
        runs,
        peers: commands,
        costs,
        costs_note,
        meta: Meta {
            command: command_line(),
            date,
            rounds,
            duration_s: duration.as_secs(),
            costs_duration_s: options.costs_duration().as_secs(),
            idle_conns: options.idle_conns(),
            elapsed_s: started.elapsed().as_secs(),
            load: (load_start, system::load_average()),
            kernel,
            commit: system::commit(&root),
            machine: system::machine(),
        },
    };
    println!("==> writing {}", out.display());
    report::write(&results, &out)?;
    println!(
        "==> done in {} s; each run's report and each peer's log in {}",
        started.elapsed().as_secs(),
        dir.display()
    );
    Ok(())
}

/// Builds what the peers need: upcase's release binary, the C servers; finds Python.
fn build(root: &Path, work: &Path, needed: &[Peer], upcase: Option<&Path>) -> anyhow::Result<Programs> {
    let mut programs = Programs { root: root.to_path_buf(), ..Programs::default() };
    if let Some(upcase) = upcase {
        let path = fs::canonicalize(upcase).with_context(|| format!("--upcase {}", upcase.display()))?;
        programs.upcase = Some(path);
    } else if needed.iter().any(|peer| peer.is_upcase()) {
        println!("==> cargo build --release --bin upcase");
        programs.upcase = Some(tools::build_upcase(root)?);
    }
    let c = |name: &str| -> anyhow::Result<PathBuf> {
        println!("==> gcc -O2 -Werror compare/peers/{name}.c");
        let binary = work.join(name);
        tools::build_c(&root.join("compare/peers").join(format!("{name}.c")), &binary)?;
        Ok(binary)
    };
    if needed.contains(&Peer::CTuned) {
        programs.tuned_c = Some(c("tuned_upper")?);
    }
    if needed.contains(&Peer::CEpoll) {
        programs.epoll_c = Some(c("epoll_upper")?);
    }
    if needed.iter().any(|peer| matches!(peer, Peer::PythonUdp | Peer::PythonTcp)) {
        programs.python = Some(tools::python()?);
    }
    Ok(programs)
}

/// One run of one peer in one workload; its bench report is kept in the run's directory.
fn run_one(
    workload: &Workload,
    peer: Option<&mut Result<Running, String>>,
    duration: Duration,
    dir: &Path,
    round: u32,
) -> Outcome {
    let peer = match peer {
        Some(Ok(peer)) => peer,
        Some(Err(why)) => return Outcome::Failed(format!("the peer did not start: {why}")),
        None => return Outcome::Failed("the peer was not started".to_owned()),
    };
    if let Some(why) = peer.exited() {
        return Outcome::Failed(format!("the peer is not running: {why}"));
    }
    let outcome = match workload.load {
        Load::Idle { conns } => match measuring::idle::measure(peer.addr(), peer.pid(), conns) {
            Ok(idle) => Outcome::Measured(Figures { idle: Some(Box::new(idle)), ..Figures::default() }),
            Err(e) => Outcome::Failed(format!("{e:#}")),
        },
        Load::Bench(_) if peer.peer == Peer::Iperf3 => measuring::iperf3(peer, duration),
        Load::Bench(load) => {
            let (outcome, report) = measuring::bench(peer, &load, duration);
            if let Some(report) = report {
                let file = dir.join(format!("{}-{}-{round}.json", workload.id, peer.peer.name()));
                if let Ok(json) = serde_json::to_string_pretty(&report) {
                    let _ = fs::write(file, json);
                }
            }
            outcome
        }
    };
    match peer.exited() {
        Some(why) => {
            Outcome::Failed(format!("the peer exited during the run: {why} (see {})", peer.log.display()))
        }
        None => outcome,
    }
}

/// Costs per request of every peer in the costed workloads, each on a fresh server.
type CostRows = Vec<(&'static str, Peer, Result<measuring::costs::Costs, String>)>;

fn count(
    costed: &[&Workload],
    programs: &Programs,
    dir: &Path,
    duration: Duration,
) -> (CostRows, Option<String>) {
    let pairs: usize = costed.iter().map(|w| w.peers.len()).sum();
    println!("==> costs per request ({pairs} untimed runs of {} s under perf stat)", duration.as_secs());
    let binary = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/bin/sh"));
    let counter = match Counter::new(&binary, &dir.join("costs"), duration) {
        Ok(counter) => counter,
        Err(e) => {
            println!("    not measured: {e:#}");
            return (Vec::new(), Some(format!("not measured: {e:#}")));
        }
    };
    let mut rows = Vec::new();
    for workload in costed {
        let Load::Bench(load) = workload.load else { continue };
        for &peer in &workload.peers {
            let counted = counter.count(peer, programs, workload.id, &load).map_err(|e| format!("{e:#}"));
            match &counted {
                Ok(c) => println!(
                    "    {:<16} {:<16} {:>9} requests: {:6.2} system calls, {:5.2} context switches, {:6.2} allocations per request",
                    workload.id,
                    peer.name(),
                    report::markdown::thousands(c.requests),
                    c.per_request(c.syscalls),
                    c.per_request(c.context_switches),
                    c.per_request(c.allocations)
                ),
                Err(why) => println!("    {:<16} {:<16} failed: {why}", workload.id, peer.name()),
            }
            rows.push((workload.id, peer, counted));
        }
    }
    (rows, None)
}

/// One run in a few words, for the terminal.
fn summary(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Failed(why) => format!("failed: {why}"),
        Outcome::Measured(Figures { idle: Some(idle), .. }) => format!(
            "{} held, {} bytes each, {}/{} answered",
            idle.held,
            report::markdown::number(idle.bytes_per_conn, 0),
            idle.answered,
            idle.checked
        ),
        Outcome::Measured(f) => format!(
            "{}/s, {} MB/s, server CPU {} µs/request",
            report::markdown::number(f.per_s, 0),
            report::markdown::number(f.sent_mb_s, 1),
            report::markdown::number(f.cpu_us, 2)
        ),
    }
}

/// The command that ran this comparison, as someone would type it again.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut line = "cargo run --release -p upcase-compare".to_owned();
    if !args.is_empty() {
        line = format!("{line} -- {}", args.join(" "));
    }
    line
}
