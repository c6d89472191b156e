//! The five lecture examples in `examples/`, run as the programs they are: each client against
//! `upcase serve`, each server answered by `upcase send` and by hand-made clients, byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use support::*;

/// The examples are built by a plain `cargo test`, but not by `cargo test --test examples`, and
/// may be stale after an edit; so build them once per run (a no-op when they are fresh), into
/// the target directory and profile this test binary comes from.
fn example(name: &str) -> Command {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        // This binary is <target>/<profile>/deps/examples-HASH; examples are in <profile>/examples.
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let profile_dir = exe.parent().and_then(|deps| deps.parent()).ok_or("unexpected test binary path")?;
        let target_dir = profile_dir.parent().ok_or("unexpected test binary path")?;
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args([
                "build",
                "--examples",
                "--manifest-path",
                concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
            ])
            .arg("--target-dir")
            .arg(target_dir);
        match profile_dir.file_name().and_then(|name| name.to_str()) {
            Some("debug") => {}
            Some("release") => {
                cargo.arg("--release");
            }
            Some(profile) => {
                cargo.args(["--profile", profile]);
            }
            None => return Err("unexpected test binary path".to_owned()),
        }
        let output = run("cargo build --examples", cargo, b"", Duration::from_secs(600));
        if !output.status.success() {
            return Err(format!("cargo build --examples failed:\n{}", output.stderr));
        }
        Ok(profile_dir.join("examples"))
    });
    match built {
        Ok(dir) => Command::new(dir.join(name)),
        Err(why) => panic!("cannot build the examples: {why}"),
    }
}

/// Starts an example server on a free port of 127.0.0.1.
fn serve_example(name: &str) -> (Guard, SocketAddr) {
    let mut command = example(name);
    command.arg("127.0.0.1:0");
    start_server(name, command, |line| {
        line.strip_prefix("The server is ready to receive on ")?.trim().parse().ok()
    })
}

/// Runs an example client against `server`, typing `sentence` and Enter at its prompt.
fn run_client(name: &str, server: SocketAddr, sentence: &[u8]) -> Output {
    let mut command = example(name);
    command.arg(server.to_string());
    run(name, command, &[sentence, b"\n"].concat(), PATIENCE)
}

fn expected(prefix: &str, reply: &[u8]) -> Vec<u8> {
    [PROMPT.as_bytes(), prefix.as_bytes(), reply, b"\n"].concat()
}

// ---- The clients, against upcase's own server ----

#[test]
fn udp_client_against_upcase_serve() {
    let server = serve_upcase(&["--udp"]);
    let output = run_client("udp_client", server.udp(), SENTENCE.as_bytes());
    output.assert_success("udp_client");
    assert_eq!(output.text(), format!("{PROMPT}{SHOUTED}\n"));
}

#[test]
fn udp_client_receives_a_reply_longer_than_the_slides_buffer() {
    let server = serve_upcase(&["--udp"]);
    let (message, reply) = long_message(5_000);
    let output = run_client("udp_client", server.udp(), &message);
    output.assert_success("udp_client");
    assert_eq!(output.stdout, expected("", &reply));
}

#[test]
fn udp_client_retries_then_gives_up_instead_of_hanging() {
    // A UDP socket that reads and never answers: the slide's client would wait forever.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = Instant::now();
    let output = run_client("udp_client", silent.local_addr().unwrap(), b"anyone there");
    assert!(!output.status.success(), "it cannot succeed without a reply; stdout: {:?}", output.text());
    assert_eq!(output.text(), PROMPT);
    assert!(started.elapsed() >= Duration::from_millis(2_500), "three one-second waits");
    silent.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut buffer = [0; 64];
    let mut attempts = 0;
    while let Ok((len, _)) = silent.recv_from(&mut buffer) {
        assert_eq!(&buffer[..len], b"anyone there");
        attempts += 1;
    }
    assert_eq!(attempts, 3, "one send and two retries");
}

#[test]
fn tcp_client_against_upcase_serve() {
    let server = serve_upcase(&["--tcp"]);
    let output = run_client("tcp_client", server.tcp(), SENTENCE.as_bytes());
    output.assert_success("tcp_client");
    // Two spaces, as the slide's print('From Server: ', ...) prints.
    assert_eq!(output.text(), format!("{PROMPT}From Server:  {SHOUTED}\n"));
}

#[test]
fn tcp_client_reads_the_whole_of_a_long_reply() {
    let server = serve_upcase(&["--tcp"]);
    let (message, reply) = long_message(50_000);
    let output = run_client("tcp_client", server.tcp(), &message);
    output.assert_success("tcp_client");
    assert_eq!(output.stdout, expected("From Server:  ", &reply));
}

// ---- The UDP server ----

#[test]
fn udp_server_answered_by_upcase_send() {
    let (_server, addr) = serve_example("udp_server");
    let output = upcase_send(&["--udp", "--to", &addr.to_string(), SENTENCE], b"");
    output.assert_success("upcase send --udp");
    assert_eq!(output.text(), format!("{SHOUTED}\n"));
}

#[test]
fn udp_server_never_cuts_a_datagram() {
    let (_server, addr) = serve_example("udp_server");
    let (message, reply) = long_message(60_000);
    let output =
        upcase_send(&["--udp", "--to", &addr.to_string(), std::str::from_utf8(&message).unwrap()], b"");
    output.assert_success("upcase send --udp");
    assert_eq!(output.stdout, [&reply[..], b"\n"].concat());
}

#[test]
fn udp_server_passes_invalid_utf8_through_and_keeps_serving() {
    let (mut server, addr) = serve_example("udp_server");
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buffer = [0; 64];
    for (request, reply) in [
        (&b"caf\xc3\xa9 \xff\xfe ok"[..], &b"CAF\xc3\x89 \xff\xfe OK"[..]),
        (b"", b""),
        (b"still here", b"STILL HERE"),
    ] {
        client.send_to(request, addr).unwrap();
        let (len, from) = client.recv_from(&mut buffer).expect("a reply");
        assert_eq!((&buffer[..len], from), (reply, addr));
    }
    assert!(server.is_running());
}

// ---- The TCP servers: the same checks for the iterative and the threaded one ----

macro_rules! tcp_server_tests {
    ($module:ident, $example:literal) => {
        mod $module {
            use super::*;

            #[test]
            fn answered_by_upcase_send() {
                let (_server, addr) = serve_example($example);
                let output = upcase_send(&["--to", &addr.to_string(), SENTENCE], b"");
                output.assert_success("upcase send");
                assert_eq!(output.text(), format!("{SHOUTED}\n"));
            }

            #[test]
            fn never_cuts_a_100_000_byte_message() {
                let (_server, addr) = serve_example($example);
                let (message, reply) = long_message(100_000);
                // From a pipe, `upcase send` streams stdin through the server, reply unchanged.
                let output = upcase_send(&["--to", &addr.to_string()], &message);
                output.assert_success("upcase send");
                assert_eq!(output.stdout.len(), reply.len());
                assert!(output.stdout == reply, "the reply differs from the expected uppercase");
            }

            #[test]
            fn passes_invalid_utf8_through() {
                let (_server, addr) = serve_example($example);
                assert_eq!(tcp_reply(addr, b"caf\xc3\xa9 \xff\xfe ok"), b"CAF\xc3\x89 \xff\xfe OK");
            }

            #[test]
            fn answers_the_slides_client_which_never_shuts_down_its_side() {
                let (_server, addr) = serve_example($example);
                // Send once, receive once, close: no shutdown(Write) for the server to see.
                let mut stream = connect(addr);
                stream.write_all(b"hello").unwrap();
                let mut reply = [0; 5];
                stream.read_exact(&mut reply).expect("the reply while the connection is open");
                assert_eq!(&reply, b"HELLO");
                drop(stream);
                // Its close ended that connection: the (iterative) server is free for the next.
                let output = upcase_send(&["--to", &addr.to_string(), "next"], b"");
                output.assert_success("upcase send");
                assert_eq!(output.text(), "NEXT\n");
            }

            #[test]
            fn survives_a_client_that_resets() {
                let (mut server, addr) = serve_example($example);
                // Closing with the reply unread makes the kernel reset the connection, so the
                // server's next write or read on it fails.
                for _ in 0..3 {
                    let mut stream = connect(addr);
                    stream.write_all(&[b'x'; 10_000]).unwrap();
                    thread::sleep(Duration::from_millis(50)); // Let the reply arrive, unread.
                    drop(stream);
                }
                let output = upcase_send(&["--to", &addr.to_string(), "still", "here"], b"");
                output.assert_success("upcase send");
                assert_eq!(output.text(), "STILL HERE\n");
                assert!(server.is_running());
            }
        }
    };
}

tcp_server_tests!(tcp_server, "tcp_server");
tcp_server_tests!(tcp_server_threaded, "tcp_server_threaded");

#[test]
fn threaded_server_serves_a_second_client_while_a_first_is_silent() {
    let (_server, addr) = serve_example("tcp_server_threaded");
    let _silent = connect(addr);
    thread::sleep(Duration::from_millis(100)); // Accepted by now, and its thread waiting.
    let output = upcase_send(&["--to", &addr.to_string(), SENTENCE], b"");
    output.assert_success("upcase send");
    assert_eq!(output.text(), format!("{SHOUTED}\n"));
}

#[test]
fn iterative_server_makes_a_second_client_wait_for_the_first() {
    // The slide's limitation, kept on purpose and shown here: one connection at a time.
    let (_server, addr) = serve_example("tcp_server");
    let first = connect(addr);
    thread::sleep(Duration::from_millis(100));
    let mut second = connect(addr);
    second.write_all(b"waiting").unwrap();
    second.shutdown(std::net::Shutdown::Write).unwrap();
    second.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut reply = Vec::new();
    let waited = second.read_to_end(&mut reply);
    assert!(
        waited.is_err() && reply.is_empty(),
        "no answer while the first client is connected: {waited:?} {reply:?}"
    );
    drop(first);
    second.set_read_timeout(Some(PATIENCE)).unwrap();
    second.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"WAITING");
}
