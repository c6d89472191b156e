//! A real server in the test's own process, on a free loopback port, with its counters at hand:
//! for tests that look at what the server counted, or change its configuration field by field.
//! It is stopped (the full shutdown sequence) when the test drops it, however the test ends.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use upcase::server::{self, BindOptions, Config, Model, Server, Snapshot};

use super::net::PATIENCE;

/// A server running in the test's process, on its own runtime, stopped when dropped.
pub(crate) struct TestServer {
    /// Where it serves both TCP and UDP.
    pub(crate) addr: SocketAddr,
    server: Option<Server>,
    runtime: tokio::runtime::Runtime,
}

impl TestServer {
    /// UDP and TCP on 127.0.0.1, one free port for both.
    pub(crate) fn start(config: Config) -> Self {
        Self::start_on("127.0.0.1:0", config)
    }

    /// The default configuration in `model`.
    pub(crate) fn start_model(model: Model) -> Self {
        Self::start(Config { model, ..Config::default() })
    }

    /// UDP and TCP on `listen` (port 0 for a free one; a fixed one to restart on a port).
    pub(crate) fn start_on(listen: &str, config: Config) -> Self {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let options = BindOptions {
            listen: vec![listen.to_owned()],
            tcp: true,
            udp: true,
            backlog: 4096,
            reuse_port: false,
        };
        let sockets = server::bind(&options).expect("bind");
        let server = {
            let _entered = runtime.enter();
            Server::start(sockets, config).expect("start")
        };
        let addr = server.local_addrs()[0].1;
        Self { addr, server: Some(server), runtime }
    }

    /// The counters now.
    pub(crate) fn stats(&self) -> Snapshot {
        self.server.as_ref().unwrap().stats().snapshot()
    }

    /// Waits (bounded) until the counters satisfy `check`: a reply can reach the client a moment
    /// before the server has counted it.
    pub(crate) fn stats_eventually(&self, what: &str, check: impl Fn(&Snapshot) -> bool) -> Snapshot {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let stats = self.stats();
            if check(&stats) {
                return stats;
            }
            assert!(Instant::now() < deadline, "counters never showed {what}: {stats:?}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the server shows an operator (the admin endpoint's view).
    pub(crate) fn observer(&self) -> upcase::server::observe::Observer {
        self.server.as_ref().unwrap().observer()
    }

    /// The admin endpoint on a free port of 127.0.0.1, served on this server's runtime.
    pub(crate) fn start_admin(&self, config: upcase::admin::AdminConfig) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _entered = self.runtime.enter();
        upcase::admin::start(listener, self.observer(), config).unwrap()
    }

    /// Runs the full shutdown sequence and returns the final counters.
    pub(crate) fn shutdown(mut self) -> Snapshot {
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
