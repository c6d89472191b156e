//! `upcase bench --clients independent`: every flow a thread of its own with blocking sockets.
//! Against `upcase serve` in every pattern (large requests too, which must be written while the
//! reply is read), in an open loop, and against servers wrong, lossy, silent or slow on purpose:
//! the same checks and the same report as multiplexed flows, and really a thread per flow.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use support::bench::peers::{self, SLOW};
use support::bench::{assert_clean, bench, bench_json, number};
use support::{serve_upcase, upcase, PATIENCE};
use upcase::bench::process::{threads, Process};

/// `upcase bench --json --clients independent ARGS...`.
fn independent(args: &[&str]) -> (support::Output, serde_json::Value) {
    bench_json(&[&["--clients", "independent"], args].concat())
}

#[test]
fn every_pattern_against_upcase_serve() {
    let server = serve_upcase(&[]);
    let (tcp, udp) = (server.tcp().to_string(), server.udp().to_string());
    for (to, extra, threads) in [
        (&tcp, &["--pattern", "rr"][..], 3),
        (&udp, &["--udp"], 3),
        (&tcp, &["--pattern", "crr"], 3),
        (&tcp, &["--pattern", "stream", "--size", "1000"], 6),
        (&tcp, &["--pattern", "rr", "--text", "unicode", "--size", "100"], 3),
    ] {
        let (out, report) =
            independent(&[&["--to", to, "--conns", "3", "--duration", "300ms"], extra].concat());
        assert_clean(&out, &report);
        assert_eq!(report["parameters"]["clients"], "independent", "{report:#}");
        assert_eq!(
            report["parameters"]["threads"], threads,
            "a thread per flow (two per stream): {report:#}"
        );
        let intervals: f64 =
            report["intervals"].as_array().unwrap().iter().map(|i| number(i, "/requests")).sum();
        assert_eq!(intervals, number(&report, "/requests"), "{report:#}");
    }
    let out = bench(&["--clients", "independent", "--to", &tcp, "--conns", "2", "--duration", "200ms"]);
    let text = out.text();
    assert!(text.contains("load          2 independent clients (a thread each), 0.2 s"), "{text}");
}

#[test]
fn large_requests_are_written_while_the_reply_is_read() {
    // 300 KB each way and more than any socket buffer: a client that wrote it all before reading
    // would wait forever on a server that answers as it reads (upcase does).
    let server = serve_upcase(&["--tcp"]);
    let to = server.tcp().to_string();
    for pattern in ["rr", "crr"] {
        let args = [
            "--to",
            &to,
            "--pattern",
            pattern,
            "--size",
            "300000",
            "--text",
            "unicode",
            "--duration",
            "300ms",
        ];
        let (out, report) = independent(&args);
        assert_clean(&out, &report);
        assert!(number(&report, "/bytes_received") > number(&report, "/bytes_sent"), "{report:#}");
        assert_eq!(number(&report, "/bytes_sent"), number(&report, "/requests") * 300_000.0, "{report:#}");
    }
}

#[test]
fn an_open_loop_keeps_its_rate_with_a_thread_per_flow() {
    let server = serve_upcase(&[]);
    for (transport, to) in [("--udp", server.udp()), ("--tcp", server.tcp())] {
        let to = to.to_string();
        let (out, report) =
            independent(&[transport, "--to", &to, "--rate", "2000", "--conns", "4", "--duration", "500ms"]);
        assert_clean(&out, &report);
        let requests = number(&report, "/requests");
        assert!((500.0..=1100.0).contains(&requests), "{transport}: {requests} requests at 2000/s for 0.5 s");
        assert!(report["uncorrected_latency_us"].is_object(), "{report:#}");
    }
}

#[test]
fn wrong_lossy_silent_and_slow_servers() {
    let echo = peers::tcp_echo().to_string();
    for pattern in ["rr", "crr", "stream"] {
        let (out, report) =
            independent(&["--to", &echo, "--pattern", pattern, "--conns", "2", "--duration", "200ms"]);
        assert_eq!(out.status.code(), Some(1), "{pattern}: {report:#}");
        assert!(number(&report, "/errors/wrong") > 0.0, "{pattern}: {report:#}");
        let first = report["first_problem"].as_str().unwrap();
        assert!(first.contains("expected") && first.contains("got"), "{pattern}: {first}");
    }
    let (out, report) =
        independent(&["--udp", "--to", &peers::udp_echo().to_string(), "--duration", "200ms"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(number(&report, "/errors/wrong") > 0.0 && number(&report, "/requests") == 0.0, "{report:#}");

    let lossy = peers::udp_lossy().to_string();
    let (out, report) =
        independent(&["--udp", "--to", &lossy, "--conns", "2", "--duration", "300ms", "--timeout", "20ms"]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert!(number(&report, "/requests") > 0.0 && number(&report, "/errors/timeouts") > 0.0, "{report:#}");
    assert_eq!(number(&report, "/errors/wrong"), 0.0, "{report:#}");

    let silent = peers::tcp_silent().to_string();
    let (out, report) = independent(&["--to", &silent, "--duration", "200ms", "--timeout", "50ms"]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert!(number(&report, "/errors/timeouts") > 0.0 && number(&report, "/requests") == 0.0, "{report:#}");
    assert!(
        report["first_problem"].as_str().unwrap().contains("0 of 64 reply bytes within 50ms"),
        "{report:#}"
    );

    for (transport, slow) in [("--tcp", peers::tcp_slow()), ("--udp", peers::udp_slow())] {
        let (out, report) = independent(&[transport, "--to", &slow.to_string(), "--duration", "300ms"]);
        assert_clean(&out, &report);
        assert!(number(&report, "/latency_us/min") >= SLOW.as_micros() as f64, "{transport}: {report:#}");
    }
}

#[test]
fn each_flow_is_a_thread_of_its_own_and_their_number_is_capped() {
    let server = serve_upcase(&["--tcp"]);
    let to = server.tcp().to_string();
    let most_threads = |clients: &str| {
        let mut child = upcase()
            .args(["bench", "--clients", clients, "--to", &to, "--conns", "20", "--duration", "700ms"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (deadline, mut most) = (Instant::now() + PATIENCE, 0);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "upcase bench did not finish");
            most = most.max(threads(Process::Pid(child.id())).unwrap_or(0));
            thread::sleep(Duration::from_millis(20));
        }
        most
    };
    let independent = most_threads("independent");
    assert!(independent > 20, "20 flows and the main thread: {independent} threads");
    let multiplexed = most_threads("multiplexed");
    assert!(multiplexed < 10, "20 flows on one runtime thread: {multiplexed} threads");

    let out = bench(&["--clients", "independent", "--to", &to, "--conns", "4097", "--duration", "200ms"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("--clients independent runs a thread per flow: at most 4096 flows, not 4097")
            && out.stderr.contains("use --clients multiplexed"),
        "{}",
        out.stderr
    );
}
