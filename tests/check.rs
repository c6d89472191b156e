//! `upcase check` graded against servers whose faults are known: the lecture's own Python servers,
//! small faulty servers (tests/peers/faulty/), and `upcase serve` in every model and several
//! encodings, which must get a clean card. Each row is asserted through `--json`; every run is
//! bounded, and the ones that test the time budget assert how long they took.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

/// A card as the test sees it: exit code, each row's status by name, and how long it took.
struct Card {
    code: i32,
    rows: BTreeMap<String, String>,
    json: serde_json::Value,
    took: Duration,
}

impl Card {
    fn status(&self, name: &str) -> &str {
        self.rows.get(name).unwrap_or_else(|| panic!("no row {name:?} in {:#}", self.json))
    }

    /// Every row not named in `except` passed.
    ///
    /// The crowd rows ("many clients", "connect burst") grade speed under load as much as
    /// correctness: on a busy 2-core CI machine a Python thread-per-connection peer can answer
    /// its 1,000th client after the probe's wait. So unless a test names them, they may warn.
    /// Where the kernel caps listen backlogs below the 1,024 the peers ask for
    /// (net.core.somaxconn), they may warn even when named, whatever the server.
    fn all_pass_except(&self, except: &[(&str, &str)]) {
        for (name, status) in &self.rows {
            let named = except.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
            let want = named.unwrap_or("pass");
            let crowd = ["many clients", "connect burst"].contains(&name.as_str());
            if crowd && status == "warn" && (named.is_none() || !roomy_backlog()) {
                continue;
            }
            assert_eq!(status, want, "row {name:?} in {:#}", self.json);
        }
        for (name, _) in except {
            assert!(self.rows.contains_key(*name), "no row {name:?} in {:#}", self.json);
        }
    }

    fn evidence(&self, name: &str) -> String {
        let rows = self.json["rows"].as_array().unwrap();
        let row = rows.iter().find(|r| r["name"] == name).unwrap();
        row["evidence"].as_str().unwrap().to_owned()
    }

    /// Asserts the row's evidence contains `part`.
    fn shows(&self, name: &str, part: &str) {
        let evidence = self.evidence(name);
        assert!(evidence.contains(part), "row {name:?}: {evidence:?} lacks {part:?}");
    }
}

/// Whether listen backlogs of 1,024 are granted (Linux caps them at net.core.somaxconn).
fn roomy_backlog() -> bool {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .map_or(true, |cap| cap >= 1024)
}

fn check(transport: &str, addr: SocketAddr) -> Card {
    check_with(transport, addr, &[])
}

/// `upcase check` with a 500 ms timeout and `extra` flags.
fn check_with(transport: &str, addr: SocketAddr, extra: &[&str]) -> Card {
    let mut command = upcase();
    command.arg("check");
    run_check(command, transport, addr, extra)
}

fn run_check(mut command: Command, transport: &str, addr: SocketAddr, extra: &[&str]) -> Card {
    let to = addr.to_string();
    command.args([transport, "--to", &to, "--json", "--timeout", "500ms"]).args(extra);
    let started = Instant::now();
    let output = run("upcase check", command, b"", Duration::from_secs(40));
    let took = started.elapsed();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}; stderr: {}", output.text(), output.stderr));
    let rows = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r["status"].as_str().unwrap().to_owned()))
        .collect();
    Card { code: output.status.code().unwrap(), rows, json, took }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn upcase_serve_gets_a_clean_card_in_every_model() {
    for model in ["async", "threaded", "iterative"] {
        let server = serve_upcase(&["--model", model]);
        let card = check("--tcp", server.tcp());
        let crowd = [("many clients", "pass"), ("connect burst", "pass")];
        let flagged: &[(&str, &str)] = if model == "iterative" {
            &[crowd[0], crowd[1], ("concurrency", "warn"), ("encoding", "info"), ("latency", "info")]
        } else {
            &[crowd[0], crowd[1], ("encoding", "info"), ("latency", "info")]
        };
        card.all_pass_except(flagged);
        card.shows("encoding", "server appears to assume utf-8 (full Unicode)");
        card.shows("many clients", "1,000");
        assert_eq!(card.code, 0, "{model}");
        assert!(card.took < Duration::from_secs(30), "{model}: {:?}", card.took);
        let card = check("--udp", server.udp());
        card.all_pass_except(&[("encoding", "info"), ("latency", "info")]);
        card.shows("loss", "every one answered at the first try");
        assert_eq!(card.code, 0, "{model} udp");
        assert!(card.took < Duration::from_secs(30), "{model} udp: {:?}", card.took);
    }
}

#[test]
fn the_lectures_tcp_server_is_cut_at_1024_and_dies_on_a_split_character() {
    let (_server, port) = serve_python("tcp_server.py");
    let card = check("--tcp", local(port));
    card.all_pass_except(&[
        ("size 1,025", "fail"),
        ("size 2,049", "fail"),
        ("size 10,000", "fail"),
        ("split character", "fail"),
        ("two lines", "skip"),
        ("slow client", "skip"),
        ("empty connection", "skip"),
        ("invalid utf-8", "skip"),
        ("encoding", "skip"),
        ("concurrency", "skip"),
        ("persistent", "skip"),
        ("many clients", "skip"),
        ("connect burst", "skip"),
        ("latency", "skip"),
    ]);
    assert!(card.evidence("size 1,025").starts_with("cut at 1,024 bytes"));
    card.shows("split character", "then the server stopped answering: a new connection was refused");
    assert_eq!(card.code, 1);
}

#[test]
fn the_lectures_udp_server_is_cut_at_2048_and_dies_on_invalid_utf8() {
    let (_server, port) = serve_python("udp_server.py");
    let card = check("--udp", local(port));
    card.all_pass_except(&[
        ("size 2,049", "fail"),
        ("size 10,000", "fail"),
        ("size 30,000", "fail"),
        ("source port 7", "warn"),
        ("latency", "info"),
        ("invalid utf-8", "fail"),
        ("encoding", "skip"),
    ]);
    assert!(card.evidence("size 30,000").starts_with("cut at 2,048 bytes"));
    assert_eq!(card.code, 1);
}

#[test]
fn a_udp_server_that_dies_on_invalid_utf8_fails_that_row_only() {
    let (_server, port) = serve_python("faulty/udp_dies_on_invalid.py");
    let card = check("--udp", local(port));
    card.all_pass_except(&[
        ("source port 7", "warn"),
        ("latency", "info"),
        ("invalid utf-8", "fail"),
        ("encoding", "skip"),
    ]);
    card.shows("invalid utf-8", "then the server stopped answering");
    assert_eq!(card.code, 1);
}

#[test]
fn an_ascii_only_server_gets_a_warn() {
    let (_server, port) = serve_python("faulty/tcp_ascii_only.py");
    let card = check("--tcp", local(port));
    card.all_pass_except(&[
        ("unicode", "warn"),
        ("split character", "warn"),
        ("encoding", "warn"),
        ("latency", "info"),
    ]);
    card.shows("unicode", "uppercases ASCII only");
    card.shows("encoding", "server appears to assume ASCII only (bytes above 0x7F unchanged)");
    assert_eq!(card.code, 0);
}

#[test]
fn an_iterative_server_is_flagged_as_such() {
    // Python's listen() backlog of 128 holds what the one-at-a-time server has not accepted yet:
    // 100 waiting clients fit, 1,000 and a burst of 512 do not.
    let (_server, port) = serve_python("faulty/tcp_iterative.py");
    let card = check("--tcp", local(port));
    card.all_pass_except(&[
        ("concurrency", "warn"),
        ("encoding", "info"),
        ("many clients", "warn"),
        ("connect burst", "warn"),
        ("latency", "info"),
    ]);
    card.shows("concurrency", "one client at a time");
    card.shows("many clients", "100 clients at once were all answered; at 1,000: connection");
    card.shows("connect burst", "timed out after 500ms");
    assert_eq!(card.code, 0);
}

#[test]
fn a_small_listen_backlog_gets_warns_for_many_clients_and_the_burst() {
    let (_server, port) = serve_python("faulty/tcp_small_backlog.py");
    let card = check("--tcp", local(port));
    card.all_pass_except(&[
        ("encoding", "info"),
        ("many clients", "warn"),
        ("connect burst", "warn"),
        ("latency", "info"),
    ]);
    card.shows("many clients", "100 clients at once: connection");
    card.shows("connect burst", "timed out after 500ms, the");
    assert!(card.json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["advice"].as_str().unwrap().contains("backlog")));
    assert_eq!(card.code, 0);
}

#[test]
fn a_server_that_stays_open_after_a_half_close_gets_warns() {
    let (_server, port) = serve_python("faulty/tcp_never_closes.py");
    let card = check("--tcp", local(port));
    card.all_pass_except(&[
        ("empty connection", "warn"),
        ("encoding", "info"),
        ("half-close", "warn"),
        ("latency", "info"),
    ]);
    card.shows("half-close", "the whole reply came back, but the connection stayed open 500ms");
    assert_eq!(card.code, 0);
}

#[test]
fn a_lossy_udp_server_gets_a_warn_with_the_loss_before_and_after_retries() {
    let (_server, port) = serve_python("faulty/udp_lossy.py");
    let card = check("--udp", local(port));
    card.all_pass_except(&[("latency", "info"), ("loss", "warn"), ("encoding", "info")]);
    card.shows("loss", "25.0% unanswered at the first try, 0.0% after up to 3 retries");
    assert_eq!(card.code, 0);
}

#[test]
fn silent_and_closing_servers_fail_the_round_trip_and_skip_the_rest() {
    for script in ["faulty/tcp_silent.py", "faulty/tcp_closes.py"] {
        let (_server, port) = serve_python(script);
        let card = check("--tcp", local(port));
        assert_eq!(card.status("lecture client"), "fail", "{script}");
        for (name, status) in &card.rows {
            if name != "lecture client" {
                assert_eq!(status, "skip", "{script}: {name}");
            }
        }
        assert_eq!(card.code, 1, "{script}");
        assert!(card.took < Duration::from_secs(5), "{script}: {:?}", card.took);
    }
}

#[test]
fn a_silent_udp_server_fails_the_round_trip_and_skips_the_rest() {
    let (_server, port) = serve_python("faulty/udp_silent.py");
    let card = check("--udp", local(port));
    assert_eq!(card.status("lecture client"), "fail");
    let others = card.rows.iter().filter(|(name, _)| *name != "lecture client");
    assert!(others.clone().all(|(_, status)| status == "skip"), "{:#}", card.json);
    assert_eq!(card.code, 1);
    assert!(card.took < Duration::from_secs(5), "{:?}", card.took);
}

#[test]
fn a_server_that_hangs_midway_gets_a_finished_card_at_once() {
    let (_server, port) = serve_python("faulty/tcp_hangs.py");
    let card = check("--tcp", local(port));
    assert_eq!(card.status("lecture client"), "pass");
    let rows = card.json["rows"].as_array().unwrap();
    let hung = rows.iter().position(|r| r["status"] == "fail").expect("a failed row");
    let evidence = rows[hung]["evidence"].as_str().unwrap();
    assert!(evidence.contains("then the server stopped answering"), "{:#}", card.json);
    assert!(rows[..hung].iter().all(|r| r["status"] != "skip"), "{:#}", card.json);
    assert!(rows[hung + 1..].iter().all(|r| r["status"] == "skip"), "{:#}", card.json);
    assert_eq!(card.code, 1);
    assert!(card.took < Duration::from_secs(10), "{:?}", card.took);
}

#[test]
fn a_slow_server_runs_out_of_budget_and_the_rest_is_skipped() {
    // Every reply waits 0.2 s, so 3 s is not enough for every probe.
    let (_server, port) = serve_python("faulty/tcp_slow.py");
    let card = check_with("--tcp", local(port), &["--budget", "3s"]);
    assert!(card.took < Duration::from_millis(4500), "{:?}", card.took);
    assert_eq!(card.status("lecture client"), "pass");
    assert!(card.rows.values().all(|status| status != "fail" && status != "warn"), "{:#}", card.json);
    card.shows("latency", "the 3s budget ran out");
    assert_eq!(card.json["verdict"], "INCOMPLETE", "{:#}", card.json);
    assert_eq!(card.json["problem"], "the 3s budget ran out");
    assert_eq!(card.code, 3);
}

#[test]
fn the_encoding_row_tells_which_encoding_upcase_serve_assumes() {
    let cases = [
        ("latin1", "warn", "server appears to assume windows-1252"),
        ("ascii", "warn", "server appears to assume ASCII only (bytes above 0x7F unchanged)"),
        ("shift_jis", "warn", "server appears to assume Shift_JIS"),
        ("koi8-r", "warn", "server appears to assume KOI8-R"),
    ];
    for (encoding, status, evidence) in cases {
        let server = serve_upcase(&["--udp", "--encoding", encoding]);
        let card = check("--udp", server.udp());
        assert_eq!(card.status("encoding"), status, "{encoding}: {:#}", card.json);
        card.shows("encoding", evidence);
    }
    // Over TCP the samples are read until a known reply is complete, not until a timeout.
    let server = serve_upcase(&["--tcp", "--encoding", "shift_jis"]);
    let card = check("--tcp", server.tcp());
    card.shows("encoding", "server appears to assume Shift_JIS");
}

#[test]
fn check_in_latin1_passes_a_latin1_server_and_fails_a_utf8_one() {
    let latin1 = serve_upcase(&["--encoding", "latin1"]);
    let card = check_with("--tcp", latin1.tcp(), &["--encoding", "latin1"]);
    card.all_pass_except(&[("split character", "skip"), ("encoding", "info"), ("latency", "info")]);
    card.shows("unicode", "written in windows-1252 came back as windows-1252 uppercases it");
    card.shows("split character", "windows-1252 has no multibyte letter");
    assert_eq!(card.json["encoding"], "windows-1252");
    assert_eq!(card.code, 0);
    let card = check_with("--udp", latin1.udp(), &["--encoding", "latin1"]);
    card.all_pass_except(&[("encoding", "info"), ("latency", "info")]);
    assert_eq!(card.code, 0);

    let utf8 = serve_upcase(&["--tcp"]);
    let card = check_with("--tcp", utf8.tcp(), &["--encoding", "latin1"]);
    card.all_pass_except(&[
        ("unicode", "fail"),
        ("split character", "skip"),
        ("invalid utf-8", "fail"),
        ("encoding", "info"),
        ("latency", "info"),
    ]);
    card.shows("unicode", "came back with only a-z uppercased, as \"HELLO STRAßE ÿ CAFé");
    card.shows("unicode", "the server does not read windows-1252");
    card.shows("invalid utf-8", r#"wrong reply: "ABC\xff\xfe DEF", not "ABC\x9f\xde DEF""#);
    assert_eq!(card.code, 1);
}

#[test]
fn check_takes_the_encoding_labels_send_takes() {
    let mut command = upcase();
    command.args(["check", "--encoding", "klingon", "--to", "127.0.0.1:9"]);
    let output = run("upcase check", command, b"", Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(2), "{}", output.stderr);
    assert!(output.stderr.contains("unknown or unsupported encoding \"klingon\""), "{}", output.stderr);
}

#[test]
fn a_thousand_clients_are_not_tried_beyond_the_open_file_limit() {
    let server = serve_upcase(&["--tcp"]);
    // A shell lowers the limit (soft and hard) for the check alone.
    let mut command = Command::new("sh");
    command.args(["-c", "ulimit -n 600 && exec \"$0\" check \"$@\"", env!("CARGO_BIN_EXE_upcase")]);
    let card = run_check(command, "--tcp", server.tcp(), &[]);
    card.all_pass_except(&[("many clients", "info"), ("encoding", "info"), ("latency", "info")]);
    card.shows("many clients", "100 clients at once were all answered; 1,000 not tested");
    card.shows("many clients", "may open only 600 files");
    assert_eq!(card.code, 0);
}

#[test]
fn nothing_listening_exits_2_with_one_line_and_a_card() {
    let mut command = upcase();
    command.args(["check", "--to", &format!("127.0.0.1:{}", unused_port())]);
    let output = run("upcase check", command, b"", Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(output.stderr.trim().lines().count(), 1, "{}", output.stderr);
    assert!(output.stderr.contains("connection refused"), "{}", output.stderr);
    let card = output.text();
    assert!(card.contains("lecture client    fail  cannot connect to tcp 127.0.0.1:"), "{card}");
    assert!(card.contains("CANNOT_RUN: 0 passed, 0 warned, 1 failed, 18 skipped"), "{card}");
}
