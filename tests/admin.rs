//! The admin endpoint of the real `upcase serve --admin` binary: `/metrics` counts exactly the
//! traffic sent, `/health` turns 503 as soon as a SIGTERM starts the drain (while a stream is
//! still being served in its grace period), `/status.json` shows a real connection's 4-tuple and
//! bytes and lists at most its cap, and the admin port is never a service port.
//!
//! What bad input on the admin port does to the service is in `tests/admin_abuse.rs`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use support::admin::{get, get_until, parse_scrape, serve_with_admin};
use support::{run, upcase, PATIENCE, SENTENCE, SHOUTED};

/// Sends SIGTERM to a child process.
fn sigterm(pid: u32) {
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("run kill");
    assert!(status.success(), "kill -TERM {pid} failed");
}

/// A TCP connection kept open, with one exchange done on it.
fn open_connection(addr: std::net::SocketAddr, message: &[u8], reply_len: usize) -> TcpStream {
    let mut stream = TcpStream::connect_timeout(&addr, PATIENCE).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(message).unwrap();
    let mut reply = vec![0; reply_len];
    stream.read_exact(&mut reply).unwrap();
    stream
}

/// Must hold: after 5 TCP connections and 3 datagrams of known sizes, a scrape parses as strict
/// Prometheus text, and its counters, gauges and histograms are exactly that traffic: connections
/// and bytes each way, datagrams and their sizes in the right buckets, durations counted per
/// connection, every server counter exported, the limit and build information.
#[test]
fn metrics_count_exactly_the_traffic_sent() {
    let server = serve_with_admin(&[], &["--max-connections", "777"]);
    let mut tcp_in = 0;
    let mut tcp_out = 0;
    for i in 0..5 {
        let message = format!("{SENTENCE} {i}");
        let (reply, error) = support::tcp_reply_and_error(server.tcp, message.as_bytes());
        assert!(error.is_none(), "{error:?}");
        assert_eq!(String::from_utf8(reply.clone()).unwrap(), format!("{SHOUTED} {i}"));
        tcp_in += message.len();
        tcp_out += reply.len();
    }
    let datagram_sizes = [10, 100, 5_000];
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    socket.connect(server.udp).unwrap();
    for size in datagram_sizes {
        socket.send(&vec![b'a'; size]).unwrap();
        let mut reply = vec![0; 8_192];
        assert_eq!(socket.recv(&mut reply).unwrap(), size);
    }
    let udp_bytes: usize = datagram_sizes.iter().sum();

    // A connection is counted as it ends, a moment after its client has read to the end; a
    // reply as it is sent, a moment after its client may have it.
    let response = get_until(server.admin, "/metrics", "5 connections ended and 3 replies sent", |r| {
        r.body.contains("upcase_tcp_connection_duration_seconds_count 5")
            && r.body.contains("upcase_udp_replies_total 3")
    });
    assert_eq!(response.status, 200);
    assert_eq!(response.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let scrape = parse_scrape(&response.body);

    assert_eq!(scrape.integer("upcase_tcp_accepted_total"), 5);
    assert_eq!(scrape.integer("upcase_tcp_received_bytes_total"), tcp_in as u64);
    assert_eq!(scrape.integer("upcase_tcp_sent_bytes_total"), tcp_out as u64);
    assert_eq!(scrape.integer("upcase_udp_requests_total"), 3);
    assert_eq!(scrape.integer("upcase_udp_replies_total"), 3);
    assert_eq!(scrape.integer("upcase_udp_received_bytes_total"), udp_bytes as u64);
    assert_eq!(scrape.integer("upcase_udp_sent_bytes_total"), udp_bytes as u64);
    assert_eq!(scrape.integer("upcase_tcp_errors_total"), 0);
    assert_eq!(scrape.integer("upcase_tcp_connections_open"), 0);
    assert_eq!(scrape.integer("upcase_tcp_connections_limit"), 777);
    assert_eq!(scrape.integer("upcase_draining"), 0);
    assert_eq!(scrape.value("upcase_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
    assert!(scrape.integer("process_resident_memory_bytes") > 1 << 20);
    assert!(scrape.integer("process_open_fds") >= 3, "the two service sockets and the admin one");

    let udp = [("transport", "udp")];
    assert_eq!(scrape.value("upcase_request_size_bytes_count", &udp), 3.0);
    assert_eq!(scrape.value("upcase_request_size_bytes_sum", &udp), udp_bytes as f64);
    let cumulative: Vec<u64> =
        scrape.buckets("upcase_request_size_bytes", &udp).iter().map(|b| b.1).collect();
    // Bounds 16, 64, 256, 1024, 4096, 16384...: 10 bytes, then 100, then 5,000.
    assert_eq!(cumulative[..6], [1, 1, 2, 2, 2, 3]);
    let tcp = [("transport", "tcp")];
    assert_eq!(scrape.value("upcase_request_size_bytes_count", &tcp), 5.0);
    assert_eq!(scrape.value("upcase_request_size_bytes_sum", &tcp), tcp_in as f64);
    assert_eq!(scrape.integer("upcase_tcp_connection_duration_seconds_count"), 5);
    assert_eq!(scrape.types["upcase_tcp_connection_duration_seconds"], "histogram");

    // Every counter the server keeps is exported, under the name the exporter gives it.
    let snapshot = upcase::server::Snapshot::default();
    for (field, _) in snapshot.fields() {
        if field == "tcp_open" {
            continue; // the gauge upcase_tcp_connections_open
        }
        let (name, unit) = upcase::admin::metric_name(field);
        let unit = unit.map_or(String::new(), |u| format!("_{}", u.as_str()));
        assert_eq!(
            scrape.types.get(&format!("{name}{unit}_total")).map(String::as_str),
            Some("counter"),
            "{field}"
        );
    }

    // A connection held open is a gauge of one.
    let _held = open_connection(server.tcp, b"x", 1);
    get_until(server.admin, "/metrics", "one open connection", |r| {
        parse_scrape(&r.body).integer("upcase_tcp_connections_open") == 1
    });
}

/// Must hold: `/health` is 200 while serving and 503 from the moment SIGTERM starts the drain,
/// while a TCP stream is still being served in its grace period (so a balancer stops sending
/// before the grace ends); the stream keeps getting answers, and once it ends the server exits 0.
#[test]
fn health_turns_503_when_a_drain_starts() {
    let mut server = serve_with_admin(&[], &["--grace", "60s"]);
    let health = get(server.admin, "/health");
    assert_eq!((health.status, health.body.as_str()), (200, "serving\n"));
    let mut stream = open_connection(server.tcp, b"before ", 7);

    sigterm(server.guard.pid());
    let draining = get_until(server.admin, "/health", "503", |r| r.status == 503);
    assert_eq!(draining.body, "draining\n");
    assert!(server.guard.is_running(), "the server must still be in its grace period");
    let metrics = parse_scrape(&get(server.admin, "/metrics").body);
    assert_eq!(metrics.integer("upcase_draining"), 1);
    assert_eq!(metrics.integer("upcase_tcp_connections_open"), 1);

    // The stream in its grace period is still served, byte for byte.
    stream.write_all(b"after").unwrap();
    let mut reply = [0; 5];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"AFTER");
    stream.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let status = server.guard.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", server.guard.stderr());
}

/// Must hold: `/status.json` shows a real open connection: its 4-tuple exactly as the client sees
/// it, the kernel's byte counts of what was sent each way, its state and age; and the counters.
/// In every model: the async one finds the socket through the descriptor in its worker's entry,
/// the blocking ones through their second handle on it.
#[test]
fn status_shows_a_connection_by_its_4_tuple() {
    for model in ["async", "threaded", "iterative"] {
        status_shows_a_connection_in(model);
    }
}

fn status_shows_a_connection_in(model: &str) {
    let server = serve_with_admin(&[], &["--model", model]);
    let stream = open_connection(server.tcp, b"hello", 5);
    let (client, service) = (stream.local_addr().unwrap(), stream.peer_addr().unwrap());
    let response = get_until(server.admin, "/status.json", "the connection with its bytes acked", |r| {
        r.body.contains(&client.to_string()) && r.body.contains("\"bytes_acked\":5")
    });
    assert_eq!(response.headers["content-type"], "application/json");
    let status: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(status["connections"]["open"], 1);
    let connection = &status["connections"]["listed"][0];
    assert_eq!(connection["client"], client.to_string(), "{model}");
    assert_eq!(connection["server"], service.to_string(), "{model}");
    assert_eq!(connection["state"], "ESTAB", "{model}");
    assert_eq!(connection["bytes_received"], 5, "{model}");
    assert_eq!(status["model"], model);
    assert!(connection["age_ms"].as_u64().unwrap() < PATIENCE.as_millis() as u64 * 2);
    assert_eq!(status["counters"]["tcp_bytes_in"], 5);
    assert_eq!(status["counters"]["tcp_open"], 1);
    let listening: Vec<String> = status["listening"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{} {}", s["transport"].as_str().unwrap(), s["address"].as_str().unwrap()))
        .collect();
    assert_eq!(listening, [format!("tcp {}", server.tcp), format!("udp {}", server.udp)]);
    assert_eq!(status["draining"], false);
}

/// Must hold: with more connections open than a status lists, it lists the cap, oldest first,
/// and says how many are open in all: a scrape stays bounded however many clients there are.
#[test]
fn status_lists_at_most_its_cap_oldest_first() {
    let open = upcase::admin::status::MAX_LISTED + 100;
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(limit > 2 * open as u64 + 100, "needs {open} sockets; the open file limit is {limit}");
    let server = serve_with_admin(&[], &[]);
    let first = open_connection(server.tcp, b"first", 5);
    let first_client = first.local_addr().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(20));
    let _streams: Vec<TcpStream> =
        (1..open).map(|_| TcpStream::connect_timeout(&server.tcp, PATIENCE).unwrap()).collect();
    let response = get_until(server.admin, "/status.json", "every connection open", |r| {
        r.body.contains(&format!("\"open\":{open},"))
    });
    let status: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    let listed = status["connections"]["listed"].as_array().unwrap();
    assert_eq!(listed.len(), upcase::admin::status::MAX_LISTED);
    assert_eq!(listed[0]["client"], first_client, "the oldest first");
    let ages: Vec<u64> = listed.iter().map(|c| c["age_ms"].as_u64().unwrap()).collect();
    assert!(ages.windows(2).all(|w| w[0] >= w[1]), "oldest first: {ages:?}");
}

/// Must hold: `--admin` on a service address is refused at start with a message saying so,
/// whether the address serves both transports or only UDP (where a TCP bind would succeed).
#[test]
fn the_admin_port_is_never_a_service_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    for only in [None, Some("--udp")] {
        let mut command = upcase();
        command.args(["serve", "--listen", &address, "--admin", &address]).args(only);
        let output = run("upcase serve --admin <service address>", command, b"", PATIENCE);
        assert_eq!(output.status.code(), Some(1), "{only:?}: {}", output.stderr);
        assert!(output.stderr.contains("is a service address"), "{only:?}: {}", output.stderr);
    }
}

/// Must hold: the admin endpoint answers only GET and HEAD, and unknown paths with 404.
#[test]
fn only_get_and_head_on_known_paths() {
    let server = serve_with_admin(&[], &[]);
    let post = support::admin::exchange(
        server.admin,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    )
    .unwrap();
    let post = support::admin::parse_response(&post).unwrap();
    assert_eq!((post.status, post.headers["allow"].as_str()), (405, "GET, HEAD"));
    assert_eq!(get(server.admin, "/nothing-here").status, 404);
    let page = get(server.admin, "/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>upcase status</title>") && page.body.contains("/status.json"));
    assert!(!page.body.contains("src=\"http"), "no outside assets");
    let head = support::admin::exchange(
        server.admin,
        b"HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"), "{head:?}");
}
