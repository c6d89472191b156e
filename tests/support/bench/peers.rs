//! Servers that are wrong or slow on purpose, for the `upcase bench` tests: a few lines each, on
//! threads of the test's process, on a free loopback port. Each runs until the test process
//! ends; none of them ever blocks a test (the bench's own timeouts bound every wait).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::thread;
use std::time::Duration;

/// A TCP server that runs `serve` on every connection, each on its own thread.
fn tcp_server(serve: fn(TcpStream)) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || serve(stream));
        }
    });
    addr
}

/// Answers what it reads with `answer` of it, after `delay`, until the client closes.
fn answer_each_read(mut stream: TcpStream, delay: Duration, answer: fn(&[u8]) -> Vec<u8>) {
    let mut buffer = vec![0; 256 * 1024];
    while let Ok(n @ 1..) = stream.read(&mut buffer) {
        thread::sleep(delay);
        if stream.write_all(&answer(&buffer[..n])).is_err() {
            break;
        }
    }
}

/// Echoes without uppercasing: every reply is wrong.
pub(crate) fn tcp_echo() -> SocketAddr {
    tcp_server(|stream| answer_each_read(stream, Duration::ZERO, <[u8]>::to_vec))
}

/// Uppercases correctly (ASCII), but waits 5 ms before every answer.
pub(crate) fn tcp_slow() -> SocketAddr {
    tcp_server(|stream| answer_each_read(stream, SLOW, <[u8]>::to_ascii_uppercase))
}

/// The delay of the slow servers.
pub(crate) const SLOW: Duration = Duration::from_millis(5);

/// Accepts and reads, and never answers.
pub(crate) fn tcp_silent() -> SocketAddr {
    tcp_server(|mut stream| {
        let mut buffer = [0; 4096];
        while let Ok(1..) = stream.read(&mut buffer) {}
    })
}

/// A UDP server that answers datagram number `count` with `answer` of it, or not at all.
fn udp_server(answer: fn(u64, &[u8]) -> Option<Vec<u8>>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    thread::spawn(move || {
        let mut buffer = vec![0; 65_536];
        for count in 0u64.. {
            let Ok((n, peer)) = socket.recv_from(&mut buffer) else { break };
            if let Some(reply) = answer(count, &buffer[..n]) {
                let _ = socket.send_to(&reply, peer);
            }
        }
    });
    addr
}

/// Uppercases, but answers only every other datagram.
pub(crate) fn udp_lossy() -> SocketAddr {
    udp_server(|count, datagram| (count % 2 == 1).then(|| datagram.to_ascii_uppercase()))
}

/// Echoes without uppercasing.
pub(crate) fn udp_echo() -> SocketAddr {
    udp_server(|_, datagram| Some(datagram.to_vec()))
}

/// Uppercases, after 5 ms.
pub(crate) fn udp_slow() -> SocketAddr {
    udp_server(|_, datagram| {
        thread::sleep(SLOW);
        Some(datagram.to_ascii_uppercase())
    })
}
