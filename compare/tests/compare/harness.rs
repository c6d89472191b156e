//! The harness end to end, as a user runs it but short: a few workloads, a few peers, one round
//! of one second, to a file that already has an analysis. The report must have the tables and
//! keep the analysis, and every server the harness started must be gone when it ends, whether it
//! ends normally or on Ctrl-C.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use upcase_compare::report::ANALYSIS_MARKER;
use upcase_compare::tools;

use crate::support::{has, one_at_a_time, scratch, upcase_binary, PATIENCE};

fn harness(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_upcase-compare"));
    command.arg("--upcase").arg(upcase_binary()).args(["--no-install", "--no-costs"]).args(args);
    command
}

/// The `(pid, port)` of each peer a harness's output says it started.
fn started_peers(output: &str) -> Vec<(i32, u16)> {
    output
        .lines()
        .filter(|line| line.ends_with(" ready"))
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            Some((words.get(4)?.parse().ok()?, words.get(2)?.parse().ok()?))
        })
        .collect()
}

/// Waits (bounded) until neither the process nor its port is there any more.
fn assert_gone(pid: i32, port: u16) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        // Signal 0: whether the process exists (a reaped one does not).
        let alive = kill(Pid::from_raw(pid), None).is_ok() && !is_zombie(pid);
        let listening =
            TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), PATIENCE).is_ok();
        if !alive && !listening {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "peer {pid} on port {port} is still there (alive {alive}, listening {listening})"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
}

#[test]
fn a_short_run_writes_the_tables_keeps_the_analysis_and_stops_every_peer() {
    if !has("gcc") || !has("python3") {
        return;
    }
    let _alone = one_at_a_time();
    let out = scratch("harness").join("BENCHMARKS.md");
    let analysis = format!("{ANALYSIS_MARKER}\n\n## Analysis\n\nA profile written by hand.\n");
    std::fs::write(&out, format!("# old tables\n\n{analysis}")).unwrap();
    let mut command =
        harness(&["--quick", "--only", "udp-rr-1,tcp-crr-4,idle", "--peers", "async,c,py-udp", "--out"]);
    command.arg(&out);
    let run = tools::run_bounded(command, Duration::from_secs(120)).unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));

    let written = std::fs::read_to_string(&out).unwrap();
    assert!(!written.contains("# old tables"), "{written}");
    assert!(written.ends_with(&analysis), "the analysis was not kept:\n{written}");
    for heading in [
        "## Targets",
        "## upcase async against C and Python",
        "### UDP rr, 1 flow, 64 bytes",
        "### 2,000 idle TCP connections",
    ] {
        assert!(written.contains(heading), "no {heading:?} in:\n{written}");
    }
    assert!(written.contains("--quick --only udp-rr-1,tcp-crr-4,idle"), "the command is shown:\n{written}");
    // Every peer ran every workload it applies to, once, and succeeded.
    let rows = |label: &str| -> Vec<&str> {
        written.lines().filter(|l| l.starts_with(&format!("| {label} |"))).collect()
    };
    for label in ["upcase async", "C, thread per core (gcc -O2)"] {
        let runs = rows(label).into_iter().filter(|row| row.ends_with("| 1/1 |")).count();
        assert_eq!(runs, 3, "{label}: three workloads run once each:\n{written}");
    }
    assert_eq!(
        rows("Python UDP (lecture)").iter().filter(|row| row.ends_with("| 1/1 |")).count(),
        1,
        "{written}"
    );
    // Those who sit a workload out are listed, with why.
    assert!(written.contains("| Python UDP (lecture) | — [1] |"), "{written}");
    assert!(written.contains("The lecture's UDP server speaks UDP only."), "{written}");
    assert!(
        written
            .contains("| UDP rr, 32 independent clients: server CPU per request, async ÷ C (≤ 1.0) | — | not measured |"),
        "{written}"
    );

    let peers = started_peers(&stdout);
    assert_eq!(peers.len(), 3, "three peers started:\n{stdout}");
    for (pid, port) in peers {
        assert_gone(pid, port);
    }
}

#[test]
fn ctrl_c_stops_every_peer_it_started() {
    if !has("gcc") {
        return;
    }
    let _alone = one_at_a_time();
    let out = scratch("interrupted").join("BENCHMARKS.md");
    let mut command = harness(&[
        "--only",
        "tcp-rr-8",
        "--peers",
        "c,c-epoll",
        "--rounds",
        "1",
        "--duration",
        "60",
        "--out",
    ]);
    command.arg(&out).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    // Until both peers are up and the first run has begun.
    while started_peers(&seen).len() < 2 {
        let line = lines.next().expect("the harness ended before starting its peers").unwrap();
        seen.push_str(&line);
        seen.push('\n');
    }
    thread::sleep(Duration::from_millis(500));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the harness did not stop on SIGINT");
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130), "{seen}");
    for (pid, port) in started_peers(&seen) {
        assert_gone(pid, port);
    }
    assert!(!Path::new(&out).exists(), "an interrupted run writes no report");
}
