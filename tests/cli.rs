//! The `upcase` binary as a user runs it: `serve` and `send` in every mode, their failures, and
//! the everyday tools (nc, socat) against the server.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use support::*;

fn to(addr: std::net::SocketAddr) -> String {
    addr.to_string()
}

#[test]
fn serve_announces_tcp_and_udp_on_one_port() {
    let server = serve_upcase(&[]);
    assert_eq!(server.tcp().port(), server.udp().port());
    assert_ne!(server.tcp().port(), 0);
}

/// `localhost` is both loopbacks whatever /etc/hosts says; each gets its own free port here.
#[test]
fn serve_on_localhost_listens_on_both_loopbacks() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback on this machine; skipping");
        return;
    }
    let mut command = upcase();
    command.args(["serve", "--listen", "localhost:0"]);
    let mut lines = Vec::new();
    let (_server, ()) = start_server("upcase serve", command, |line| {
        lines.push(line.to_owned());
        (lines.len() == 4).then_some(())
    });
    for family in ["tcp 127.0.0.1:", "tcp [::1]:", "udp 127.0.0.1:", "udp [::1]:"] {
        let line = lines.iter().find(|l| l.starts_with(&format!("listening on {family}")));
        let addr = line.unwrap_or_else(|| panic!("no {family} in {lines:?}")).rsplit(' ').next().unwrap();
        let transport = if family.starts_with("udp") { "--udp" } else { "--tcp" };
        let out = upcase_send(&[transport, "--to", addr, "both"], b"");
        assert_eq!(out.assert_success("send").stdout, b"BOTH\n", "{family}");
    }
}

/// Listening beyond loopback is allowed, with one warning that names the protections.
#[test]
fn serve_warns_when_reachable_from_other_machines() {
    let mut command = upcase();
    command.args(["serve", "--tcp", "--listen", "0.0.0.0:0"]);
    let (server, ()) =
        start_server("upcase serve", command, |line| line.starts_with("listening on").then_some(()));
    let deadline = std::time::Instant::now() + PATIENCE;
    while !server.stderr().contains("ready") {
        assert!(std::time::Instant::now() < deadline, "no ready line: {}", server.stderr());
        thread::sleep(Duration::from_millis(10));
    }
    let log = server.stderr();
    assert!(log.contains("listening beyond loopback (tcp 0.0.0.0:"), "{log}");
    assert!(log.contains("--udp-rate") && log.contains("--max-connections"), "{log}");
    assert!(log.contains("1000 per source (--max-connections-per-source)"), "{log}");
}

#[test]
fn serve_one_transport_only() {
    let udp_only = serve_upcase(&["--udp"]);
    assert!(udp_only.tcp.is_none());
    let out = upcase_send(&["--udp", "--to", &to(udp_only.udp()), "only udp"], b"");
    assert_eq!(out.assert_success("send --udp").stdout, b"ONLY UDP\n");

    let tcp_only = serve_upcase(&["--tcp", "--model", "threaded"]);
    assert!(tcp_only.udp.is_none());
    let out = upcase_send(&["--to", &to(tcp_only.tcp()), "only", "tcp"], b"");
    assert_eq!(out.assert_success("send").stdout, b"ONLY TCP\n");
}

#[test]
fn send_text_arguments_over_tcp_and_udp() {
    let server = serve_upcase(&[]);
    let out = upcase_send(&["--to", &to(server.tcp()), SENTENCE], b"");
    assert_eq!(out.assert_success("send").text(), format!("{SHOUTED}\n"));
    let out = upcase_send(&["--udp", "--to", &to(server.udp()), SENTENCE], b"");
    assert_eq!(out.assert_success("send --udp").text(), format!("{SHOUTED}\n"));
}

/// A pipe over TCP streams: 8 MiB goes through with sending and receiving at once (the server's
/// and the kernel's buffers are far smaller, so a client that did one then the other would hang).
#[test]
fn send_streams_a_pipe_over_tcp() {
    let server = serve_upcase(&[]);
    let unit = "line of text, straße ﬁne\n";
    let input = unit.repeat(8 * 1024 * 1024 / unit.len());
    let out = upcase_send(&["--to", &to(server.tcp())], input.as_bytes());
    out.assert_success("send < pipe");
    assert!(out.stdout == input.to_uppercase().as_bytes(), "reply differs ({} bytes)", out.stdout.len());
}

#[test]
fn send_over_udp_sends_a_datagram_per_line_and_prints_replies_in_order() {
    let server = serve_upcase(&[]);
    let lines: Vec<String> = (0..100).map(|i| format!("line {i}, ß")).collect();
    let input = lines.join("\n") + "\n";
    let out = upcase_send(&["--udp", "--to", &to(server.udp())], input.as_bytes());
    out.assert_success("send --udp < pipe");
    assert_eq!(out.text(), input.to_uppercase());
}

#[test]
fn send_interactive_prompts_like_the_lecture() {
    let server = serve_upcase(&[]);
    for transport in ["--tcp", "--udp"] {
        let addr = if transport == "--tcp" { server.tcp() } else { server.udp() };
        let out = upcase_send(&["-i", transport, "--to", &to(addr)], "first one\r\nstraße\n".as_bytes());
        out.assert_success("send -i");
        assert_eq!(out.text(), format!("{PROMPT}FIRST ONE\n{PROMPT}STRASSE\n{PROMPT}\n"), "{transport}");
    }
}

#[test]
fn send_fails_with_one_clear_line_when_nothing_listens() {
    let target = format!("127.0.0.1:{}", unused_port());
    let cases: [(&[&str], &str); 3] = [
        (&["--to", &target, "hi"], "cannot connect to tcp"),
        (&["--udp", "--to", &target, "hi"], "no server on udp"),
        (&["--to", "no-such-host.invalid:12000", "hi"], "cannot resolve"),
    ];
    for (args, message) in cases {
        let out = upcase_send(args, b"");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.trim_end().lines().count(), 1, "one line: {}", out.stderr);
    }
}

/// Against a UDP socket that never answers: three tries (one and two retries), then a message.
#[test]
fn send_over_udp_retries_then_gives_up() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    silent.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let target = to(silent.local_addr().unwrap());
    let out = upcase_send(&["--udp", "--timeout", "200ms", "--to", &target, "anyone?"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("no reply from udp") && out.stderr.contains("3 attempt"), "{}", out.stderr);
    let mut buffer = [0; 16];
    let received = std::iter::from_fn(|| silent.recv(&mut buffer).ok()).count();
    assert_eq!(received, 3);
}

#[test]
fn send_rejects_a_bad_command_line_with_status_2() {
    let out = upcase_send(&["--udp", "--tcp", "x"], b"");
    assert_eq!(out.status.code(), Some(2));
    let out = upcase_send(&["--timeout", "soon", "x"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("500ms"), "{}", out.stderr);
}

/// The lecture's TCP server reads 1,024 bytes once and closes: `send` shows what came back and
/// says why the rest did not.
#[test]
fn send_shows_a_partial_reply_and_why_when_the_server_closes_early() {
    let (_python, port) = serve_python("tcp_server.py");
    let message = "a".repeat(2000);
    let out = upcase_send(&["--to", &format!("127.0.0.1:{port}"), &message], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("closed the connection before reading everything"), "{}", out.stderr);
    let shown = out.text();
    assert!("A".repeat(1024).starts_with(shown.trim_end()), "a prefix of the reply: {shown:?}");
}

#[test]
fn serve_stops_on_sigterm_with_status_0_and_a_summary() {
    let mut server = serve_upcase(&[]);
    let out = upcase_send(&["--to", &to(server.tcp()), "count me"], b"");
    out.assert_success("send");
    server.guard.sigterm();
    let status = server.guard.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0));
    let log = server.guard.stderr();
    assert!(log.contains("stopped:") && log.contains("tcp_accepted=1"), "{log}");
}

#[test]
fn serve_says_which_address_is_taken() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = to(taken.local_addr().unwrap());
    let mut command = upcase();
    command.args(["serve", "--tcp", "--listen", &addr]);
    let out = run("upcase serve", command, b"", PATIENCE);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains(&format!("cannot bind tcp {addr}")), "{}", out.stderr);
    assert!(out.stderr.contains("in use"), "{}", out.stderr);
}

// `nc` and `socat` are how people poke at a TCP service; CI installs them and sets
// `UPCASE_REQUIRE_TOOLS`, elsewhere the tests say what they skipped.

/// `nc` line by line: each line's reply arrives before the next line is typed.
#[test]
fn nc_gets_each_line_back_as_it_is_sent() {
    if !installed("nc") {
        return;
    }
    let server = serve_upcase(&[]);
    let mut nc = Command::new("nc");
    nc.args(["-N", "127.0.0.1", &server.tcp().port().to_string()]);
    nc.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Guard::spawn("nc", &mut nc);
    let mut stdin = child.take_stdin();
    let stdout = child.take_stdout();
    let (lines, received) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = lines.send(line.unwrap());
        }
    });
    for line in ["hello", "straße", "third line"] {
        writeln!(stdin, "{line}").unwrap();
        assert_eq!(received.recv_timeout(PATIENCE).unwrap(), line.to_uppercase());
    }
    drop(stdin);
    assert!(received.recv_timeout(PATIENCE).is_err(), "nc ends when the server closes");
}

#[test]
fn socat_over_tcp_and_udp() {
    if !installed("socat") {
        return;
    }
    let server = serve_upcase(&[]);
    for address in [format!("TCP:{}", server.tcp()), format!("UDP:{}", server.udp())] {
        let mut socat = Command::new("socat");
        socat.args(["-t", "2", "-", &address]);
        let out = run("socat", socat, "straße\n".as_bytes(), PATIENCE);
        assert_eq!(out.assert_success("socat").text(), "STRASSE\n", "{address}");
    }
}
