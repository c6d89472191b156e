//! The UDP service over real loopback sockets, the same checks for every concurrency model.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::thread;
use std::time::Duration;

use support::*;
use upcase::server::{Config, Model};

for_each_model!(
    unicode_round_trips,
    empty_datagram_gets_empty_reply,
    large_datagrams_are_never_cut,
    reply_too_large_for_a_datagram_is_dropped_and_counted,
    invalid_utf8_comes_back_byte_for_byte,
    many_clients_at_once,
    reply_comes_from_the_port_the_request_went_to,
    on_the_wildcard_address_replies_leave_from_the_address_written_to,
);

fn unicode_round_trips(model: Model) {
    let server = TestServer::start_model(model);
    for (sentence, expected) in SENTENCES {
        assert_eq!(udp_reply(server.addr, sentence.as_bytes()), expected.as_bytes(), "{sentence:?}");
    }
}

fn empty_datagram_gets_empty_reply(model: Model) {
    let server = TestServer::start_model(model);
    assert_eq!(udp_reply(server.addr, b""), b"");
}

/// The lecture's 2,048-byte buffer would cut these; upcase reads every datagram whole.
fn large_datagrams_are_never_cut(model: Model) {
    let server = TestServer::start_model(model);
    for len in [2_049, 30_000, 65_507] {
        let request: Vec<u8> = b"abcdefghij".iter().copied().cycle().take(len).collect();
        let reply = udp_reply(server.addr, &request);
        assert_eq!(reply.len(), len);
        assert_eq!(reply, request.to_ascii_uppercase());
    }
}

/// ΐ (2 bytes) uppercases to 6 bytes: 20,000 of them make a legal request whose reply cannot be
/// one datagram. It is dropped whole, counted, and the server goes on.
fn reply_too_large_for_a_datagram_is_dropped_and_counted(model: Model) {
    let server = TestServer::start_model(model);
    let request = "ΐ".repeat(20_000);
    assert_eq!(request.len(), 40_000);
    let reply = udp_reply_within(server.addr, request.as_bytes(), Duration::from_millis(500));
    assert_eq!(reply, None, "no cut reply");
    assert_eq!(udp_reply(server.addr, "ΐ".as_bytes()), "\u{399}\u{308}\u{301}".as_bytes());
    let stats = server.stats_eventually("one reply", |s| s.udp_replies == 1);
    assert_eq!(stats.udp_dropped_oversize_replies, 1);
}

fn invalid_utf8_comes_back_byte_for_byte(model: Model) {
    let server = TestServer::start_model(model);
    let cases: &[&[u8]] =
        &[b"\xFF", b"ab\xC0\xAFcd", b"\xED\xA0\x80", b"\x80 stray", b"cut \xE2\x82", b"\xF4\x90\x80\x80"];
    for request in cases {
        let expected: Vec<u8> = request.iter().map(u8::to_ascii_uppercase).collect();
        assert_eq!(udp_reply(server.addr, request), expected, "{request:?}");
    }
    assert_eq!(udp_reply(server.addr, b"still answering"), b"STILL ANSWERING");
}

fn many_clients_at_once(model: Model) {
    let server = TestServer::start_model(model);
    let addr = server.addr;
    let clients: Vec<_> = (0..50)
        .map(|client| {
            thread::spawn(move || {
                let socket = udp_socket(addr, PATIENCE);
                let mut buffer = [0; 256];
                for request in 0..20 {
                    let message = format!("client {client} request {request} ß");
                    socket.send(message.as_bytes()).unwrap();
                    let n = socket.recv(&mut buffer).unwrap();
                    assert_eq!(&buffer[..n], message.to_uppercase().as_bytes());
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    server.stats_eventually("1,000 replies", |s| s.udp_replies == 1000);
}

/// An unconnected socket sees the reply's source: it must be the server's own address and port.
fn reply_comes_from_the_port_the_request_went_to(model: Model) {
    let server = TestServer::start_model(model);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    socket.send_to(b"where from", server.addr).unwrap();
    let mut buffer = [0; 64];
    let (n, from) = socket.recv_from(&mut buffer).unwrap();
    assert_eq!(&buffer[..n], b"WHERE FROM");
    assert_eq!(from, server.addr);
}

/// A socket bound to 0.0.0.0 receives what is sent to any of the machine's addresses, and each
/// reply leaves from the address its request was sent to, as from a socket bound to that
/// address. Loopback has 127.0.0.2 and 127.0.0.3 too, where the kernel's own pick for a reply to
/// 127.0.0.1 is 127.0.0.1; a client connected to one of them takes datagrams from it only (as a
/// NAT or a firewall tracking the flow would). Requests to all three in one burst (batches, in
/// the async model) each come back from their own; IPv6 (`[::]`) the same way, where the machine
/// has it.
fn on_the_wildcard_address_replies_leave_from_the_address_written_to(model: Model) {
    let server = TestServer::start_on("0.0.0.0:0", Config { model, ..Config::default() });
    let port = server.addr.port();
    let addresses = [2, 3, 1].map(|last| SocketAddr::from(([127, 0, 0, last], port)));
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    let reply = || recv_text_from(&socket);
    for to in addresses {
        socket.send_to(format!("to {to}").as_bytes(), to).unwrap();
        assert_eq!(reply(), (format!("TO {to}"), to), "the reply to a request sent to {to}");
        assert_eq!(udp_reply(to, b"connected"), b"CONNECTED", "a client connected to {to}");
    }
    for round in 0..10 {
        for to in addresses {
            socket.send_to(format!("{round} to {to}").as_bytes(), to).unwrap();
        }
    }
    for _ in 0..30 {
        let (text, from) = reply();
        let sent_to: SocketAddr = text.split_once(" TO ").unwrap().1.parse().unwrap();
        assert_eq!(from, sent_to, "{text}");
    }
    server.stats_eventually("36 replies", |s| s.udp_replies == 36 && s.udp_destination_unknown == 0);

    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback on this machine; IPv6 skipped");
        return;
    }
    let server = TestServer::start_on("[::]:0", Config { model, ..Config::default() });
    let to = SocketAddr::from((Ipv6Addr::LOCALHOST, server.addr.port()));
    let socket = UdpSocket::bind("[::1]:0").unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    socket.send_to(b"v6", to).unwrap();
    assert_eq!(recv_text_from(&socket), ("V6".to_owned(), to));
    assert_eq!(udp_reply(to, b"connected"), b"CONNECTED");
}

#[test]
fn ipv6_loopback_when_the_machine_has_it() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback on this machine; skipping");
        return;
    }
    let server = TestServer::start_on("[::1]:0", Config::default());
    assert!(server.addr.is_ipv6());
    assert_eq!(udp_reply(server.addr, "ipv6 ß".as_bytes()), "IPV6 SS".as_bytes());
    assert_eq!(tcp_reply(server.addr, b"ipv6 tcp"), b"IPV6 TCP");
}

#[test]
fn max_datagram_limits_requests() {
    let server = TestServer::start(Config { max_datagram: 100, ..Config::default() });
    assert_eq!(udp_reply_within(server.addr, &[b'a'; 101], Duration::from_millis(300)), None);
    assert_eq!(udp_reply(server.addr, &[b'a'; 100]), vec![b'A'; 100]);
    server.stats_eventually("one oversize request", |s| s.udp_dropped_oversize_requests == 1);
}
