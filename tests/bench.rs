//! `upcase bench` against real servers on loopback: `upcase serve` in every pattern, servers that
//! are wrong on purpose, open-loop pacing, the plot, the server's CPU time, and a target with
//! nothing listening. Every run is bounded to at most a second of load.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use serde_json::Value;
use support::bench::{bench, bench_json, number, peers};
use support::*;

/// Exit 0, requests made, no error of any kind, percentiles in order, parameters echoed back.
fn assert_clean(out: &Output, report: &Value, pattern: &str) {
    assert_eq!(out.status.code(), Some(0), "{report:#}\nstderr:\n{}", out.stderr);
    assert_eq!(report["ok"], true);
    assert_eq!(report["parameters"]["pattern"], pattern);
    assert!(number(report, "/requests") > 0.0 && number(report, "/requests_per_s") > 0.0, "{report:#}");
    for kind in ["wrong", "timeouts", "connection", "total"] {
        assert_eq!(number(report, &format!("/errors/{kind}")), 0.0, "{kind}: {report:#}");
    }
    let p = |name: &str| number(report, &format!("/latency_us/{name}"));
    assert!(p("min") <= p("p50") && p("p50") <= p("p90") && p("p90") <= p("p99"), "{report:#}");
    assert!(p("p99") <= p("p999") && p("p999") <= p("max") && p("max") < 1e6, "{report:#}");
    assert!(report["first_problem"].is_null(), "{report:#}");
}

#[test]
fn rr_over_tcp_and_udp_against_upcase_serve() {
    let server = serve_upcase(&[]);
    for (transport, addr) in [("--tcp", server.tcp()), ("--udp", server.udp())] {
        let to = addr.to_string();
        let (out, report) = bench_json(&[transport, "--to", &to, "--conns", "4", "--duration", "300ms"]);
        assert_clean(&out, &report, "rr");
        assert_eq!(report["parameters"]["transport"], &transport[2..]);
        assert_eq!(report["parameters"]["conns"], 4);
        assert_eq!(report["address"], to.as_str());
        let requests = number(&report, "/requests");
        assert_eq!(number(&report, "/bytes_sent"), requests * 64.0, "{report:#}");
    }
}

#[test]
fn crr_and_stream_over_tcp_against_upcase_serve() {
    let server = serve_upcase(&["--tcp"]);
    let to = server.tcp().to_string();
    let (out, report) = bench_json(&["--to", &to, "--pattern", "crr", "--conns", "4", "--duration", "300ms"]);
    assert_clean(&out, &report, "crr");

    let args = ["--to", &to, "--pattern", "stream", "--conns", "2", "--size", "1000", "--duration", "300ms"];
    let (out, report) = bench_json(&args);
    assert_clean(&out, &report, "stream");
    assert!(number(&report, "/received_mb_per_s") > 0.0, "{report:#}");
    assert_eq!(number(&report, "/bytes_sent"), number(&report, "/bytes_received"), "{report:#}");
}

#[test]
fn unicode_text_in_every_pattern() {
    let server = serve_upcase(&[]);
    let (tcp, udp) = (server.tcp().to_string(), server.udp().to_string());
    for (to, extra) in [
        (&udp, &["--udp"][..]),
        (&tcp, &["--pattern", "rr"]),
        (&tcp, &["--pattern", "crr"]),
        (&tcp, &["--pattern", "stream"]),
    ] {
        let args = [
            &["--to", to, "--text", "unicode", "--size", "100", "--conns", "2", "--duration", "200ms"],
            extra,
        ]
        .concat();
        let (out, report) = bench_json(&args);
        let pattern = extra.last().filter(|p| !p.starts_with("--")).unwrap_or(&"rr");
        assert_clean(&out, &report, pattern);
        assert_eq!(report["parameters"]["text"], "unicode");
        // ΐ becomes three characters: the replies are longer than the requests.
        assert!(number(&report, "/bytes_received") > number(&report, "/bytes_sent"), "{report:#}");
    }
}

#[test]
fn the_text_report_is_a_table_and_progress_lines_come_first() {
    let server = serve_upcase(&["--tcp"]);
    let out = bench(&["--to", &server.tcp().to_string(), "--duration", "1100ms", "--conns", "2"]);
    out.assert_success("upcase bench");
    let text = out.text();
    let first = text.lines().next().unwrap_or_default();
    assert!(first.contains("requests/s") && first.contains("0 errors"), "{text}");
    for label in ["target ", "requests ", "latency (µs) ", "errors ", "bench CPU ", "result "] {
        assert!(text.lines().any(|l| l.starts_with(label)), "no {label:?} line in:\n{text}");
    }
    assert!(text.contains("p99.9") && text.contains("errors        none"), "{text}");
    assert!(text.contains("result        ok: every request got its correct reply"), "{text}");
}

#[test]
fn wrong_replies_are_counted_and_fail_the_run() {
    let to = peers::tcp_echo().to_string();
    for pattern in ["rr", "crr", "stream"] {
        let (out, report) =
            bench_json(&["--to", &to, "--pattern", pattern, "--conns", "2", "--duration", "200ms"]);
        assert_eq!(out.status.code(), Some(1), "{pattern}: {report:#}");
        assert_eq!(report["ok"], false);
        assert!(number(&report, "/errors/wrong") > 0.0, "{pattern}: {report:#}");
        let first = report["first_problem"].as_str().unwrap_or_default();
        assert!(first.contains("expected") && first.contains("got"), "{pattern}: {first}");
    }
    let out = bench(&["--to", &to, "--duration", "200ms"]);
    assert_eq!(out.status.code(), Some(1));
    let text = out.text();
    assert!(text.contains("PROBLEM:") && text.contains("wrong replies"), "{text}");
    assert!(text.contains("first error") && text.contains("expected \"AAAAAAAA THE QUICK"), "{text}");
}

#[test]
fn lost_datagrams_are_counted_and_fail_the_run() {
    let to = peers::udp_lossy().to_string();
    let args = ["--udp", "--to", &to, "--conns", "2", "--duration", "300ms", "--timeout", "20ms"];
    let (out, report) = bench_json(&args);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let (ok, lost) = (number(&report, "/requests"), number(&report, "/errors/timeouts"));
    assert!(ok > 0.0 && lost > 0.0, "{report:#}");
    assert_eq!(number(&report, "/errors/wrong"), 0.0, "{report:#}");
    let out = bench(&args[..args.len() - 2]);
    let text = out.text();
    assert!(text.contains("PROBLEM:") && text.contains(" lost"), "{text}");
}

#[test]
fn open_loop_reaches_the_asked_rate() {
    let server = serve_upcase(&[]);
    for (transport, addr) in [("--udp", server.udp()), ("--tcp", server.tcp())] {
        let to = addr.to_string();
        let args = [transport, "--to", &to, "--rate", "2000", "--conns", "4", "--duration", "1s"];
        let (out, report) = bench_json(&args);
        assert_clean(&out, &report, "rr");
        let requests = number(&report, "/requests");
        assert!((1000.0..=2200.0).contains(&requests), "{transport}: {requests} requests at 2000/s for 1 s");
        assert_eq!(report["parameters"]["rate"], 2000.0);
    }
}

#[test]
fn plot_and_server_cpu() {
    let server = serve_upcase(&["--tcp"]);
    let plot = std::env::temp_dir().join(format!("upcase-bench-{}.svg", std::process::id()));
    let (pid, to) = (server.guard.pid().to_string(), server.tcp().to_string());
    let plot_arg = plot.to_str().unwrap();
    let args = ["--to", &to, "--conns", "4", "--duration", "500ms", "--plot", plot_arg, "--server-pid", &pid];
    let (out, report) = bench_json(&args);
    assert_clean(&out, &report, "rr");
    let svg = std::fs::read_to_string(&plot).unwrap();
    let _ = std::fs::remove_file(&plot);
    assert!(svg.starts_with("<svg"), "{svg}");
    assert!(svg.contains(&format!("upcase bench: tcp rr to {to}")), "{svg}");
    assert!(svg.contains("latency (µs)") && svg.contains("<polyline") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(number(&report, "/server_cpu/pid"), f64::from(server.guard.pid()));
    assert!(number(&report, "/server_cpu/us_per_request") >= 0.0, "{report:#}");
    assert!(number(&report, "/bench_cpu/us_per_request") >= 0.0, "{report:#}");
}

#[test]
fn cannot_run_exits_2_with_one_clear_line() {
    let to = format!("127.0.0.1:{}", unused_port());
    let cases: [(&[&str], &str); 6] = [
        (&["--to", &to], "cannot connect to tcp 127.0.0.1:"),
        (&["--udp", "--to", &to], "no server on udp 127.0.0.1:"),
        (&["--udp", "--pattern", "crr", "--to", &to], "--pattern crr needs TCP"),
        (&["--to", "no-such-host.invalid:1"], "cannot resolve"),
        (&["--to", &to, "--server-pid", "4000000000"], "cannot read the CPU time of process"),
        (&["--to", &to, "--conns", "0"], "--conns must be at least 1"),
    ];
    for (args, expected) in cases {
        let out = bench(&[args, &["--duration", "200ms"]].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.text());
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", out.stderr);
        assert!(
            lines[0].starts_with("upcase: error: ") && lines[0].contains(expected),
            "{args:?}: {}",
            out.stderr
        );
    }
    let out = bench(&["--to", &to]);
    assert!(
        out.stderr.contains(
            "connection refused (nothing is listening there: start `upcase serve`, or check the port)"
        ),
        "{}",
        out.stderr
    );
    let out = bench(&["--pattern", "nonsense"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
}

/// Bench and server agreeing on an encoding: every pattern's replies check out; the bench
/// written in one encoding against a server reading another finds wrong replies (the lecture's
/// warning, measured).
#[test]
fn encodings_agreed_pass_and_mismatched_fail() {
    for label in ["latin1", "shift_jis", "koi8-r", "utf-16le"] {
        let server = serve_upcase(&["--encoding", label]);
        for (transport, pattern, addr) in
            [("--tcp", "rr", server.tcp()), ("--udp", "rr", server.udp()), ("--tcp", "stream", server.tcp())]
        {
            let to = addr.to_string();
            let args =
                [transport, "--pattern", pattern, "--to", &to, "--text", "unicode", "--duration", "200ms"];
            let (out, report) = bench_json(&[&args[..], &["--encoding", label]].concat());
            assert_clean(&out, &report, pattern);
            assert!(report["parameters"]["encoding"].as_str().is_some(), "{report:#}");
        }
        let to = server.tcp().to_string();
        let (out, report) = bench_json(&["--to", &to, "--text", "unicode", "--duration", "200ms"]);
        assert_eq!(out.status.code(), Some(1), "utf-8 text to a {label} server: {report:#}");
        assert!(number(&report, "/errors/wrong") > 0.0, "{report:#}");
    }
}
