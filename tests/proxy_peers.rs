//! `upcase serve --proxy-protocol` behind the real proxies that speak it, from Debian: HAProxy
//! (`send-proxy-v2` and `send-proxy`, version 1) and nginx's stream module (`proxy_protocol on`),
//! each started here on loopback with a configuration of its own. What the server sees of a
//! client, in its log lines, its status page (`/status.json`) and its per-source limit, is the
//! client's own address, not the proxy's: the client's port (the proxy connects from another)
//! through the real proxies, and an address loopback cannot have (10.1.2.3) from a header the
//! test writes.
//!
//! Without HAProxy or nginx these tests skip with a note, unless `UPCASE_REQUIRE_TOOLS=1` (CI).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::admin::{get, get_until, parse_scrape, start_admin_server, AdminServer};
use support::proxy::{haproxy, nginx, read_to_end, v2};
use support::*;

/// `upcase serve --proxy-protocol --trusted-proxy 127.0.0.1 --admin` in `model`, logging every
/// connection (RUST_LOG=debug), with `extra` flags.
fn serve_behind_proxy(model: &str, extra: &[&str]) -> AdminServer {
    let mut command = upcase();
    command.env("RUST_LOG", "debug").args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--model",
        model,
        "--proxy-protocol",
        "--trusted-proxy",
        "127.0.0.1",
    ]);
    command.args(extra);
    start_admin_server(command)
}

/// Waits (bounded) until the server's stderr has a line containing every one of `parts`;
/// returns that line.
fn log_line(server: &AdminServer, parts: &[&str]) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stderr = server.guard.stderr();
        if let Some(line) = stderr.lines().find(|line| parts.iter().all(|part| line.contains(part))) {
            return line.to_owned();
        }
        assert!(Instant::now() < deadline, "no log line with {parts:?} in:\n{stderr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A connection through `proxy`, held open after one exchange, for the status page to list.
fn held_through(proxy: SocketAddr) -> TcpStream {
    let mut stream = connect(proxy);
    stream.write_all(b"held").unwrap();
    assert_eq!(read_exactly(&mut stream, 4), b"HELD");
    stream
}

/// The status page lists `client` (the test's own socket, as the proxy accepted it) with the
/// proxy's connection as `proxy`, and the log line of its opening names both.
fn server_sees_the_client(server: &AdminServer, client: SocketAddr, version: u8) {
    let status = get_until(server.admin, "/status.json", "the held connection", |r| {
        r.body.contains(&format!("\"client\":\"{client}\""))
    });
    let status: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    let listed = status["connections"]["listed"].as_array().unwrap();
    let entry = listed.iter().find(|c| c["client"] == client.to_string()).unwrap();
    let proxy: SocketAddr = entry["proxy"].as_str().unwrap().parse().unwrap();
    assert_ne!(proxy, client, "the proxy connects from a socket of its own");
    assert_eq!(entry["server"], server.tcp.to_string());
    let line =
        log_line(server, &["connection opened", &format!("client={client}"), &format!("proxy={proxy}")]);
    assert!(line.contains(&format!("proxy_protocol={version}")), "{line}");
}

/// HAProxy in front, one frontend sending version 2 headers and one sending version 1: both
/// carry the client through, which the server logs and lists.
#[test]
fn haproxy_carries_the_client_with_either_version() {
    let server = serve_behind_proxy("async", &[]);
    let (v2_port, v1_port) = (unused_port(), unused_port());
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\n\
         listen v2\n    bind 127.0.0.1:{v2_port}\n    server upcase {upcase} send-proxy-v2\n\n\
         listen v1\n    bind 127.0.0.1:{v1_port}\n    server upcase {upcase} send-proxy\n",
        upcase = server.tcp
    );
    let Some(mut haproxy) = haproxy(&config) else { return };
    haproxy.wait_listening(&[v2_port, v1_port]);
    for (port, version) in [(v2_port, 2), (v1_port, 1)] {
        let proxy: SocketAddr = ([127, 0, 0, 1], port).into();
        assert_eq!(tcp_reply(proxy, SENTENCE.as_bytes()), SHOUTED.as_bytes(), "v{version}");
        let held = held_through(proxy);
        server_sees_the_client(&server, held.local_addr().unwrap(), version);
    }
    let stats = parse_scrape(&get(server.admin, "/metrics").body);
    assert_eq!(stats.integer("upcase_tcp_proxy_missing_total"), 0);
    assert_eq!(stats.integer("upcase_tcp_proxy_malformed_total"), 0);
    drop(haproxy);
}

/// nginx's stream module in front (`proxy_protocol on`, version 1), of the threaded model this
/// time: the client comes through, and a direct connection, without a header, is refused.
/// (`proxy_half_close on`: a client that shuts its side down to say it has finished still gets
/// its reply, where by default nginx would close both sides.)
#[test]
fn nginx_carries_the_client() {
    let server = serve_behind_proxy("threaded", &[]);
    let port = unused_port();
    let config = format!(
        "stream {{\n    server {{\n        listen 127.0.0.1:{port};\n        proxy_pass {};\n        \
         proxy_protocol on;\n        proxy_half_close on;\n    }}\n}}",
        server.tcp
    );
    let Some(mut nginx) = nginx(&config) else { return };
    nginx.wait_listening(&[port]);
    let proxy: SocketAddr = ([127, 0, 0, 1], port).into();
    assert_eq!(tcp_reply(proxy, SENTENCE.as_bytes()), SHOUTED.as_bytes());
    let held = held_through(proxy);
    server_sees_the_client(&server, held.local_addr().unwrap(), 1);

    let mut direct = connect(server.tcp);
    direct.write_all(b"no header here").unwrap();
    assert!(read_to_end(&mut direct).bytes.is_empty(), "never echoed");
    let line = log_line(&server, &["closing a connection without serving it", "no PROXY header"]);
    assert!(line.contains(&format!("peer={}", direct.local_addr().unwrap())), "{line}");
    get_until(server.admin, "/metrics", "one missing header", |r| {
        parse_scrape(&r.body).integer("upcase_tcp_proxy_missing_total") == 1
    });
    drop(nginx);
}

/// In every model, a header claiming 10.1.2.3 (127.0.0.1 is trusted) makes 10.1.2.3 the client:
/// in the log line, on the status page, and under the per-source limit (one connection each),
/// whose refusal is logged with the claimed address and counted in the metrics.
#[test]
fn logs_status_and_limit_see_the_claimed_client() {
    for model in ["async", "threaded", "iterative"] {
        let server = serve_behind_proxy(model, &["--max-connections-per-source", "1"]);
        let claimed: SocketAddr = "10.1.2.3:5555".parse().unwrap();
        let mut held = connect(server.tcp);
        held.write_all(&[v2(claimed, server.tcp, 0).as_slice(), b"held"].concat()).unwrap();
        assert_eq!(read_exactly(&mut held, 4), b"HELD");

        let status = get_until(server.admin, "/status.json", "10.1.2.3", |r| r.body.contains("10.1.2.3"));
        let status: serde_json::Value = serde_json::from_str(&status.body).unwrap();
        let entry = &status["connections"]["listed"][0];
        assert_eq!(entry["client"], claimed.to_string(), "{model}");
        assert_eq!(entry["proxy"], held.local_addr().unwrap().to_string(), "{model}");
        log_line(&server, &["connection opened", "client=10.1.2.3:5555", "proxy_protocol=2"]);

        if model != "iterative" {
            // A second connection from the same claimed source is over its share of one.
            let mut second = connect(server.tcp);
            second
                .write_all(&[v2("10.1.2.3:6666".parse().unwrap(), server.tcp, 0).as_slice(), b"no"].concat())
                .unwrap();
            assert!(read_to_end(&mut second).bytes.is_empty(), "{model}");
            let line = log_line(&server, &["per-source connection limit reached", "client=10.1.2.3:6666"]);
            assert!(line.contains("source=10.1.2.3"), "{line}");
            get_until(server.admin, "/metrics", "one refused", |r| {
                parse_scrape(&r.body).integer("upcase_tcp_rejected_per_source_total") == 1
            });
        }
    }
}
