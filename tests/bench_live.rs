//! `upcase bench` while it runs: `--interval` lines in a pipe and `--json-stream` events, against
//! `upcase serve`, a server that is slow on purpose and one that is wrong on purpose. The
//! intervals must add up to the report exactly, and show what the server did in each.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use serde_json::Value;
use support::bench::peers::{self, SLOW};
use support::bench::{bench, number};
use support::serve_upcase;

/// Runs `upcase bench --json-stream ARGS...`: its events, one JSON object a line.
fn events(args: &[&str]) -> (support::Output, Vec<Value>) {
    let out = bench(&[&["--json-stream"], args].concat());
    let events = out
        .text()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}")))
        .collect();
    (out, events)
}

/// The interval events between the start and the end, after checking that they are there.
fn intervals(events: &[Value]) -> (&Value, &[Value], &Value) {
    let (Some(start), Some(end)) = (events.first(), events.last()) else { panic!("no events") };
    assert_eq!(start["event"], "start", "{start:#}");
    assert_eq!(end["event"], "end", "{end:#}");
    let middle = &events[1..events.len() - 1];
    assert!(middle.iter().all(|e| e["event"] == "interval"), "{events:#?}");
    (start, middle, end)
}

/// The intervals follow each other without a gap, add up to the report, and each has its
/// latencies in order.
fn assert_add_up(middle: &[Value], end: &Value) {
    let mut at = 0.0;
    for interval in middle {
        assert!((number(interval, "/start_s") - at).abs() < 1e-6, "{interval:#} after {at}");
        at = number(interval, "/end_s");
        if let Some(latency) = interval.get("latency_us").filter(|l| !l.is_null()) {
            let (p50, p99, max) = (number(latency, "/p50"), number(latency, "/p99"), number(latency, "/max"));
            assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{interval:#}");
        }
    }
    assert!(
        (at - number(end, "/parameters/duration_s")).abs() < 1e-6,
        "the last interval ends the load: {at}"
    );
    let sum = |key: &str| middle.iter().map(|i| number(i, key)).sum::<f64>();
    assert_eq!(sum("/requests"), number(end, "/requests"), "{middle:#?}");
    assert_eq!(sum("/errors"), number(end, "/errors/total"), "{middle:#?}");
    // The report keeps the intervals the events showed.
    let shown: Vec<Value> = middle
        .iter()
        .map(|event| {
            let mut interval = event.clone();
            interval.as_object_mut().unwrap().remove("event");
            interval
        })
        .collect();
    assert_eq!(end["intervals"], Value::Array(shown), "{end:#}");
}

#[test]
fn interval_lines_come_in_a_pipe_before_the_table() {
    let server = serve_upcase(&["--tcp"]);
    let to = server.tcp().to_string();
    let out = bench(&["--to", &to, "--conns", "2", "--duration", "500ms", "--interval", "200ms"]);
    out.assert_success("upcase bench --interval");
    let text = out.text();
    let lines: Vec<&str> = text.lines().collect();
    for (line, when) in lines.iter().zip(["0.0-0.2 s", "0.2-0.4 s", "0.4-0.5 s"]) {
        assert!(line.trim_start().starts_with(when), "{when}: {text}");
        for part in ["requests/s", " 0 errors", "p50 ", "p99 ", " µs"] {
            assert!(line.contains(part), "{part:?} in {line:?}");
        }
    }
    assert!(lines[3].starts_with("target "), "three interval lines, then the table:\n{text}");
}

#[test]
fn json_stream_events_add_up_to_the_report_against_upcase() {
    let server = serve_upcase(&[]);
    for (transport, to) in [("--tcp", server.tcp()), ("--udp", server.udp())] {
        let to = to.to_string();
        let args = [transport, "--to", &to, "--conns", "3", "--duration", "500ms", "--interval", "100ms"];
        let (out, events) = events(&args);
        assert_eq!(out.status.code(), Some(0), "{events:#?}\n{}", out.stderr);
        let (start, middle, end) = intervals(&events);
        assert_eq!(start["parameters"]["interval_s"], 0.1);
        assert_eq!(start["parameters"], end["parameters"], "the start event has the run's parameters");
        assert_eq!(middle.len(), 5, "{middle:#?}");
        assert_add_up(middle, end);
        assert_eq!(end["ok"], true, "{end:#}");
        // The end event is the report `--json` prints: every field, the histogram too.
        for key in ["latency_us", "histogram", "started_at", "ended_at", "bench_cpu", "warnings"] {
            assert!(end.get(key).is_some(), "no {key} in {end:#}");
        }
        assert!(end["histogram"].as_str().unwrap().starts_with("HISTF"), "{end:#}");
    }
}

#[test]
fn intervals_show_a_slow_server_as_it_is() {
    let to = peers::tcp_slow().to_string();
    let args = ["--to", &to, "--conns", "2", "--duration", "500ms", "--interval", "100ms"];
    let (out, events) = events(&args);
    assert_eq!(out.status.code(), Some(0), "{events:#?}\n{}", out.stderr);
    let (_, middle, end) = intervals(&events);
    assert_add_up(middle, end);
    let slow = SLOW.as_micros() as f64;
    for interval in middle {
        // Each request waits for the server's sleep: no reply is faster, and each of the two
        // flows gets at most one reply per sleep (plus one begun before the interval, and one
        // more in the last interval, which also holds the replies that came after the end).
        assert!(number(interval, "/latency_us/p50") >= slow, "{interval:#}");
        let length = number(interval, "/end_s") - number(interval, "/start_s");
        let most = 2.0 * (length / SLOW.as_secs_f64() + 2.0);
        assert!(number(interval, "/requests") <= most, "at most {most}: {interval:#}");
    }
}

#[test]
fn intervals_count_the_errors_of_a_wrong_server() {
    let to = peers::udp_echo().to_string();
    let args = ["--udp", "--to", &to, "--duration", "300ms", "--interval", "100ms"];
    let (out, events) = events(&args);
    assert_eq!(out.status.code(), Some(1), "{events:#?}");
    let (_, middle, end) = intervals(&events);
    assert_add_up(middle, end);
    assert!(number(end, "/errors/wrong") > 0.0, "{end:#}");
    for interval in middle {
        assert!(number(interval, "/errors") > 0.0 && interval["latency_us"].is_null(), "{interval:#}");
    }
}

#[test]
fn json_and_json_stream_do_not_go_together() {
    let out = bench(&["--json", "--json-stream", "--duration", "100ms"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("--json-stream") && out.stderr.contains("cannot be used with"),
        "{}",
        out.stderr
    );
    let out = bench(&["--interval", "1ms", "--duration", "100ms", "--to", "127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("--interval must be at least 10ms"), "{}", out.stderr);
}
