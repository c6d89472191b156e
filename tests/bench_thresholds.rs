//! `upcase bench --fail-if` and the bench's warnings about itself: a breached threshold exits 3
//! and says which, a threshold on errors decides about them, a bad expression is a usage error
//! naming what is accepted, and an open loop that cannot keep to its schedule says that the
//! figures measure the bench. Against `upcase serve` and servers slow or lossy on purpose.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use serde_json::Value;
use support::bench::peers::{self, SLOW};
use support::bench::{bench, bench_json, number};
use support::serve_upcase;

/// The verdicts of a report's thresholds: (threshold, breached, measured).
fn verdicts(report: &Value) -> Vec<(String, bool, String)> {
    report["thresholds"]
        .as_array()
        .unwrap_or_else(|| panic!("no thresholds in {report:#}"))
        .iter()
        .map(|v| {
            let text = |key: &str| v[key].as_str().unwrap().to_owned();
            (text("threshold"), v["breached"].as_bool().unwrap(), text("measured"))
        })
        .collect()
}

#[test]
fn a_breached_threshold_exits_3_and_says_which() {
    let to = peers::tcp_slow().to_string();
    let limits = ["--fail-if", "p99>1ms", "--fail-if", "errors>0", "--fail-if", "rate<1"];
    let args = [&["--to", &to, "--duration", "300ms"][..], &limits].concat();
    let (out, report) = bench_json(&args);
    assert_eq!(out.status.code(), Some(3), "{report:#}");
    let verdicts = verdicts(&report);
    assert_eq!(verdicts.len(), 3, "{verdicts:?}");
    let (text, breached, measured) = &verdicts[0];
    assert_eq!((text.as_str(), *breached), ("p99>1ms", true));
    // The server sleeps before every reply: no p99 can be under that.
    let p99: f64 =
        measured.strip_prefix("p99 was ").unwrap().trim_end_matches(" µs").replace(',', "").parse().unwrap();
    assert!(p99 >= SLOW.as_micros() as f64 && p99 == number(&report, "/latency_us/p99"), "{measured}");
    assert_eq!(verdicts[1], ("errors>0".to_owned(), false, "errors was 0".to_owned()));
    assert!(!verdicts[2].1, "{verdicts:?}");
    // With --json the breach is on stderr too, for a CI log.
    assert_eq!(out.stderr.trim(), format!("upcase: threshold breached: p99>1ms ({measured})"));

    let out = bench(&args);
    assert_eq!(out.status.code(), Some(3));
    let text = out.text();
    assert!(text.contains("threshold     BREACHED: p99>1ms (p99 was "), "{text}");
    assert!(text.contains("threshold     met: errors>0 (errors was 0)"), "{text}");
    assert!(text.contains("result        ok: every request got its correct reply"), "{text}");
}

#[test]
fn thresholds_that_hold_exit_0() {
    let server = serve_upcase(&["--tcp"]);
    let to = server.tcp().to_string();
    let args = [
        "--to",
        &to,
        "--duration",
        "300ms",
        "--fail-if",
        "p99.9>30s",
        "--fail-if",
        "rate<1",
        "--fail-if",
        "errors>=1",
    ];
    let (out, report) = bench_json(&args);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert!(verdicts(&report).iter().all(|(_, breached, _)| !breached), "{report:#}");
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}

#[test]
fn a_threshold_on_errors_decides_about_them() {
    // Every other datagram is lost: about half the requests fail.
    let to = peers::udp_lossy().to_string();
    let run = |limits: &[&str]| {
        let args = [&["--udp", "--to", &to, "--duration", "300ms", "--timeout", "20ms"][..], limits].concat();
        bench_json(&args)
    };
    let (out, report) = run(&[]);
    assert_eq!(out.status.code(), Some(1), "lost replies fail a run: {report:#}");
    let (out, report) = run(&["--fail-if", "errors>90%"]);
    assert_eq!(out.status.code(), Some(0), "a loss the threshold allows: {report:#}");
    let (measured, lost) = (&verdicts(&report)[0].2, number(&report, "/errors/timeouts"));
    assert!(lost > 0.0 && measured.starts_with("errors was ") && measured.contains("% of "), "{measured}");
    let (out, report) = run(&["--fail-if", "lost>10%"]);
    assert_eq!(out.status.code(), Some(3), "{report:#}");
    assert!(out.stderr.contains("threshold breached: lost>10%"), "{}", out.stderr);
    // A threshold about something else leaves errors failing the run.
    let (out, report) = run(&["--fail-if", "p99>30s"]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
}

#[test]
fn a_bad_expression_is_a_usage_error_naming_what_is_accepted() {
    for (expression, why) in [
        ("p99>2", "a latency needs a unit"),
        ("speed>3", "unknown metric \"speed\""),
        ("p99=2ms", "no comparison"),
        ("rate<fast", "is not a number"),
    ] {
        let out = bench(&["--to", "127.0.0.1:9", "--fail-if", expression]);
        assert_eq!(out.status.code(), Some(2), "{expression}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{expression}: the bench must not run");
        for part in [why, "METRIC OP VALUE", "p99>2ms", "errors>0.1%", "rate<100k", "OP: >, >=, < or <="] {
            assert!(out.stderr.contains(part), "{part:?} for {expression}: {}", out.stderr);
        }
    }
}

#[test]
fn an_open_loop_that_falls_behind_says_the_figures_measure_the_bench() {
    // One flow, one request in flight, a server that takes 5 ms: at most 200/s get sent of
    // the 1,000/s asked.
    let to = peers::tcp_slow().to_string();
    let args = ["--to", &to, "--rate", "1000", "--duration", "300ms", "--fail-if", "unsent>0"];
    let (out, report) = bench_json(&args);
    assert_eq!(out.status.code(), Some(3), "{report:#}");
    assert!(
        number(&report, "/unsent") > 0.0 && number(&report, "/sends_behind_schedule") > 0.0,
        "{report:#}"
    );
    assert!(number(&report, "/max_send_lag_us") >= SLOW.as_micros() as f64 / 2.0, "{report:#}");
    let warnings: Vec<&str> =
        report["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert!(
        warnings.iter().any(|w| w.contains("due but never sent") && w.contains("add --conns")),
        "{warnings:?}"
    );
    assert!(warnings.iter().any(|w| w.contains("fell behind its schedule")), "{warnings:?}");
    assert!(
        warnings.iter().all(|w| w.contains("measure the bench") || w.contains("measure its flows")),
        "{warnings:?}"
    );
    // Both latencies, labelled: from the intended send time they include the waiting.
    let corrected = number(&report, "/latency_us/p99");
    assert!(corrected > number(&report, "/uncorrected_latency_us/p99"), "{report:#}");
    let text = bench(&args[..args.len() - 2]).text();
    assert!(
        text.contains("warning       ") && text.contains("  corrected ") && text.contains("  uncorrected "),
        "{text}"
    );
    assert!(text.contains("from each request's intended send time"), "{text}");
}
