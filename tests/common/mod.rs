//! Shared by the integration tests: a real server on a free loopback port, in-process, and small
//! blocking clients to talk to it. Every wait here is bounded, so a broken server fails a test
//! instead of hanging it.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use upcase::server::{self, BindOptions, Config, Model, Server, Snapshot};

/// Generous bound on any single network wait in tests (they pass in milliseconds normally).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A server running in the test's process, on its own runtime, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    server: Option<Server>,
    runtime: tokio::runtime::Runtime,
}

impl TestServer {
    /// UDP and TCP on 127.0.0.1, one free port for both.
    pub fn start(config: Config) -> Self {
        Self::start_on("127.0.0.1:0", config)
    }

    pub fn start_model(model: Model) -> Self {
        Self::start(Config { model, ..Config::default() })
    }

    pub fn start_on(listen: &str, config: Config) -> Self {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let options = BindOptions { listen: vec![listen.to_owned()], tcp: true, udp: true, backlog: 4096 };
        let sockets = server::bind(&options).expect("bind");
        let server = {
            let _entered = runtime.enter();
            Server::start(sockets, config).expect("start")
        };
        let addr = server.local_addrs()[0].1;
        Self { addr, server: Some(server), runtime }
    }

    pub fn stats(&self) -> Snapshot {
        self.server.as_ref().unwrap().stats().snapshot()
    }

    /// Runs the full shutdown sequence and returns the final counters.
    pub fn shutdown(mut self) -> Snapshot {
        let server = self.server.take().unwrap();
        self.runtime.block_on(server.shutdown())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}

/// Connects with bounded read and write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, PATIENCE).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Sends `message`, half-closes, and reads the reply until the server closes.
pub fn tcp_exchange(addr: SocketAddr, message: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr);
    stream.write_all(message).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("read reply");
    reply
}

/// Reads exactly `len` bytes (the reply to what was sent so far on a persistent connection).
pub fn read_exactly(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut reply = vec![0; len];
    stream.read_exact(&mut reply).expect("read reply");
    reply
}

/// A UDP socket connected to `addr`, waiting at most `timeout` for a reply.
pub fn udp_socket(addr: SocketAddr, timeout: Duration) -> UdpSocket {
    let local: SocketAddr = if addr.is_ipv4() { "127.0.0.1:0" } else { "[::1]:0" }.parse().unwrap();
    let socket = UdpSocket::bind(local).unwrap();
    socket.connect(addr).unwrap();
    socket.set_read_timeout(Some(timeout)).unwrap();
    socket
}

/// One datagram out, its reply back (`None` if none came within `timeout`).
pub fn udp_exchange_within(addr: SocketAddr, message: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let socket = udp_socket(addr, timeout);
    socket.send(message).unwrap();
    let mut buffer = vec![0; 70_000];
    match socket.recv(&mut buffer) {
        Ok(n) => Some(buffer[..n].to_vec()),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => None,
        Err(e) => panic!("udp receive: {e}"),
    }
}

/// One datagram out, its reply back; loopback does not lose datagrams, so a missing reply fails.
pub fn udp_exchange(addr: SocketAddr, message: &[u8]) -> Vec<u8> {
    udp_exchange_within(addr, message, PATIENCE).expect("no UDP reply")
}

/// Runs `test` once per concurrency model, as separate `#[test]`s in modules named after them.
#[macro_export]
macro_rules! for_each_model {
    ($($test:ident),* $(,)?) => {
        mod iterative {
            $(#[test] fn $test() { super::$test(upcase::server::Model::Iterative) })*
        }
        mod threaded {
            $(#[test] fn $test() { super::$test(upcase::server::Model::Threaded) })*
        }
        mod r#async {
            $(#[test] fn $test() { super::$test(upcase::server::Model::Async) })*
        }
    };
}

/// Sample sentences with their expected replies, covering the Unicode cases the protocol names.
pub const SENTENCES: &[(&str, &str)] = &[
    ("hello, world", "HELLO, WORLD"),
    ("straße", "STRASSE"),
    ("ﬁne ﬂour", "FINE FLOUR"),
    ("ἀθῆναι καλημέρα", "ἈΘΗ͂ΝΑΙ ΚΑΛΗΜΈΡΑ"),
    ("привет, мир", "ПРИВЕТ, МИР"),
    ("emoji 😀🎉 stay", "EMOJI 😀🎉 STAY"),
    ("", ""),
];

impl TestServer {
    /// Waits (bounded) until the counters satisfy `check`: a reply can reach the client a moment
    /// before the server has counted it.
    pub fn stats_eventually(&self, what: &str, check: impl Fn(&Snapshot) -> bool) -> Snapshot {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let stats = self.stats();
            if check(&stats) {
                return stats;
            }
            assert!(std::time::Instant::now() < deadline, "counters never showed {what}: {stats:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
