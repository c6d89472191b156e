//! `--log-format json`: every line the real `upcase serve` writes on stderr is one JSON object,
//! and the values an operator's tools need are fields of their own, not only words in a message:
//! the listening addresses, each connection's 4-tuple, the counters at exit.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::process::Command;

use serde_json::Value;
use support::{start_server, tcp_reply_and_error, upcase, PATIENCE, SENTENCE, SHOUTED};

/// Must hold: with `RUST_LOG=debug`, a run with one TCP exchange and SIGTERM logs only JSON
/// objects, one a line, each with a timestamp, a level and a message; the connection's lines
/// carry the client and server addresses as the client saw them; `ready` lists the sockets; and
/// `stopped` carries every counter as a number.
#[test]
fn json_logs_are_one_object_a_line_with_structured_fields() {
    let mut command = upcase();
    command.env("RUST_LOG", "debug").args([
        "--log-format",
        "json",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--tcp",
    ]);
    let (mut guard, addr) = start_server("upcase serve --log-format json", command, |line| {
        line.strip_prefix("listening on tcp ")?.trim().parse::<std::net::SocketAddr>().ok()
    });
    let stream = std::net::TcpStream::connect_timeout(&addr, PATIENCE).unwrap();
    let client = stream.local_addr().unwrap();
    drop(stream);
    let (reply, error) = tcp_reply_and_error(addr, SENTENCE.as_bytes());
    assert!(error.is_none());
    assert_eq!(reply, SHOUTED.as_bytes());

    let status = Command::new("kill").args(["-TERM", &guard.pid().to_string()]).status().unwrap();
    assert!(status.success());
    assert_eq!(guard.wait_exit(PATIENCE).code(), Some(0));
    // The exit closes stderr; the reader thread has it all a moment later.
    let deadline = std::time::Instant::now() + PATIENCE;
    while !guard.stderr().contains("\"stopped\"") {
        assert!(std::time::Instant::now() < deadline, "no stopped line:\n{}", guard.stderr());
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    let lines: Vec<Value> = guard
        .stderr()
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON object ({e}): {line:?}"))
        })
        .collect();
    for line in &lines {
        assert!(line.is_object(), "{line}");
        for key in ["timestamp", "level", "message"] {
            assert!(line.get(key).is_some_and(Value::is_string), "no {key}: {line}");
        }
    }
    let find = |message: &str| -> Vec<&Value> { lines.iter().filter(|l| l["message"] == message).collect() };

    let ready = find("ready");
    assert_eq!(ready.len(), 1);
    assert!(ready[0]["listening"].as_str().unwrap().contains(&format!("tcp {addr}")), "{}", ready[0]);

    let opened = find("connection opened");
    assert_eq!(opened.len(), 2, "two connections");
    // Workers log their own connections: the two lines may come in either order.
    let first = opened.iter().find(|o| o["client"] == client.to_string()).expect("the first client's line");
    assert_eq!(first["server"], addr.to_string());
    assert!(first["connection"].is_u64());
    let closed = find("connection closed");
    assert_eq!(closed.len(), 2);
    assert!(closed.iter().any(|c| c["received"] == SENTENCE.len() as u64), "{closed:?}");

    let stopped = find("stopped");
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0]["tcp_accepted"], 2);
    assert_eq!(stopped[0]["tcp_bytes_in"], SENTENCE.len() as u64);
    assert_eq!(stopped[0]["tcp_bytes_out"], SHOUTED.len() as u64);
    assert_eq!(stopped[0]["udp_requests"], 0, "every counter is a field, zero or not");
}
