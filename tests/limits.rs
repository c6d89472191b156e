//! Limits and abuse guards, in-process for every model: the maximum connection time, a panic in
//! one handler, the UDP source-port guard and the per-source UDP budget.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::thread;
use std::time::{Duration, Instant};

use support::*;
use upcase::server::rate_limit::RateLimit;
use upcase::server::{Config, Model};

for_each_model!(
    slow_client_is_closed_at_the_maximum_connection_time,
    panic_in_a_tcp_handler_ends_that_connection_only,
    panic_while_answering_a_datagram_is_contained,
    datagram_from_the_servers_own_port_is_ignored,
    udp_budget_bounds_replies_per_source,
);

const TRIGGER: &[u8] = b"\0inject a panic\0";

/// A client that sends a byte every 100 ms is never idle, but cannot hold the connection past
/// the maximum connection time; other clients are served meanwhile.
fn slow_client_is_closed_at_the_maximum_connection_time(model: Model) {
    let config = Config { model, max_connection_time: Some(Duration::from_millis(600)), ..Config::default() };
    let server = TestServer::start(config);
    let mut slow = connect(server.addr);
    let started = Instant::now();
    let mut reply = [0; 1];
    let closed = loop {
        if slow.write_all(b"s").is_err() {
            break true;
        }
        match slow.read(&mut reply) {
            Ok(1) => assert_eq!(&reply, b"S"),
            _ => break true,
        }
        assert!(started.elapsed() < Duration::from_secs(10), "slow client never closed");
        thread::sleep(Duration::from_millis(100));
    };
    assert!(closed);
    assert!(started.elapsed() >= Duration::from_millis(500), "closed too early: {:?}", started.elapsed());
    assert_eq!(tcp_reply(server.addr, b"quick"), b"QUICK");
    server.stats_eventually("one lifetime closure", |s| s.tcp_lifetime_exceeded == 1);
}

fn panic_in_a_tcp_handler_ends_that_connection_only(model: Model) {
    let server = TestServer::start(Config { model, panic_on: Some(TRIGGER.to_vec()), ..Config::default() });
    let mut doomed = connect(server.addr);
    doomed.write_all(TRIGGER).unwrap();
    let mut rest = Vec::new();
    let _ = doomed.read_to_end(&mut rest); // closed or reset: either way, ended
    assert!(rest.is_empty());
    assert_eq!(tcp_reply(server.addr, b"after the panic"), b"AFTER THE PANIC");
    // The connection is let go, and counted as a panic.
    server.stats_eventually("one panic, nothing open", |s| s.panics == 1 && s.tcp_open == 0);
}

fn panic_while_answering_a_datagram_is_contained(model: Model) {
    let server = TestServer::start(Config { model, panic_on: Some(TRIGGER.to_vec()), ..Config::default() });
    assert_eq!(udp_reply_within(server.addr, TRIGGER, Duration::from_millis(300)), None);
    assert_eq!(udp_reply(server.addr, b"after the panic"), b"AFTER THE PANIC");
    server.stats_eventually("one panic", |s| s.panics == 1);
}

/// Two servers on the same port could otherwise answer each other forever, given one forged
/// datagram. 127.0.0.2 is loopback too, so a socket there can share the server's port number.
fn datagram_from_the_servers_own_port_is_ignored(model: Model) {
    let server = TestServer::start_model(model);
    let twin = UdpSocket::bind(("127.0.0.2", server.addr.port())).unwrap();
    twin.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    twin.send_to(b"loop?", server.addr).unwrap();
    let mut buffer = [0; 16];
    assert!(twin.recv_from(&mut buffer).is_err(), "no reply to the server's own port");
    assert_eq!(udp_reply(server.addr, b"others"), b"OTHERS");
    server.stats_eventually("one ignored datagram", |s| s.udp_ignored_source_port == 1);
}

/// A budget of 2,000 bytes that (at 1 byte/s) does not refill during the test: exactly four
/// 500-byte replies, then nothing, for this source; a loopback exemption is off here.
fn udp_budget_bounds_replies_per_source(model: Model) {
    let config = Config {
        model,
        udp_rate: Some(RateLimit { bytes_per_second: 1, burst: 2000 }),
        udp_rate_loopback: true,
        ..Config::default()
    };
    let server = TestServer::start(config);
    let socket = udp_socket(server.addr, Duration::from_millis(200));
    let mut buffer = [0; 600];
    let answered = (0..8)
        .filter(|_| {
            socket.send(&[b'x'; 500]).unwrap();
            socket.recv(&mut buffer).is_ok()
        })
        .count();
    assert_eq!(answered, 4);
    server.stats_eventually("four limited replies", |s| s.udp_rate_limited == 4);
}

#[test]
fn loopback_clients_are_not_rate_limited_by_default() {
    let config = Config { udp_rate: Some(RateLimit { bytes_per_second: 1, burst: 10 }), ..Config::default() };
    let server = TestServer::start(config);
    for _ in 0..20 {
        assert_eq!(udp_reply(server.addr, &[b'y'; 100]), vec![b'Y'; 100]);
    }
}
