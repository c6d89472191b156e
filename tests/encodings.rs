//! Encodings over real sockets: every listed encoding round-trips over UDP and TCP (a multibyte
//! character split across TCP writes included), unwritable uppercase stays as it was, and a
//! client and server that disagree show the mangling the lecture warns about.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use support::*;
use upcase::server::Config;
use upcase::transform::{encode_text, Encoding};

/// Lowercase text in each encoding's repertoire, and its uppercase there.
const SAMPLES: &[(&str, &str, &str)] = &[
    ("utf-8", "straße ﬁne привет", "STRASSE FINE ПРИВЕТ"),
    ("latin1", "straße, café, ÿ, µ", "STRASSE, CAFÉ, Ÿ, µ"),
    ("iso-8859-2", "zażółć gęślą jaźń", "ZAŻÓŁĆ GĘŚLĄ JAŹŃ"),
    ("iso-8859-5", "привет, мир", "ПРИВЕТ, МИР"),
    ("koi8-r", "привет, мир", "ПРИВЕТ, МИР"),
    ("shift_jis", "こんにちは abc ｆｕｌｌ", "こんにちは ABC ＦＵＬＬ"),
    ("euc-kr", "안녕 abc αβγ", "안녕 ABC ΑΒΓ"),
    ("gbk", "你好 abc αβ", "你好 ABC ΑΒ"),
    ("utf-16le", "straße 😀", "STRASSE 😀"),
    ("utf-16be", "straße 😀", "STRASSE 😀"),
];

fn server_in(encoding: Encoding) -> TestServer {
    TestServer::start(Config { encoding, ..Config::default() })
}

#[test]
fn every_encoding_round_trips_over_udp_and_tcp() {
    for (label, lower, upper) in SAMPLES {
        let encoding: Encoding = label.parse().unwrap();
        let server = server_in(encoding);
        let request = encode_text(lower, encoding).unwrap();
        let expected = encode_text(upper, encoding).unwrap();
        assert_eq!(udp_reply(server.addr, &request), expected, "{label} over UDP");
        assert_eq!(tcp_reply(server.addr, &request), expected, "{label} over TCP");
    }
}

/// Each multibyte sample is written in two pieces cut inside a character, with a pause between,
/// so the server really reads them separately.
#[test]
fn characters_split_across_tcp_writes() {
    for (label, lower, upper) in SAMPLES.iter().filter(|(l, ..)| !matches!(*l, "latin1" | "iso-8859-2")) {
        let encoding: Encoding = label.parse().unwrap();
        let server = server_in(encoding);
        let request = encode_text(lower, encoding).unwrap();
        let expected = encode_text(upper, encoding).unwrap();
        let first_multibyte = request.iter().position(|b| !b.is_ascii()).unwrap_or(0);
        let cut = (first_multibyte + 1).min(request.len());
        let reply = tcp_reply_written_in_two(server.addr, &request, cut);
        assert_eq!(reply, expected, "{label} cut at byte {cut}");
    }
}

/// The lecture's warning, shown: a latin-1 client and a UTF-8 server do not agree on ß.
#[test]
fn mismatched_sides_show_the_mangling() {
    let server = serve_upcase(&[]);
    let to = server.tcp().to_string();
    let agree = upcase_send(&["--to", &to, "straße"], b"");
    assert_eq!(agree.assert_success("send").text(), "STRASSE\n");
    let disagree = upcase_send(&["--encoding", "latin1", "--to", &to, "straße"], b"");
    assert_eq!(disagree.assert_success("send --encoding latin1").text(), "STRAßE\n", "ß not uppercased");

    let latin1_server = serve_upcase(&["--encoding", "latin1"]);
    let to = latin1_server.tcp().to_string();
    let agree = upcase_send(&["--encoding", "latin1", "--to", &to, "straße µ"], b"");
    assert_eq!(agree.assert_success("send").text(), "STRASSE µ\n", "µ has no uppercase in latin1");
    let disagree = upcase_send(&["--to", &to, "café"], b"");
    assert_eq!(disagree.assert_success("send").text(), "CAFé\n", "é's two UTF-8 bytes read as Ã©");
}

#[test]
fn send_says_what_the_encoding_cannot_write() {
    let out = upcase_send(&["--encoding", "koi8-r", "--to", "127.0.0.1:9", "😀"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("koi8-r") || out.stderr.contains("KOI8-R"), "{}", out.stderr);
    assert!(out.stderr.contains("cannot write"), "{}", out.stderr);
    let out = upcase_send(&["--encoding", "ebcdic", "x"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
}
