//! The card against servers with the classic flaws of students' servers (tests/peers/faulty/):
//! each gets exactly its rows, its evidence in words a student can act on, and criteria that
//! charge each flaw once. Every check is bounded (a 500 ms timeout, a 30 s budget, a 40 s
//! bound on the child).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

mod support;

use std::net::SocketAddr;

use support::card::{check, statuses, TCP_ROWS, UDP_ROWS};
use support::serve_python;

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn a_tcp_server_that_sends_its_whole_buffer_is_told_so_once() {
    let (_server, port) = serve_python("faulty/tcp_whole_buffer.py");
    let card = check("--tcp", local(port), &[]);
    card.rows_are(&statuses(
        &TCP_ROWS,
        "fail",
        &[
            ("encoding", "info"),
            ("concurrency", "pass"),
            ("persistent", "info"),
            ("many clients", "pass"),
            ("connect burst", "pass"),
            ("latency", "info"),
        ],
    ));
    assert_eq!(
        card.evidence("lecture client"),
        "the reply is followed by 1,012 NUL bytes: the server sent its whole 1,024-byte buffer instead of \
         the 12 bytes it received"
    );
    assert!(card.advice("lecture client").starts_with(
        "Send only the bytes received: C send(fd, buf, n, 0) with the n that recv returned, not sizeof buf; \
         Java new String(buf, 0, n, UTF_8) with the n that read returned, not new String(buf)"
    ));
    card.shows("size 1,000", "followed by 24 NUL bytes: the server sent its whole 1,024-byte buffer");
    card.shows("empty connection", "followed by 1,024 NUL bytes");
    assert_eq!(
        card.evidence("size 1,025"),
        "cut at 1,024 bytes: the server reads once, with a 1,024-byte buffer"
    );
    card.shows("slow client", "cut at 1 byte: the server answered what its first read returned");
    // Padding is charged to the lecture's client whatever row saw it; the cut to the whole message.
    for row in ["half-close", "size 1,000", "unicode", "empty connection", "invalid utf-8"] {
        assert_eq!(card.charged(row), "lecture_client", "{row}");
    }
    assert_eq!(card.charged("size 10,000"), "whole_message");
    card.criteria_are(&[
        ("lecture_client", "fail"),
        ("whole_message", "fail"),
        ("unicode", "pass"),
        ("bad_input", "pass"),
        ("many_clients", "pass"),
        ("clean_close", "pass"),
    ]);
    assert!(!card.stdout.contains(&0), "a NUL byte on the card");
    assert!(!String::from_utf8_lossy(&card.stdout).contains("\\u0000"), "a NUL byte in the evidence");
    assert_eq!(card.code, 1);
}

#[test]
fn a_udp_server_that_sends_its_whole_buffer_is_told_so_with_the_java_fix() {
    let (_server, port) = serve_python("faulty/udp_whole_buffer.py");
    let card = check("--udp", local(port), &[]);
    card.rows_are(&statuses(
        &UDP_ROWS,
        "fail",
        &[
            ("reply source", "pass"),
            ("source port 7", "pass"),
            ("latency", "info"),
            ("loss", "pass"),
            ("encoding", "info"),
        ],
    ));
    assert_eq!(
        card.evidence("lecture client"),
        "the reply is followed by 2,036 NUL bytes: the server sent its whole 2,048-byte buffer instead of \
         the 12 bytes it received"
    );
    card.shows(
        "unicode",
        "followed by 1,994 NUL bytes: the server sent its whole 2,048-byte buffer instead of the 54 bytes",
    );
    card.shows("empty message", "followed by 2,048 NUL bytes");
    assert!(card
        .evidence("size 30,000")
        .starts_with("cut at 2,048 bytes: the server receives into a 2,048-byte buffer"));
    assert!(card.advice("lecture client").contains("not new String(packet.getData())"));
    card.criteria_are(&[
        ("lecture_client", "fail"),
        ("whole_message", "fail"),
        ("unicode", "pass"),
        ("bad_input", "pass"),
        ("many_clients", "pass"),
    ]);
    assert_eq!(card.json["score"], 50.0);
    assert_eq!(card.code, 1);
}

#[test]
fn stale_bytes_of_earlier_messages_are_shown_with_the_buffer_they_filled() {
    let (_server, port) = serve_python("faulty/udp_stale_buffer.py");
    let card = check("--udp", local(port), &[]);
    card.rows_are(&statuses(
        &UDP_ROWS,
        "pass",
        &[
            ("size 2,049", "fail"),
            ("size 10,000", "fail"),
            ("size 30,000", "fail"),
            ("shorter message", "fail"),
            ("unicode", "fail"),
            ("two lines", "fail"),
            ("empty message", "fail"),
            ("latency", "info"),
            ("invalid utf-8", "fail"),
            ("encoding", "info"),
        ],
    ));
    let stale = card.evidence("shorter message");
    assert!(
        stale.starts_with(
            "\"hello, world\" right after a 1,000-byte datagram: the reply is followed by 2,036 bytes left from \
             earlier, longer messages (\"own fox jumps over the lazy dog the quic\"… (2,036 bytes)): the server \
             reuses its buffer and sends more than the 12 bytes it received"
        ),
        "{stale}"
    );
    assert!(stale.ends_with("a longer message filled its 2,048-byte buffer"), "{stale}");
    assert!(card.advice("shorter message").contains("not strlen(buf) of a buffer never cleared"));
    card.shows("invalid utf-8", "left from earlier, longer messages");
    card.criteria_are(&[
        ("lecture_client", "fail"),
        ("whole_message", "fail"),
        ("unicode", "pass"),
        ("bad_input", "pass"),
        ("many_clients", "pass"),
    ]);
    assert_eq!(card.code, 1);
}

#[test]
fn the_last_byte_left_lowercase_costs_the_lecture_client_alone() {
    let (_server, port) = serve_python("faulty/udp_last_byte.py");
    let card = check("--udp", local(port), &[]);
    let sizes = ["size 1,000", "size 1,025", "size 2,049", "size 10,000", "size 30,000"];
    let mut wrong: Vec<(&str, &str)> = sizes.iter().map(|size| (*size, "fail")).collect();
    wrong.extend([
        ("lecture client", "fail"),
        ("shorter message", "fail"),
        ("unicode", "fail"),
        ("latency", "info"),
        ("invalid utf-8", "fail"),
        ("encoding", "info"),
    ]);
    card.rows_are(&statuses(&UDP_ROWS, "pass", &wrong));
    assert_eq!(card.evidence("lecture client"), "the last byte was not uppercased: got \"HELLO, WORLd\"");
    assert!(card.advice("lecture client").starts_with("Uppercase every byte received: a loop to n - 1"));
    card.criteria_are(&[
        ("lecture_client", "fail"),
        ("whole_message", "pass"),
        ("unicode", "pass"),
        ("bad_input", "pass"),
        ("many_clients", "pass"),
    ]);
    assert_eq!((card.json["score"].as_f64(), card.json["max_score"].as_f64()), (Some(70.0), Some(100.0)));
    assert_eq!(card.code, 1);
}

#[test]
fn a_server_that_reads_one_line_fails_the_lecture_client_and_answers_the_first_line() {
    let (_server, port) = serve_python("faulty/tcp_first_line.py");
    let card = check("--tcp", local(port), &[]);
    card.rows_are(&statuses(
        &TCP_ROWS,
        "pass",
        &[
            ("lecture client", "fail"),
            ("two lines", "fail"),
            ("encoding", "info"),
            ("persistent", "info"),
            ("latency", "info"),
        ],
    ));
    assert_eq!(
        card.evidence("lecture client"),
        "sent \"hello, world\" and waited, without a half-close: no reply, then nothing for 500ms"
    );
    assert!(card.advice("lecture client").contains("without a newline"));
    assert_eq!(card.evidence("two lines"), "only the first line came back: got \"FIRST LINE\\n\"");
    assert!(card.advice("two lines").contains("not readLine()"));
    card.criteria_are(&[
        ("lecture_client", "fail"),
        ("whole_message", "fail"),
        ("unicode", "pass"),
        ("bad_input", "pass"),
        ("many_clients", "pass"),
        ("clean_close", "pass"),
    ]);
}

#[test]
fn a_server_that_dies_on_an_empty_connection_is_caught_on_that_row() {
    let (mut server, port) = serve_python("faulty/tcp_dies_on_empty.py");
    let card = check("--tcp", local(port), &[]);
    let died = TCP_ROWS.iter().position(|name| *name == "empty connection").unwrap();
    let (before, after) = TCP_ROWS.split_at(died);
    let mut expected = statuses(before, "pass", &[]);
    expected.push(("empty connection", "fail"));
    expected.extend(statuses(&after[1..], "skip", &[]));
    card.rows_are(&expected);
    card.shows(
        "empty connection",
        "got a clean close; then the server stopped answering: a new connection was refused",
    );
    assert!(card.advice("empty connection").contains("readLine() returns null"));
    assert_eq!(card.evidence("latency"), "not run: the server stopped answering after \"empty connection\"");
    card.criteria_are(&[
        ("lecture_client", "pass"),
        ("whole_message", "pass"),
        ("unicode", "pass"),
        ("bad_input", "fail"),
        ("many_clients", "untested"),
        ("clean_close", "pass"),
    ]);
    assert!(server.wait_exit(support::PATIENCE).code() != Some(0));
    assert!(server.stderr().contains("IndexError"), "{}", server.stderr());
}

#[test]
fn a_server_that_accepts_once_answers_the_lecture_client_then_stops() {
    let (_server, port) = serve_python("faulty/tcp_accept_once.py");
    let card = check("--tcp", local(port), &[]);
    card.rows_are(&statuses(&TCP_ROWS, "skip", &[("lecture client", "fail")]));
    card.shows(
        "lecture client",
        "sent \"hello, world\", read once: \"HELLO, WORLD\"; then the server stopped answering",
    );
    assert!(card
        .advice("lecture client")
        .starts_with("Keep serving after a client leaves: accept connections in a loop"));
    assert_eq!(card.json["verdict"], "FAIL");
    assert_eq!(card.json["score"], 0.0);
}

#[test]
fn a_udp_server_that_answers_one_datagram_is_not_called_absent() {
    let (_server, port) = serve_python("faulty/udp_one_datagram.py");
    let card = check("--udp", local(port), &[]);
    card.rows_are(&statuses(&UDP_ROWS, "skip", &[("lecture client", "fail")]));
    assert_eq!(
        card.evidence("lecture client"),
        "sent \"hello, world\": \"HELLO, WORLD\" came back; then the server stopped answering: a datagram was \
         refused (port unreachable): the server exited, or closed its socket"
    );
    assert!(card.advice("lecture client").starts_with("Keep serving after a datagram is answered"));
    assert_eq!(card.code, 1);
}

#[test]
fn the_lectures_threaded_server_is_told_to_read_until_the_half_close_when_a_slow_client_breaks_its_pipe() {
    let (_server, port) = serve_python("tcp_server_threaded.py");
    let card = check("--tcp", local(port), &[]);
    card.rows_are(&statuses(
        &TCP_ROWS,
        "pass",
        &[
            ("size 1,025", "fail"),
            ("size 2,049", "fail"),
            ("size 10,000", "fail"),
            ("split character", "fail"),
            ("slow client", "fail"),
            ("invalid utf-8", "warn"),
            ("encoding", "info"),
            ("persistent", "info"),
            ("latency", "info"),
        ],
    ));
    card.shows(
        "slow client",
        "sent one byte every 10 ms: the server answered \"H\" and closed the connection",
    );
    card.shows("slow client", "it reads once");
    assert!(card
        .advice("slow client")
        .starts_with("Read until the client half-closes (recv returns 0), not once"));
    assert!(!card.advice("slow client").contains("accepting"));
    card.shows("split character", "ß cut across two segments: got \"\"");
    card.criteria_are(&[
        ("lecture_client", "pass"),
        ("whole_message", "fail"),
        ("unicode", "fail"),
        ("bad_input", "warn"),
        ("many_clients", "pass"),
        ("clean_close", "pass"),
    ]);
}

#[test]
fn a_server_that_never_closes_loses_the_clean_close_once() {
    let (_server, port) = serve_python("faulty/tcp_never_closes.py");
    let card = check("--tcp", local(port), &[]);
    assert_eq!(card.status("half-close"), "warn");
    assert_eq!(card.status("empty connection"), "warn");
    assert_eq!(card.charged("empty connection"), "clean_close");
    card.criteria_are(&[
        ("lecture_client", "pass"),
        ("whole_message", "pass"),
        ("unicode", "pass"),
        ("bad_input", "pass"),
        ("many_clients", "pass"),
        ("clean_close", "warn"),
    ]);
    assert_eq!(card.points("clean_close"), 5.0);
    assert_eq!(card.json["verdict"], "PASS_WITH_WARNINGS");
    assert_eq!(card.code, 0);
}
