//! `--proxy-protocol` in every model, with headers from a test client: good ones (v1, v2, LOCAL,
//! cut in pieces, with the client's bytes after them in the same write) are served without a
//! byte of the header in the reply; bad ones (untrusted, missing, malformed, partial, slow,
//! oversized) close the connection with nothing sent back, each counted under its reason, while
//! other clients are served; and the per-source limit counts the client the header names.
//!
//! The real proxies (HAProxy, nginx) and what the logs and status page show are in
//! `tests/proxy_peers.rs`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::proxy::{exchange, v1, v2, v2_local, Answer};
use support::*;
use upcase::server::{Config, Model, ProxyProtocol};

for_each_model!(
    good_headers_are_served_without_a_byte_of_them,
    a_header_in_pieces_is_read_whole,
    bad_headers_close_the_connection_with_nothing_sent_back,
    a_slow_header_times_out_while_others_are_served,
    the_per_source_limit_counts_the_client_the_header_names,
);

/// A server behind a proxy on loopback: 127.0.0.1 trusted, header timeout `timeout`.
fn behind_proxy(model: Model, timeout: Duration, per_source: Option<usize>) -> TestServer {
    TestServer::start(Config {
        model,
        proxy_protocol: Some(ProxyProtocol {
            trusted: vec!["127.0.0.1/32".parse().unwrap()],
            header_timeout: timeout,
        }),
        max_connections_per_source: per_source,
        ..Config::default()
    })
}

fn client(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// Closed by the server with nothing sent back: the bytes of a bad header are never echoed.
fn assert_closed_unanswered(answer: &Answer, what: &str) {
    assert!(answer.bytes.is_empty(), "{what}: the server sent {:?}", String::from_utf8_lossy(&answer.bytes));
}

fn good_headers_are_served_without_a_byte_of_them(model: Model) {
    let server = behind_proxy(model, Duration::from_secs(5), None);
    let to = server.addr;
    let headers = [
        v1(client("198.51.100.7:40022"), to),
        v1(client("[2001:db8::7]:40022"), client("[2001:db8::1]:12000")),
        v2(client("10.1.2.3:5555"), to, 0),
        v2(client("[2001:db8::3]:7"), client("[2001:db8::1]:12000"), 200),
        v2_local(),
    ];
    for header in &headers {
        // The client's first bytes in the same write as the header, then more.
        let first = [header.as_slice(), SENTENCE.as_bytes()].concat();
        let answer = exchange(to, &[&first, b" and more"], Duration::from_millis(20));
        assert_eq!(answer.error, None);
        assert_eq!(String::from_utf8(answer.bytes).unwrap(), format!("{SHOUTED} AND MORE"), "{header:?}");
    }
    // A header with nothing after it, then the client's bytes on their own.
    let header = v2(client("10.1.2.3:5556"), to, 0);
    let answer = exchange(to, &[&header, b"later"], Duration::from_millis(50));
    assert_eq!(answer.bytes, b"LATER");
    // A header and an empty stream: an empty reply, cleanly.
    let answer = exchange(to, &[&header], Duration::ZERO);
    assert_eq!((answer.bytes.len(), answer.error), (0, None));
    let stats = server.stats_eventually("7 served", |s| s.tcp_open == 0 && s.tcp_accepted == 7);
    assert_eq!(
        stats.tcp_bytes_in as usize,
        5 * (SENTENCE.len() + 9) + 5,
        "header bytes are not request bytes"
    );
    let rejected = stats.tcp_proxy_untrusted
        + stats.tcp_proxy_missing
        + stats.tcp_proxy_malformed
        + stats.tcp_proxy_incomplete
        + stats.tcp_proxy_timeout;
    assert_eq!(rejected, 0, "{stats:?}");
}

fn a_header_in_pieces_is_read_whole(model: Model) {
    let server = behind_proxy(model, Duration::from_secs(5), None);
    for header in
        [v1(client("198.51.100.7:40022"), server.addr), v2(client("10.1.2.3:5555"), server.addr, 40)]
    {
        // Cut inside the signature, inside the length, and with the client's bytes in the last.
        let (a, rest) = header.split_at(3);
        let (b, c) = rest.split_at(12);
        let last = [c, b"pieces"].concat();
        let answer = exchange(server.addr, &[a, b, &last], Duration::from_millis(30));
        assert_eq!(answer.bytes, b"PIECES", "{header:?}");
    }
}

fn bad_headers_close_the_connection_with_nothing_sent_back(model: Model) {
    let server = behind_proxy(model, Duration::from_secs(5), None);
    let to = server.addr;
    let oversized = v2(client("10.1.2.3:5555"), to, 2_000);
    let mut bad_version = v2(client("10.1.2.3:5555"), to, 0);
    bad_version[12] = 0x11;
    let endless_v1 = [&b"PROXY UNKNOWN "[..], &[b'x'; 300]].concat();
    let good = v2(client("10.1.2.3:5555"), to, 40);
    type Counter = fn(&upcase::server::Snapshot) -> u64;
    let cases: [(&str, Vec<&[u8]>, Counter); 7] = [
        ("missing", vec![b"hello, world\n"], |s| s.tcp_proxy_missing),
        ("missing: HTTP", vec![b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"], |s| s.tcp_proxy_missing),
        ("malformed v1", vec![b"PROXY TCP4 300.0.0.1 1.2.3.4 1 2\r\nhello"], |s| s.tcp_proxy_malformed),
        ("malformed v2", vec![&bad_version, b"hello"], |s| s.tcp_proxy_malformed),
        ("oversized v2", vec![&oversized], |s| s.tcp_proxy_malformed),
        ("endless v1", vec![&endless_v1], |s| s.tcp_proxy_malformed),
        ("partial", vec![&good[..20]], |s| s.tcp_proxy_incomplete),
    ];
    for (what, pieces, counter) in cases {
        let answer = exchange(to, &pieces, Duration::ZERO);
        assert_closed_unanswered(&answer, what);
        server.stats_eventually(what, |s| counter(s) >= 1);
    }
    // Connecting and closing at once (a balancer's bare TCP check) is an incomplete header.
    drop(TcpStream::connect(to).unwrap());
    let stats = server.stats_eventually("all counted", |s| s.tcp_proxy_incomplete == 2 && s.tcp_open == 0);
    assert_eq!((stats.tcp_proxy_missing, stats.tcp_proxy_malformed), (2, 4), "{stats:?}");
    assert_eq!((stats.tcp_bytes_in, stats.tcp_bytes_out), (0, 0), "nothing served");

    // A server trusting only 10.0.0.0/8 refuses loopback at once, whatever it sends.
    let untrusting = TestServer::start(Config {
        model,
        proxy_protocol: Some(ProxyProtocol {
            trusted: vec!["10.0.0.0/8".parse().unwrap()],
            header_timeout: Duration::from_secs(5),
        }),
        ..Config::default()
    });
    let header = v2(client("10.1.2.3:5555"), untrusting.addr, 0);
    let answer = exchange(untrusting.addr, &[&header, b"hello"], Duration::ZERO);
    assert_closed_unanswered(&answer, "untrusted");
    let stats = untrusting.stats_eventually("one untrusted", |s| s.tcp_proxy_untrusted == 1);
    assert_eq!(stats.tcp_accepted, 0, "refused before it was served");
}

/// A header that never completes is closed at the header timeout, not the idle timeout (60 s
/// here), with nothing sent back; meanwhile other clients are served (but by the iterative
/// model, which serves one connection at a time).
fn a_slow_header_times_out_while_others_are_served(model: Model) {
    let server = behind_proxy(model, Duration::from_millis(400), None);
    let mut slow = connect(server.addr);
    let opened = Instant::now();
    std::io::Write::write_all(&mut slow, b"PROXY TCP4 198.51").unwrap();
    if model != Model::Iterative {
        let header = v2(client("10.1.2.3:5555"), server.addr, 0);
        assert_eq!(exchange(server.addr, &[&header, b"meanwhile"], Duration::ZERO).bytes, b"MEANWHILE");
    }
    let answer = support::proxy::read_to_end(&mut slow);
    assert_closed_unanswered(&answer, "slow");
    let waited = opened.elapsed();
    assert!(
        waited >= Duration::from_millis(350) && waited < Duration::from_secs(10),
        "closed after {waited:?}"
    );
    let stats = server.stats_eventually("one timeout", |s| s.tcp_proxy_timeout == 1 && s.tcp_open == 0);
    assert_eq!(stats.tcp_idle_timeouts, 0);
}

/// Behind a proxy every connection comes from the proxy's address; the limit counts the client
/// each header names: 10.1.2.3 gets two, a third is closed, 10.1.2.4 is still served.
fn the_per_source_limit_counts_the_client_the_header_names(model: Model) {
    if model == Model::Iterative {
        return self::iterative_serves_one_at_a_time_anyway();
    }
    let server = behind_proxy(model, Duration::from_secs(5), Some(2));
    let open = |from: &str| {
        let mut stream = connect(server.addr);
        let header = v2(client(from), server.addr, 0);
        std::io::Write::write_all(&mut stream, &[header.as_slice(), b"x"].concat()).unwrap();
        stream
    };
    let mut held: Vec<TcpStream> = vec![open("10.1.2.3:1"), open("10.1.2.3:2")];
    for stream in &mut held {
        assert_eq!(read_exactly(stream, 1), b"X");
    }
    let mut third = open("10.1.2.3:3");
    assert_closed_unanswered(&support::proxy::read_to_end(&mut third), "third from 10.1.2.3");
    let mut other = open("10.1.2.4:1");
    assert_eq!(read_exactly(&mut other, 1), b"X");
    let stats = server.stats_eventually("one refused", |s| s.tcp_rejected_per_source == 1);
    assert_eq!(stats.tcp_open, 3);
    drop(held.pop());
    server.stats_eventually("a place freed", |s| s.tcp_open == 2);
    let mut again = open("10.1.2.3:4");
    assert_eq!(read_exactly(&mut again, 1), b"X", "a freed place is taken again");
}

/// The iterative model serves one connection at a time, so it never holds two from a source:
/// its limit is checked with one place, the second connection of a source waiting its turn.
fn iterative_serves_one_at_a_time_anyway() {
    let server = behind_proxy(Model::Iterative, Duration::from_secs(5), Some(1));
    for port in 1..=3 {
        let header = v2(client(&format!("10.1.2.3:{port}")), server.addr, 0);
        assert_eq!(exchange(server.addr, &[&header, b"one"], Duration::ZERO).bytes, b"ONE");
    }
    let stats = server.stats_eventually("three served", |s| s.tcp_accepted == 3 && s.tcp_open == 0);
    assert_eq!(stats.tcp_rejected_per_source, 0, "each place freed before the next");
}
