//! The async model's workers: each an event loop with its own sockets on the port (an
//! SO_REUSEPORT group), which must never wake one another on the request path, and which must
//! not let a second server join the port by accident.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use support::*;
use upcase::server::{Config, Model};

/// Voluntary context switches of each of this process's threads named `upcase-worker-*` (a
/// worker's event loop) or `upcase-udp-*` (a worker's UDP socket, served on a thread of its
/// own): how often each went to sleep, and so was woken.
fn worker_switches() -> Vec<(String, u64)> {
    let mut workers = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = task.unwrap().path();
        let Ok(name) = std::fs::read_to_string(path.join("comm")) else { continue };
        if !name.starts_with("upcase-worker") && !name.starts_with("upcase-udp") {
            continue;
        }
        let status = std::fs::read_to_string(path.join("status")).unwrap();
        let switches = status
            .lines()
            .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
            .map(|value| value.trim().parse().unwrap())
            .unwrap();
        workers.push((name.trim().to_owned(), switches));
    }
    workers.sort();
    workers
}

/// The tests that count workers' wake-ups take turns: workers of another test's server, in this
/// same process, would be counted too.
fn alone() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits (bounded) until exactly `count` workers run in this process, each with its UDP thread
/// (one UDP socket each, on 127.0.0.1): a thread names itself once it runs, and the workers of
/// the test before may take a moment to exit.
fn wait_for_workers(count: usize) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while worker_switches().len() != 2 * count && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(worker_switches().len(), 2 * count, "workers: {:?}", worker_switches());
}

/// How many times each worker's thread whose name starts with `prefix` was woken while `load`
/// ran.
fn wakes_during(prefix: &str, load: impl FnOnce()) -> Vec<u64> {
    let before = worker_switches();
    load();
    let after = worker_switches();
    assert_eq!(before.len(), after.len(), "workers came or went");
    let named = |(name, _): &&(String, u64)| name.starts_with(prefix);
    before.iter().filter(named).zip(after.iter().filter(named)).map(|((_, b), (_, a))| a - b).collect()
}

/// Must hold: one client's requests, one at a time, are all served by one worker (the one the
/// kernel gave the connection or the datagram's 4-tuple to): it is woken up to once a request
/// (less when the next request is already there as it finishes one), and the other worker not
/// at all. A design that handed requests between threads would wake both, once a request each.
#[test]
fn a_worker_never_wakes_another_on_the_request_path() {
    const REQUESTS: u64 = 400;
    let _alone = alone();
    let server = TestServer::start(Config { model: Model::Async, workers: 2, ..Config::default() });
    wait_for_workers(2);

    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let tcp = wakes_during("upcase-", || {
        let mut reply = [0; 5];
        for _ in 0..REQUESTS {
            stream.write_all(b"hello").unwrap();
            stream.read_exact(&mut reply).unwrap();
            assert_eq!(&reply, b"HELLO");
        }
    });
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(server.addr).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    let udp = wakes_during("upcase-", || {
        let mut reply = [0; 16];
        for _ in 0..REQUESTS {
            socket.send(b"hello").unwrap();
            assert_eq!(socket.recv(&mut reply).unwrap(), 5);
        }
    });
    for (transport, wakes) in [("tcp", &tcp), ("udp", &udp)] {
        let (busy, idle) = (wakes.iter().max().unwrap(), wakes.iter().min().unwrap());
        eprintln!("{transport}: wakes per worker over {REQUESTS} requests: {wakes:?}");
        assert!(*busy > 0, "{transport}: the serving worker never slept: {wakes:?}");
        assert!(*busy <= REQUESTS * 2, "{transport}: more than two wakes a request: {wakes:?}");
        assert!(*idle <= 2, "{transport}: the other worker was woken: {wakes:?}");
    }
}

/// Must hold: a second server on a port the async model serves fails at once with "address in
/// use", though the async model's sockets allow the port to be shared with its own workers; a
/// student's server (Python, no SO_REUSEPORT) fails the same way. UDP and TCP alike.
#[test]
fn a_second_server_on_the_same_port_fails_at_once() {
    for transport in ["--tcp", "--udp"] {
        let first = serve_upcase(&[transport, "--workers", "2"]);
        let addr = if transport == "--tcp" { first.tcp() } else { first.udp() };
        let mut second = upcase();
        second.args(["serve", transport, "--listen", &addr.to_string()]);
        let out = run("second upcase serve", second, b"", PATIENCE);
        assert_eq!(out.status.code(), Some(1), "{transport}: {}", out.stderr);
        assert!(out.stderr.contains("Address already in use"), "{transport}: {}", out.stderr);
        assert!(out.stderr.contains("another server"), "{transport}: {}", out.stderr);

        let kind = if transport == "--tcp" { "SOCK_STREAM" } else { "SOCK_DGRAM" };
        let script = format!(
            "import socket\ns = socket.socket(socket.AF_INET, socket.{kind})\n\
             try:\n    s.bind(('127.0.0.1', {}))\n    print('bound')\nexcept OSError as e:\n    print(e.strerror)",
            addr.port()
        );
        let mut student = python3();
        student.args(["-c", &script]);
        let out = run("python bind", student, b"", PATIENCE);
        assert_eq!(out.text().trim(), "Address already in use", "{transport}");
    }
}

/// Must hold: with several workers, clients still get every reply, over both transports, and
/// the connections are spread over the workers (each gets some of 64 connections).
#[test]
fn clients_are_spread_over_the_workers() {
    let _alone = alone();
    let server = TestServer::start(Config { model: Model::Async, workers: 2, ..Config::default() });
    wait_for_workers(2);
    let wakes = wakes_during("upcase-worker", || {
        let streams: Vec<TcpStream> = (0..64).map(|_| TcpStream::connect(server.addr).unwrap()).collect();
        for (i, mut stream) in streams.into_iter().enumerate() {
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            stream.write_all(format!("client {i}").as_bytes()).unwrap();
            stream.shutdown(std::net::Shutdown::Write).unwrap();
            let mut reply = String::new();
            stream.read_to_string(&mut reply).unwrap();
            assert_eq!(reply, format!("CLIENT {i}"));
        }
    });
    assert!(wakes.iter().all(|&w| w > 0), "a worker got no connection: {wakes:?}");
}
