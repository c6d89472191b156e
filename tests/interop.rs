//! The lecture's Python programs (`tests/peers/`) and upcase, in both directions: each Python
//! client against `upcase serve` in every concurrency model, and `upcase send` against each
//! Python server, byte for byte. Also the documented difference: the Python servers read once
//! and cut a long message, upcase does not.
//!
//! These tests need `python3` on PATH and fail, saying so, without it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

mod support;

use support::*;
use upcase::server::Model;

/// Runs a Python client of `tests/peers/` against `port`, typing `sentence` and Enter.
fn run_python_client(script: &str, port: u16, sentence: &str) -> Output {
    let mut command = python3();
    command.arg(peer(script)).arg(port.to_string());
    run(script, command, format!("{sentence}\n").as_bytes(), PATIENCE)
}

// ---- Python clients against upcase serve, in each model ----

for_each_model!(python_udp_client, python_tcp_client);

fn python_udp_client(model: Model) {
    let server = serve_upcase_model(model, &["--udp"]);
    let output = run_python_client("udp_client.py", server.udp().port(), SENTENCE);
    output.assert_success("udp_client.py");
    assert_eq!(output.text(), format!("{PROMPT}{SHOUTED}\n"));
}

fn python_tcp_client(model: Model) {
    let server = serve_upcase_model(model, &["--tcp"]);
    let output = run_python_client("tcp_client.py", server.tcp().port(), SENTENCE);
    output.assert_success("tcp_client.py");
    // print('From Server: ', reply) separates its arguments with a space.
    assert_eq!(output.text(), format!("{PROMPT}From Server:  {SHOUTED}\n"));
}

// ---- upcase send against the Python servers ----

fn to(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

#[test]
fn upcase_send_udp_against_python_udp_server() {
    let (_server, port) = serve_python("udp_server.py");
    let output = upcase_send(&["--udp", "--to", &to(port), SENTENCE], b"");
    output.assert_success("upcase send --udp");
    assert_eq!(output.text(), format!("{SHOUTED}\n"));
}

#[test]
fn upcase_send_tcp_against_python_tcp_server() {
    assert_two_sends_answered("tcp_server.py");
}

#[test]
fn upcase_send_tcp_against_python_threaded_tcp_server() {
    assert_two_sends_answered("tcp_server_threaded.py");
}

/// Two `upcase send`s, one after the other, both answered by a Python TCP server: the first
/// one's close frees even the iterative server for the second.
fn assert_two_sends_answered(script: &str) {
    let (_server, port) = serve_python(script);
    for _ in 0..2 {
        let output = upcase_send(&["--to", &to(port), SENTENCE], b"");
        output.assert_success("upcase send");
        assert_eq!(output.text(), format!("{SHOUTED}\n"), "{script}");
    }
}

// ---- The documented difference: one read cuts a long message ----

/// 2,000 ASCII letters: longer than the Python TCP server's single 1,024-byte read. ASCII, so the
/// cut cannot split a character (which would make that server's `.decode` raise instead).
fn two_thousand_bytes() -> (Vec<u8>, Vec<u8>) {
    let message: Vec<u8> = (0..2_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let upper = message.to_ascii_uppercase();
    (message, upper)
}

#[test]
fn python_tcp_server_cuts_a_2000_byte_message_and_upcase_does_not() {
    let (message, upper) = two_thousand_bytes();

    for script in ["tcp_server.py", "tcp_server_threaded.py"] {
        let (_server, port) = serve_python(script);
        // It replies to the first 1,024 bytes and closes with the rest unread, which resets the
        // connection: the reset may follow the cut reply, so an error after it is expected.
        let (reply, _reset) = tcp_reply_and_error(to(port).parse().unwrap(), &message);
        assert_eq!(reply.len(), 1_024, "{script} must cut the reply at its single read");
        assert_eq!(reply, upper[..1_024]);
    }

    for model in Model::ALL {
        let server = serve_upcase_model(model, &["--tcp"]);
        let (reply, error) = tcp_reply_and_error(server.tcp(), &message);
        assert!(error.is_none(), "upcase serve --model {model}: {error:?}");
        assert_eq!(reply, upper, "upcase serve --model {model} must answer every byte");
    }
}

#[test]
fn python_udp_server_cuts_a_3000_byte_datagram_and_upcase_does_not() {
    let message: String = (0..3_000u32).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let upper = message.to_ascii_uppercase();

    let (_server, port) = serve_python("udp_server.py");
    let output = upcase_send(&["--udp", "--to", &to(port), &message], b"");
    output.assert_success("upcase send --udp");
    assert_eq!(output.text(), format!("{}\n", &upper[..2_048]), "recvfrom(2048) keeps the first 2,048 bytes");

    let server = serve_upcase(&["--udp"]);
    let output = upcase_send(&["--udp", "--to", &server.udp().to_string(), &message], b"");
    output.assert_success("upcase send --udp");
    assert_eq!(output.text(), format!("{upper}\n"));
}
