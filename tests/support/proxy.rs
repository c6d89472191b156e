//! Shared by the PROXY protocol and balancer tests: headers written byte by byte from the
//! protocol's specification (not with the parser the server uses, so the two cannot agree on a
//! mistake); a client that sends a header then talks, reading what comes back however the server
//! ends the connection; and HAProxy and nginx started and stopped by a test (`programs`).

#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use crate::support::PATIENCE;

/// The version 2 signature.
pub(crate) const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// A version 2 `PROXY` header for a TCP connection from `client` to `server` (one family), with
/// `extra` bytes of NOOP TLV after the addresses when `extra` ≥ 3.
pub(crate) fn v2(client: SocketAddr, server: SocketAddr, extra: usize) -> Vec<u8> {
    let mut addresses = Vec::new();
    let family = match (client, server) {
        (SocketAddr::V4(c), SocketAddr::V4(s)) => {
            addresses.extend(c.ip().octets());
            addresses.extend(s.ip().octets());
            0x11 // AF_INET, STREAM
        }
        (SocketAddr::V6(c), SocketAddr::V6(s)) => {
            addresses.extend(c.ip().octets());
            addresses.extend(s.ip().octets());
            0x21 // AF_INET6, STREAM
        }
        _ => panic!("one family for both ends"),
    };
    addresses.extend(client.port().to_be_bytes());
    addresses.extend(server.port().to_be_bytes());
    if extra >= 3 {
        let len = u16::try_from(extra - 3).unwrap();
        addresses.push(0x04); // PP2_TYPE_NOOP
        addresses.extend(len.to_be_bytes());
        addresses.resize(addresses.len() + extra - 3, 0);
    }
    let mut header = V2_SIGNATURE.to_vec();
    header.push(0x21); // version 2, PROXY
    header.push(family);
    header.extend(u16::try_from(addresses.len()).unwrap().to_be_bytes());
    header.extend(addresses);
    header
}

/// A version 2 `LOCAL` header: the proxy speaking for itself (its health check).
pub(crate) fn v2_local() -> Vec<u8> {
    let mut header = V2_SIGNATURE.to_vec();
    header.extend([0x20, 0x00, 0x00, 0x00]);
    header
}

/// A version 1 header for a TCP connection from `client` to `server`.
pub(crate) fn v1(client: SocketAddr, server: SocketAddr) -> Vec<u8> {
    let family = if client.is_ipv4() { "TCP4" } else { "TCP6" };
    format!("PROXY {family} {} {} {} {}\r\n", client.ip(), server.ip(), client.port(), server.port())
        .into_bytes()
}

/// What came back on a connection: its bytes, and whether it ended cleanly (FIN) or not.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) bytes: Vec<u8>,
    pub(crate) error: Option<io::ErrorKind>,
}

/// Connects to `addr`, writes each of `pieces` (pausing `pause` between them), half-closes, and
/// reads to the end.
pub(crate) fn exchange(addr: SocketAddr, pieces: &[&[u8]], pause: Duration) -> Answer {
    let mut stream = TcpStream::connect_timeout(&addr, PATIENCE).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_nodelay(true).unwrap();
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(pause);
        }
        if stream.write_all(piece).is_err() {
            break; // closed by the server: what it sent, if anything, is read below
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
    read_to_end(&mut stream)
}

/// Reads until the server closes, keeping whatever came before an error.
pub(crate) fn read_to_end(stream: &mut TcpStream) -> Answer {
    let mut bytes = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Answer { bytes, error: None },
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Answer { bytes, error: Some(e.kind()) },
        }
    }
}

mod programs;
pub(crate) use programs::*;
