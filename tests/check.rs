//! `upcase check` graded against servers whose faults are known: the lecture's own Python servers,
//! small faulty servers (tests/peers/faulty/), and `upcase serve` in every model, which must get
//! a clean card. Each row is asserted through `--json`; every run is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use support::*;

/// A card as the test sees it: exit code, and each row's status by name.
struct Card {
    code: i32,
    rows: BTreeMap<String, String>,
    json: serde_json::Value,
}

impl Card {
    fn status(&self, name: &str) -> &str {
        self.rows.get(name).unwrap_or_else(|| panic!("no row {name:?} in {:#}", self.json))
    }

    /// Every row not named in `except` passed.
    fn all_pass_except(&self, except: &[(&str, &str)]) {
        for (name, status) in &self.rows {
            let want = except.iter().find(|(n, _)| n == name).map_or("pass", |(_, s)| *s);
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
}

fn check(transport: &str, addr: SocketAddr) -> Card {
    let mut command = upcase();
    let to = addr.to_string();
    command.args(["check", transport, "--to", &to, "--json", "--timeout", "500ms"]);
    let output = run("upcase check", command, b"", Duration::from_secs(30));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}; stderr: {}", output.text(), output.stderr));
    let rows = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r["status"].as_str().unwrap().to_owned()))
        .collect();
    Card { code: output.status.code().unwrap(), rows, json }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn upcase_serve_gets_a_clean_card_in_every_model() {
    for model in ["async", "threaded", "iterative"] {
        let server = serve_upcase(&["--model", model]);
        let card = check("--tcp", server.tcp());
        let flagged: &[(&str, &str)] = if model == "iterative" {
            &[("concurrency", "warn"), ("latency", "info")]
        } else {
            &[("latency", "info")]
        };
        card.all_pass_except(flagged);
        assert_eq!(card.code, 0, "{model}");
        let card = check("--udp", server.udp());
        card.all_pass_except(&[("latency", "info")]);
        assert_eq!(card.code, 0, "{model} udp");
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
        ("invalid utf-8", "skip"),
        ("concurrency", "skip"),
        ("slow client", "skip"),
        ("many clients", "skip"),
        ("persistent", "skip"),
        ("latency", "skip"),
    ]);
    assert!(card.evidence("size 1,025").starts_with("cut at 1,024 bytes"));
    assert!(card.evidence("split character").contains("died"));
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
    ]);
    assert!(card.evidence("size 30,000").starts_with("cut at 2,048 bytes"));
    assert_eq!(card.code, 1);
}

#[test]
fn a_udp_server_that_dies_on_invalid_utf8_fails_that_row_only() {
    let (_server, port) = serve_python("faulty/udp_dies_on_invalid.py");
    let card = check("--udp", local(port));
    card.all_pass_except(&[("source port 7", "warn"), ("latency", "info"), ("invalid utf-8", "fail")]);
    assert!(card.evidence("invalid utf-8").contains("died"));
    assert_eq!(card.code, 1);
}

#[test]
fn an_ascii_only_server_gets_a_warn() {
    let (_server, port) = serve_python("faulty/tcp_ascii_only.py");
    let card = check("--tcp", local(port));
    card.all_pass_except(&[("unicode", "warn"), ("split character", "warn"), ("latency", "info")]);
    assert!(card.evidence("unicode").contains("uppercases ASCII only"));
    assert_eq!(card.code, 0);
}

#[test]
fn an_iterative_server_is_flagged_as_such() {
    let (_server, port) = serve_python("faulty/tcp_iterative.py");
    let card = check("--tcp", local(port));
    card.all_pass_except(&[("concurrency", "warn"), ("latency", "info")]);
    assert!(card.evidence("concurrency").contains("one client at a time"));
    assert_eq!(card.code, 0);
}

#[test]
fn silent_and_closing_servers_fail_the_round_trip_and_skip_the_rest() {
    for script in ["faulty/tcp_silent.py", "faulty/tcp_closes.py"] {
        let (_server, port) = serve_python(script);
        let card = check("--tcp", local(port));
        assert_eq!(card.status("round trip"), "fail", "{script}");
        for (name, status) in &card.rows {
            if name != "round trip" {
                assert_eq!(status, "skip", "{script}: {name}");
            }
        }
        assert_eq!(card.code, 1, "{script}");
    }
}

#[test]
fn a_silent_udp_server_fails_the_round_trip_and_skips_the_rest() {
    let (_server, port) = serve_python("faulty/udp_silent.py");
    let card = check("--udp", local(port));
    assert_eq!(card.status("round trip"), "fail");
    assert!(card.rows.iter().filter(|(name, _)| *name != "round trip").all(|(_, status)| status == "skip"));
    assert_eq!(card.code, 1);
}

#[test]
fn nothing_listening_exits_2_with_one_line() {
    // Bind and drop to find a port that is (very likely) free.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut command = upcase();
    command.args(["check", "--to", &format!("127.0.0.1:{port}")]);
    let output = run("upcase check", command, b"", Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(output.stderr.trim().lines().count(), 1, "{}", output.stderr);
    assert!(output.stdout.is_empty());
}
