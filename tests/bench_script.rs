//! The benchmark's own parts, cheaply: `bench/run` parses, the C reference server builds without
//! warnings and answers correctly under `upcase bench` (UDP, TCP rr, crr, and a stream that
//! exercises its partial writes), and `bench/report.py` turns a real `upcase bench --json` into a
//! table while keeping the hand-written analysis; `bench/costs.py` counts system calls and
//! allocations per request, and upcase makes none of the latter. The benchmark itself is not run
//! here: it takes minutes (`bench/run --quick` for a smoke run).
//!
//! Needs bash, gcc and python3, and perf and root for the costs; where a tool is missing its
//! test says so and passes, unless `UPCASE_REQUIRE_TOOLS` is set (CI).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory for this test's files, removed first if a previous run left it.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-script-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Builds the C server with every warning an error; returns the binary.
fn build_c_server(dir: &Path) -> PathBuf {
    let binary = dir.join("epoll_upper");
    let mut gcc = Command::new("gcc");
    gcc.args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&binary)
        .arg(root().join("bench/peers/epoll_upper.c"));
    run("gcc", gcc, b"", PATIENCE).assert_success("gcc -Wall -Wextra -Werror");
    binary
}

/// Builds the C server and starts it on a free port.
fn start_c_server(dir: &Path) -> (Guard, u16) {
    let binary = build_c_server(dir);
    let mut command = Command::new(&binary);
    command.arg("0");
    start_server("epoll_upper", command, |line| line.strip_prefix("ready ")?.trim().parse().ok())
}

/// `upcase bench ARGS --json` against `port`; its JSON, after checking every reply was right.
fn bench(port: u16, args: &[&str]) -> String {
    let mut command = upcase();
    command.args(["bench", "--to", &format!("127.0.0.1:{port}"), "--duration", "300ms", "--json"]).args(args);
    let out = run("upcase bench", command, b"", PATIENCE);
    out.assert_success(&format!("upcase bench {}", args.join(" ")));
    let json = out.text();
    let report: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(report["ok"], true, "{json}");
    json
}

#[test]
fn the_script_parses() {
    let mut bash = Command::new("bash");
    bash.arg("-n").arg(root().join("bench/run"));
    run("bash -n bench/run", bash, b"", PATIENCE).assert_success("bash -n bench/run");
    let mut help = Command::new("bash");
    help.arg(root().join("bench/run")).arg("--help");
    let out = run("bench/run --help", help, b"", PATIENCE);
    out.assert_success("bench/run --help");
    assert!(out.text().contains("--quick"), "{}", out.text());
}

#[test]
fn the_c_server_is_correct_under_load_and_the_report_keeps_the_analysis() {
    if !installed("gcc") {
        return;
    }
    let dir = scratch("c");
    let (server, port) = start_c_server(&dir);
    let pid = server.pid().to_string();
    let rr = bench(port, &["--conns", "4", "--server-pid", &pid]);
    bench(port, &["--udp", "--conns", "4"]);
    bench(port, &["--pattern", "crr", "--conns", "2"]);
    // Large writes both ways at once: the server's writes come out partial and must resume.
    bench(port, &["--pattern", "stream", "--conns", "2", "--size", "100000"]);

    // A one-workload results directory, as bench/run leaves it.
    let results = dir.join("results");
    let run_dir = results.join("runs/tcp-rr-32/c");
    fs::create_dir_all(&run_dir).unwrap();
    fs::write(run_dir.join("1.json"), &rr).unwrap();
    fs::write(run_dir.join("1.meta"), "rc=0\nticks=3\n").unwrap();
    fs::write(
        results.join("plan.tsv"),
        "tcp-rr-32\trr\tTCP rr, 32 connections\t--conns 32\tc\trun\n\
         tcp-rr-32\trr\tTCP rr, 32 connections\t--conns 32\tpy-udp\tUDP only.\n",
    )
    .unwrap();
    fs::write(
        results.join("peers.tsv"),
        format!("c\tC epoll (gcc -O2)\t{pid}\t{port}\tepoll_upper {port}\npy-udp\tPython UDP\t\t\t\n"),
    )
    .unwrap();
    fs::write(results.join("meta.env"), "command=bench/run\nrounds=1\nduration=1\nelapsed=5\n").unwrap();
    let output = dir.join("BENCHMARKS.md");
    let analysis = "<!-- analysis: kept by bench/run -->\n\n## Analysis\n\nA profile written by hand.\n";
    fs::write(&output, format!("# old table\n\n{analysis}")).unwrap();
    let mut report = python3();
    report.arg(root().join("bench/report.py")).arg(&results).arg(&output);
    run("bench/report.py", report, b"", PATIENCE).assert_success("bench/report.py");

    let written = fs::read_to_string(&output).unwrap();
    assert!(!written.contains("# old table"), "{written}");
    assert!(written.ends_with(analysis), "the analysis was not kept:\n{written}");
    assert!(written.contains("## Targets"), "{written}");
    // The last such row: the first is in the list of peers.
    let row = written.lines().rfind(|l| l.starts_with("| C epoll")).unwrap_or_else(|| panic!("{written}"));
    assert!(row.ends_with("| 1/1 |"), "{row}");
    assert!(written.contains("| Python UDP | — [1] |"), "{written}");
    assert!(written.contains("[1] UDP only."), "{written}");
}

/// `bench/costs.py` counts what a server spends per request, and the figures are what the
/// design promises: upcase's async model, like the C server, answers a UDP or a TCP request in
/// about two system calls and allocates nothing for it. Needs perf and root (for the uprobes on
/// glibc's allocator).
#[test]
fn costs_are_counted_and_no_request_allocates() {
    if !installed("gcc") || !installed("perf") {
        return;
    }
    let root_user = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    if !root_user {
        skip_unless_required("counting allocations needs root (for the uprobes on glibc's allocator)");
        return;
    }
    let dir = scratch("costs");
    let c_server = build_c_server(&dir);
    let upcase_binary = env!("CARGO_BIN_EXE_upcase");
    let results = dir.join("results");
    fs::create_dir_all(results.join("peers")).unwrap();
    fs::write(
        results.join("plan.tsv"),
        "udp-rr-32\trr\tUDP rr\t--udp --pattern rr --conns 32 --size 64\tc\trun\n\
         tcp-rr-32\trr\tTCP rr\t--pattern rr --conns 32 --size 64\tc\trun\n",
    )
    .unwrap();
    fs::write(results.join("peers/c.argv"), format!("{}\n{{port}}\n", c_server.display())).unwrap();
    fs::write(results.join("peers/c.ready"), "^ready\n").unwrap();
    fs::write(
        results.join("peers/async.argv"),
        format!("{upcase_binary}\nserve\n--listen\n127.0.0.1:{{port}}\n"),
    )
    .unwrap();
    fs::write(results.join("peers/async.ready"), "listening on udp\n").unwrap();

    let mut costs = python3();
    costs.arg(root().join("bench/costs.py")).arg(&results).arg(upcase_binary).arg("1").args([
        "udp-rr-32:c",
        "udp-rr-32:async",
        "tcp-rr-32:c",
        "tcp-rr-32:async",
    ]);
    run("bench/costs.py", costs, b"", PATIENCE * 3).assert_success("bench/costs.py");

    for pair in ["udp-rr-32/c", "udp-rr-32/async", "tcp-rr-32/c", "tcp-rr-32/async"] {
        let json = fs::read_to_string(results.join(format!("costs/{pair}.json"))).unwrap();
        let r: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(r.get("error").is_none(), "{pair}: {json}");
        let requests = r["requests"].as_f64().unwrap();
        assert!(requests > 1_000.0, "{pair}: {json}");
        let per_request = |key: &str| r[key].as_f64().unwrap() / requests;
        assert!((1.5..3.5).contains(&per_request("syscalls")), "{pair}: {json}");
        // The few allocations of opening 32 connections are spread over all their requests.
        assert!(per_request("allocations") < 0.01, "{pair}: {json}");
    }
}
