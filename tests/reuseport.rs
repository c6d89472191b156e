//! `--reuseport`: processes share a port on purpose, and only then. Two servers that both say so
//! share one (TCP and UDP), and the kernel spreads clients over them; a server without it fails
//! against their group; a server with it fails against a server without it (whose own workers
//! share its port), and joins once that one has gone.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::net::{TcpStream, UdpSocket};

use support::admin::{get_until, parse_scrape, start_admin_server, AdminServer};
use support::*;

/// `upcase serve --reuseport --listen ADDR --admin 127.0.0.1:0`.
fn serve_sharing(listen: &str) -> AdminServer {
    let mut command = upcase();
    command.args(["serve", "--reuseport", "--workers", "2", "--listen", listen, "--admin", "127.0.0.1:0"]);
    start_admin_server(command)
}

/// A second `upcase serve` on `address` (with `extra` flags) must fail at once, saying the
/// address is in use.
fn refused(address: &str, extra: &[&str], why: &str) {
    for transport in ["--tcp", "--udp"] {
        let mut second = upcase();
        second.args(["serve", transport, "--listen", address]).args(extra);
        let out = run("second upcase serve", second, b"", PATIENCE);
        assert_eq!(out.status.code(), Some(1), "{why} ({transport}): {}", out.stderr);
        assert!(out.stderr.contains("Address already in use"), "{why} ({transport}): {}", out.stderr);
    }
}

fn accepted_and_answered(server: &AdminServer) -> (u64, u64) {
    let scrape = parse_scrape(&get_until(server.admin, "/metrics", "a scrape", |r| r.status == 200).body);
    (scrape.integer("upcase_tcp_accepted_total"), scrape.integer("upcase_udp_replies_total"))
}

/// Must hold: two `--reuseport` servers share a port, both answer over TCP and UDP, and 64
/// connections and 64 datagrams (from 64 sockets) are spread over both; a third server without
/// `--reuseport` cannot join them.
#[test]
fn servers_that_say_so_share_a_port() {
    let first = serve_sharing("127.0.0.1:0");
    let address = first.tcp.to_string();
    let second = serve_sharing(&address);
    assert_eq!((second.tcp, second.udp), (first.tcp, first.udp));
    for i in 0..64 {
        let message = format!("client {i}");
        assert_eq!(tcp_reply(first.tcp, message.as_bytes()), message.to_uppercase().as_bytes());
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(PATIENCE)).unwrap();
        socket.send_to(message.as_bytes(), first.udp).unwrap();
        let mut reply = [0; 64];
        let n = socket.recv(&mut reply).unwrap();
        assert_eq!(&reply[..n], message.to_uppercase().as_bytes());
    }
    let counts = || [accepted_and_answered(&first), accepted_and_answered(&second)];
    let mut seen = counts();
    for _ in 0..100 {
        if seen[0].0 + seen[1].0 == 64 && seen[0].1 + seen[1].1 == 64 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        seen = counts();
    }
    assert_eq!((seen[0].0 + seen[1].0, seen[0].1 + seen[1].1), (64, 64), "{seen:?}");
    assert!(seen.iter().all(|&(tcp, udp)| tcp > 0 && udp > 0), "one server got nothing: {seen:?}");

    refused(&address, &[], "a server without --reuseport against a --reuseport group");
}

/// Must hold: a `--reuseport` server cannot join a server started without it, though that
/// server's own workers share its port among themselves (SO_REUSEPORT set after its bind);
/// once that server has stopped, the port is free to share.
#[test]
fn a_server_without_it_is_never_joined() {
    let mut alone = serve_upcase(&["--workers", "2"]);
    let address = alone.tcp().to_string();
    refused(&address, &["--reuseport"], "a --reuseport server against one without it");
    assert_tcp_uppercases(alone.tcp(), "still served by the first");
    assert_eq!(udp_reply(alone.udp(), b"still"), b"STILL");

    alone.guard.sigterm();
    assert_eq!(alone.guard.wait_exit(PATIENCE).code(), Some(0));
    let after = serve_sharing(&address);
    assert_eq!(after.tcp, alone.tcp());
    drop(TcpStream::connect(after.tcp).unwrap());
}
