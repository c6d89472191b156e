//! The balancer recipe, `deploy/nginx/upcase.conf`, run as it is (only its ports changed) by real
//! nginx (Debian's, with libnginx-mod-stream) in front of three `upcase serve` instances on
//! loopback: `upcase check` passes through it over TCP and UDP, `upcase bench` runs through it
//! without an error and reaches every instance; then one instance is stopped (SIGTERM) in the
//! middle of a TCP and a UDP bench, and the balancer routes around it. Every error the clients
//! see is counted and bounded below by what explains it; a bench after the stop sees none.
//!
//! The figures are printed (`cargo test --test balancer -- --nocapture`). Without nginx the test
//! skips with a note, unless `UPCASE_REQUIRE_TOOLS=1` (CI).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::admin::{get, parse_scrape, serve_with_admin, AdminServer};
use support::proxy::nginx;
use support::*;

/// Flows of each bench: TCP connections or UDP sockets, each with one request in flight at most.
const FLOWS: u64 = 4;

/// The recipe with its ports replaced: the balancer on `listen` (TCP and UDP), the instances,
/// and the sink for datagrams from low ports on `sink`. Each replaced text must be in the file,
/// so a change to its shape fails here rather than testing something else.
fn recipe(listen: u16, instances: &[SocketAddr], sink: u16) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx/upcase.conf");
    let mut config = std::fs::read_to_string(path).unwrap();
    let mut replace = |from: &str, to: &str| {
        assert!(config.contains(from), "deploy/nginx/upcase.conf no longer says {from:?}");
        config = config.replace(from, to);
    };
    for (i, instance) in instances.iter().enumerate() {
        replace(&format!("server 127.0.0.1:{} ", 12001 + i), &format!("server {instance} "));
    }
    replace("listen 12000 ", &format!("listen 127.0.0.1:{listen} "));
    replace("127.0.0.1:12009", &format!("127.0.0.1:{sink}"));
    config
}

/// What one bench reported.
#[derive(Debug, Clone, Default)]
struct Bench {
    requests: u64,
    wrong: u64,
    timeouts: u64,
    connection: u64,
    /// The bench's description of its first failure.
    first_problem: Option<String>,
}

impl Bench {
    fn errors(&self) -> u64 {
        self.wrong + self.timeouts + self.connection
    }
}

/// Runs `upcase bench --json ARGS` against `to` on a thread; join it for the report.
fn bench(to: SocketAddr, args: &[&str]) -> std::thread::JoinHandle<Bench> {
    let mut command = upcase();
    command.args(["bench", "--json", "--to", &to.to_string()]).args(args);
    let what = format!("upcase bench {}", args.join(" "));
    std::thread::spawn(move || {
        let output = run(&what, command, b"", PATIENCE);
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{what}: {e}; stderr:\n{}", output.stderr));
        let count = |key: &str| report["errors"][key].as_u64().unwrap();
        Bench {
            requests: report["requests"].as_u64().unwrap(),
            wrong: count("wrong"),
            timeouts: count("timeouts"),
            connection: count("connection"),
            first_problem: report["first_problem"].as_str().map(str::to_owned),
        }
    })
}

/// Whether every wrong reply a bench saw was empty, as far as its report tells (it describes
/// its first failure).
fn only_empty_replies(run: &Bench) -> bool {
    run.wrong == 0 || run.first_problem.as_deref().is_some_and(|problem| problem.contains("(0 bytes"))
}

/// TCP connections accepted and UDP requests received by an instance so far.
fn served(instance: &AdminServer) -> (u64, u64) {
    let scrape = parse_scrape(&get(instance.admin, "/metrics").body);
    (scrape.integer("upcase_tcp_accepted_total"), scrape.integer("upcase_udp_requests_total"))
}

#[test]
fn nginx_balances_three_instances_and_routes_around_a_stopped_one() {
    let mut instances: Vec<AdminServer> = (0..3).map(|_| serve_with_admin(&[], &[])).collect();
    let (listen, sink) = (unused_port(), unused_port());
    let tcp: Vec<SocketAddr> = instances.iter().map(|i| i.tcp).collect();
    let Some(mut nginx) = nginx(&recipe(listen, &tcp, sink)) else { return };
    nginx.wait_listening(&[listen]);
    nginx.wait_bound_udp(&[listen, sink]);
    let balancer: SocketAddr = ([127, 0, 0, 1], listen).into();

    // The conformance probe passes through the balancer, over both transports.
    for transport in ["--tcp", "--udp"] {
        let mut check = upcase();
        check.args(["check", transport, "--to", &balancer.to_string()]);
        let output = run("upcase check", check, b"", PATIENCE);
        let verdict = output.text().lines().last().unwrap_or_default().to_owned();
        println!("upcase check {transport} through nginx: {verdict}");
        assert_eq!(output.status.code(), Some(0), "{}\n{}", output.text(), nginx.stderr());
    }

    // A short bench over each transport: not an error, and every instance takes part.
    let before: Vec<(u64, u64)> = instances.iter().map(served).collect();
    let tcp_run = bench(balancer, &["--duration", "1s", "--conns", "4"]);
    let udp_run = bench(balancer, &["--udp", "--duration", "1s", "--conns", "4"]);
    let (tcp_run, udp_run) = (tcp_run.join().unwrap(), udp_run.join().unwrap());
    println!("bench through nginx: tcp rr {tcp_run:?}; udp rr {udp_run:?}");
    assert!(tcp_run.requests > 0 && udp_run.requests > 0);
    assert_eq!((tcp_run.errors(), udp_run.errors()), (0, 0), "{}", nginx.stderr());
    for (instance, before) in instances.iter().zip(&before) {
        let now = served(instance);
        assert!(now.0 > before.0 && now.1 > before.1, "an instance got no traffic: {before:?} → {now:?}");
    }

    // Stop the second instance once a TCP bench (a new connection per request) and a UDP bench
    // are both flowing through it.
    let tcp_run = bench(balancer, &["--pattern", "crr", "--duration", "4s", "--conns", "4"]);
    let udp_run = bench(balancer, &["--udp", "--duration", "4s", "--conns", "4", "--timeout", "500ms"]);
    let start = served(&instances[1]);
    let deadline = Instant::now() + PATIENCE;
    while served(&instances[1]).0 < start.0 + 50 || served(&instances[1]).1 < start.1 + 50 {
        assert!(Instant::now() < deadline, "the benches never reached the second instance");
        std::thread::sleep(Duration::from_millis(20));
    }
    let at_stop: Vec<(u64, u64)> = instances.iter().map(served).collect();
    instances[1].guard.sigterm();
    let stopped_at = Instant::now();
    let status = instances[1].guard.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "{}", instances[1].guard.stderr());
    let (tcp_run, udp_run) = (tcp_run.join().unwrap(), udp_run.join().unwrap());
    let after: Vec<(u64, u64)> = [&instances[0], &instances[2]].into_iter().map(served).collect();
    println!("stopping instance 2 of 3 during the benches: tcp crr {tcp_run:?}; udp rr {udp_run:?}");
    println!(
        "  instances 1 and 3 after the stop: tcp {:?} → {:?}, udp {:?} → {:?}",
        (at_stop[0].0, at_stop[2].0),
        (after[0].0, after[1].0),
        (at_stop[0].1, at_stop[2].1),
        (after[0].1, after[1].1)
    );
    // The benches went on through the other two.
    assert!(after[0].0 > at_stop[0].0 && after[1].0 > at_stop[2].0, "TCP did not go on after the stop");
    assert!(after[0].1 > at_stop[0].1 && after[1].1 > at_stop[2].1, "UDP did not go on after the stop");
    // TCP: nginx's connect to the stopped instance is refused and it tries the next one, so a
    // client sees nothing. The instance also serves, within its grace, every connection the
    // kernel had completed when it stopped. What is left: a connection the kernel completed in
    // the instant between the instance's last accept and the close of its listener, which the
    // close resets; nginx then closes its client's side without a byte, which the bench counts
    // as a wrong (empty) reply. At most one per flow, and never a reply with other bytes.
    assert!(tcp_run.errors() <= FLOWS, "tcp {tcp_run:?}: more errors than flows in flight");
    assert_eq!(tcp_run.errors(), tcp_run.wrong, "tcp {tcp_run:?}: only empty replies");
    assert!(only_empty_replies(&tcp_run), "tcp {tcp_run:?}");
    // UDP: a datagram nginx sent to the stopped instance gets ICMP "port unreachable", which
    // nginx answers with an empty datagram (a wrong reply to the bench) and which marks the
    // instance failed (max_fails=1) for 10 s: one per nginx worker (there is one). A datagram
    // that arrived just after the instance answered the last of its queue is lost (a timeout):
    // at most one per flow.
    assert!(udp_run.wrong <= 1, "udp {udp_run:?}: an empty reply for each datagram after the first failure");
    assert!(only_empty_replies(&udp_run), "udp {udp_run:?}");
    assert!(udp_run.timeouts <= FLOWS, "udp {udp_run:?}: more lost than flows in flight");
    assert_eq!(udp_run.connection, 0);

    // New clients after the stop see no error at all: TCP always, UDP while nginx keeps the
    // instance marked failed (10 s; after that it sends it one datagram again).
    let tcp_after = bench(balancer, &["--pattern", "crr", "--duration", "1s", "--conns", "4"]);
    let udp_after = bench(balancer, &["--udp", "--duration", "1s", "--conns", "4", "--timeout", "500ms"]);
    let (tcp_after, udp_after) = (tcp_after.join().unwrap(), udp_after.join().unwrap());
    println!("after the stop: tcp crr {tcp_after:?}; udp rr {udp_after:?}");
    assert!(tcp_after.requests > 0 && udp_after.requests > 0);
    assert_eq!(tcp_after.errors(), 0, "a new TCP connection after the drain failed: {}", nginx.stderr());
    let retries = stopped_at.elapsed().as_secs() / 10;
    assert!(
        udp_after.errors() <= retries,
        "udp {udp_after:?}, {retries} retries of the failed instance allowed"
    );
    drop(nginx);
}
