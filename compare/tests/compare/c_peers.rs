//! The C servers answer exactly what the protocol says, byte for byte: UDP datagrams up to the
//! largest, TCP request/response on one connection, a connection per request, and streams far
//! larger than one read (the server's writes come out partial and must resume); then under
//! upcase's bench in every pattern.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::thread;
use std::time::Duration;

use upcase::bench::{Options, Pattern};
use upcase::net::Transport;
use upcase_compare::peers::{Peer, Running};

use crate::support::{has, programs, scratch, C_SERVERS, PATIENCE};

/// Every byte value, over and over: only a–z may change.
fn bytes(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + seed) % 256) as u8).collect()
}

fn start(peer: Peer, name: &str) -> Running {
    let log = scratch(name).join("server.log");
    Running::start(peer, &programs(false), &log).unwrap_or_else(|e| panic!("{e:#}"))
}

fn udp_exchange(socket: &UdpSocket, to: SocketAddr, message: &[u8]) -> Vec<u8> {
    let mut reply = vec![0; 65_536];
    // Loopback hardly ever drops a datagram, but it may: a few tries.
    for _ in 0..5 {
        socket.send_to(message, to).unwrap();
        if let Ok((n, from)) = socket.recv_from(&mut reply) {
            assert_eq!(from, to, "the reply must come from where the request went");
            reply.truncate(n);
            return reply;
        }
    }
    panic!("no reply to a {}-byte datagram from {to}", message.len());
}

/// Sends `message` on its own thread while reading the reply, half-closes, reads to the end.
fn tcp_exchange(addr: SocketAddr, message: Vec<u8>) -> Vec<u8> {
    tcp_exchange_reading_after(addr, message, Duration::ZERO)
}

/// [`tcp_exchange`], but reading only after `pause`: the kernel's buffers fill, and the server's
/// writes come out partial and must wait and resume.
fn tcp_exchange_reading_after(addr: SocketAddr, message: Vec<u8>, pause: Duration) -> Vec<u8> {
    let stream = TcpStream::connect_timeout(&addr, PATIENCE).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sending = thread::spawn(move || {
        writer.write_all(&message).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    thread::sleep(pause);
    let mut reply = Vec::new();
    (&stream).read_to_end(&mut reply).unwrap();
    sending.join().unwrap();
    reply
}

#[test]
fn udp_replies_are_the_uppercase_of_each_datagram_to_its_sender() {
    if !has("gcc") {
        return;
    }
    for peer in C_SERVERS {
        let server = start(peer, &format!("udp-{}", peer.name()));
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        for (i, len) in [0, 1, 64, 1_500, 9_000, 65_507].into_iter().enumerate() {
            let message = bytes(len, i);
            let reply = udp_exchange(&socket, server.addr(), &message);
            assert!(
                reply == message.to_ascii_uppercase(),
                "{}: a {len}-byte datagram came back wrong",
                peer.name()
            );
        }
    }
}

#[test]
fn tcp_requests_on_one_connection_and_a_connection_per_request_are_answered_exactly() {
    if !has("gcc") {
        return;
    }
    for peer in C_SERVERS {
        let server = start(peer, &format!("tcp-{}", peer.name()));
        // rr: request, reply, next request, on one connection.
        let mut stream = TcpStream::connect_timeout(&server.addr(), PATIENCE).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        for (i, len) in [1, 64, 1_000, 4_096, 50_000].into_iter().enumerate() {
            let message = bytes(len, i);
            stream.write_all(&message).unwrap();
            let mut reply = vec![0; len];
            stream.read_exact(&mut reply).unwrap();
            assert!(
                reply == message.to_ascii_uppercase(),
                "{}: rr reply of {len} bytes came back wrong",
                peer.name()
            );
        }
        stream.shutdown(Shutdown::Write).unwrap();
        assert_eq!(stream.read(&mut [0; 16]).unwrap(), 0, "{}: after the half-close, a close", peer.name());
        // crr: the lecture's client, for short requests and for one larger than a read (64 KiB).
        for (i, len) in [0, 5, 64, 200_000].into_iter().enumerate() {
            let message = bytes(len, i);
            let reply = tcp_exchange(server.addr(), message.clone());
            assert!(
                reply == message.to_ascii_uppercase(),
                "{}: crr reply of {len} bytes came back wrong",
                peer.name()
            );
        }
    }
}

#[test]
fn streams_far_larger_than_a_read_come_back_whole_on_several_connections_at_once() {
    if !has("gcc") {
        return;
    }
    for peer in C_SERVERS {
        let server = start(peer, &format!("stream-{}", peer.name()));
        let addr = server.addr();
        // Several at once, so that each of the threaded server's threads gets some; half of them
        // read late, so that replies wait in the server (more than the kernel's buffers hold).
        let streams: Vec<_> = (0..4)
            .map(|i| {
                let message = bytes(24 * 1024 * 1024 + i * 12_345, i);
                let pause = Duration::from_millis(if i % 2 == 0 { 0 } else { 500 });
                thread::spawn(move || (tcp_exchange_reading_after(addr, message.clone(), pause), message))
            })
            .collect();
        for stream in streams {
            let (reply, message) = stream.join().unwrap();
            assert_eq!(reply.len(), message.len(), "{}: a stream came back short", peer.name());
            assert!(reply == message.to_ascii_uppercase(), "{}: a stream came back wrong", peer.name());
        }
    }
}

#[test]
fn upcase_bench_finds_every_reply_correct_in_every_pattern() {
    if !has("gcc") {
        return;
    }
    for peer in C_SERVERS {
        let mut server = start(peer, &format!("bench-{}", peer.name()));
        let runs = [
            (Transport::Udp, Pattern::Rr, 8, 64),
            (Transport::Tcp, Pattern::Rr, 8, 64),
            (Transport::Tcp, Pattern::Crr, 2, 64),
            // Large writes both ways at once: the server's writes come out partial and resume.
            (Transport::Tcp, Pattern::Stream, 2, 100_000),
        ];
        for (transport, pattern, conns, size) in runs {
            let options = Options {
                target: server.addr().to_string(),
                transport,
                pattern,
                conns,
                size,
                duration: Duration::from_millis(300),
                server_pid: Some(server.pid()),
                ..Options::default()
            };
            let report = upcase::bench::run(&options, &mut |_| {}).unwrap();
            assert!(
                report.ok,
                "{} {} {}: {:?}",
                peer.name(),
                transport.name(),
                pattern.name(),
                report.problems()
            );
        }
        assert!(server.exited().is_none(), "{} exited under load", peer.name());
    }
}
