//! `--max-connections-per-source` in every model: a source gets its share and no more, the
//! connection over it is closed with nothing sent and counted (and not as accepted), a place
//! freed is taken again, loopback is exempt unless asked, an IPv6 source is its /64; and the
//! command line's default and usage errors.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use support::proxy::{read_to_end, v2};
use support::*;
use upcase::server::{Config, Model, ProxyProtocol};

for_each_model!(
    a_source_gets_its_share_and_no_more: [threaded, asynchronous],
    a_source_place_is_freed_when_its_connection_ends,
    loopback_is_not_limited_unless_asked: [threaded, asynchronous],
);

fn limited(model: Model, per_source: usize, loopback: bool) -> TestServer {
    TestServer::start(Config {
        model,
        max_connections_per_source: Some(per_source),
        per_source_loopback: loopback,
        ..Config::default()
    })
}

/// An open connection, with one exchange done on it.
fn open(server: &TestServer) -> TcpStream {
    let mut stream = connect(server.addr);
    stream.write_all(b"x").unwrap();
    assert_eq!(read_exactly(&mut stream, 1), b"X");
    stream
}

fn a_source_gets_its_share_and_no_more(model: Model) {
    let server = limited(model, 3, true);
    let held: Vec<TcpStream> = (0..3).map(|_| open(&server)).collect();
    let mut over = connect(server.addr);
    let _ = over.write_all(b"over");
    let answer = read_to_end(&mut over);
    assert!(answer.bytes.is_empty(), "the fourth was served: {:?}", answer.bytes);
    let stats = server.stats_eventually("one refused", |s| s.tcp_rejected_per_source == 1);
    assert_eq!((stats.tcp_accepted, stats.tcp_open), (3, 3), "refused before it was accepted");
    assert_eq!(stats.tcp_rejected_over_limit, 0);
    drop(held);
    server.stats_eventually("all closed", |s| s.tcp_open == 0);
    let _again: Vec<TcpStream> = (0..3).map(|_| open(&server)).collect();
}

/// A connection's place is given back however it ends: finished, timed out, or refused by the
/// connection limit after its source's place was taken. (The iterative model serves one at a
/// time, so each connection here must find its place free.) A connection ends when the server
/// has closed it, a moment after its client has read the end of its reply, so each next one
/// waits for that.
fn a_source_place_is_freed_when_its_connection_ends(model: Model) {
    let server = TestServer::start(Config {
        model,
        max_connections_per_source: Some(1),
        per_source_loopback: true,
        idle_timeout: Some(Duration::from_millis(200)),
        ..Config::default()
    });
    let ended = |what| server.stats_eventually(what, |s| s.tcp_open == 0);
    for _ in 0..3 {
        assert_eq!(tcp_reply(server.addr, b"finished"), b"FINISHED");
        ended("the connection closed");
    }
    let idle = connect(server.addr);
    server.stats_eventually("the idle one timed out", |s| s.tcp_idle_timeouts == 1 && s.tcp_open == 0);
    drop(idle);
    assert_eq!(tcp_reply(server.addr, b"after"), b"AFTER");
    let stats = server.stats_eventually("five accepted", |s| s.tcp_accepted == 5 && s.tcp_open == 0);
    assert_eq!(stats.tcp_rejected_per_source, 0);

    let full = TestServer::start(Config {
        model,
        max_connections: 1,
        max_connections_per_source: Some(5),
        per_source_loopback: true,
        ..Config::default()
    });
    if model != Model::Iterative {
        let _held = open(&full);
        let mut over = connect(full.addr);
        assert!(read_to_end(&mut over).bytes.is_empty());
        full.stats_eventually("one over the limit", |s| s.tcp_rejected_over_limit == 1);
    }
    drop(full);
}

fn loopback_is_not_limited_unless_asked(model: Model) {
    let server = limited(model, 2, false);
    let held: Vec<TcpStream> = (0..10).map(|_| open(&server)).collect();
    assert_eq!(server.stats().tcp_rejected_per_source, 0);
    drop(held);
}

/// Every address of an IPv6 /64 is one source; the next /64 is another. (Loopback has one IPv6
/// address, so the clients are named by PROXY headers.)
#[test]
fn an_ipv6_source_is_its_slash_64() {
    let server = TestServer::start(Config {
        max_connections_per_source: Some(2),
        proxy_protocol: Some(ProxyProtocol {
            trusted: vec!["127.0.0.1/32".parse().unwrap()],
            header_timeout: Duration::from_secs(5),
        }),
        ..Config::default()
    });
    let from = |client: &str| {
        let mut stream = connect(server.addr);
        let header = v2(client.parse().unwrap(), "[2001:db8::1]:12000".parse().unwrap(), 0);
        stream.write_all(&[header.as_slice(), b"v6"].concat()).unwrap();
        stream
    };
    let mut first = from("[2001:db8:1:2::1]:1000");
    let mut second = from("[2001:db8:1:2:ffff::2]:1000");
    assert_eq!(read_exactly(&mut first, 2), b"V6");
    assert_eq!(read_exactly(&mut second, 2), b"V6");
    let mut third = from("[2001:db8:1:2:abcd::3]:1000");
    assert!(read_to_end(&mut third).bytes.is_empty(), "the same /64");
    let mut next = from("[2001:db8:1:3::1]:1000");
    assert_eq!(read_exactly(&mut next, 2), b"V6", "the next /64 is another source");
    server.stats_eventually("one refused", |s| s.tcp_rejected_per_source == 1);
}

/// The command line: `--proxy-protocol` and `--trusted-proxy` need each other, a network must
/// parse, and each mistake is a usage error (status 2) that names the flag.
#[test]
fn usage_errors_name_the_flag() {
    for (args, says) in [
        (&["--proxy-protocol"][..], "--trusted-proxy"),
        (&["--trusted-proxy", "127.0.0.1"][..], "--proxy-protocol"),
        (&["--proxy-protocol", "--trusted-proxy", "10.0.0.0/33"][..], "not an address or a network"),
        (&["--proxy-protocol", "--trusted-proxy", "localhost"][..], "not an address or a network"),
        (&["--max-connections-per-source", "many"][..], "--max-connections-per-source"),
    ] {
        let mut command = upcase();
        command.args(["serve", "--listen", "127.0.0.1:0"]).args(args);
        let output = run("upcase serve", command, b"", PATIENCE);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", output.stderr);
        assert!(output.stderr.contains(says), "{args:?}: {}", output.stderr);
    }
}
