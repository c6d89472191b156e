//! Each client of the class (`tests/peers/class/`) does what its opening comment says, flaw and
//! all, so the verdicts the grader gives them can be trusted to be about real behaviour. They talk
//! to small servers played here, on free loopback ports. The servers of the class: `class.rs`.
//!
//! Needs python3 and gcc (failing under `UPCASE_REQUIRE_TOOLS` without them); the Java programs
//! run only where `javac` is installed, and are skipped with a note elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::thread;
use std::time::Duration;

use support::submissions::*;
use support::PATIENCE;
use upcase::check::program::{Ending, Program, Spec, Stopped};

/// How long a reply or the end of a connection is awaited when the point is that it never comes.
const NEVER: Duration = Duration::from_secs(1);

/// A client's run: whether it ended by itself within the wait, how it was stopped, its stdout.
struct ClientRun {
    ended: bool,
    stopped: Stopped,
    stdout: Vec<u8>,
}

/// Runs a client of the class with `sentence` on stdin against `port`, stopping it if it has not
/// ended within `wait`.
fn run_client(file: &'static str, port: u16, sentence: &str, wait: Duration) -> Option<ClientRun> {
    let submission = Submission::get(file)?;
    let mut spec = Spec::new(submission.command(port));
    spec.input = Some(format!("{sentence}\n").into_bytes());
    let mut program = Program::start(spec).unwrap();
    let ended = program.wait_exit(wait).is_some();
    let stopped = program.stop();
    Some(ClientRun { ended, stopped, stdout: program.stdout().bytes })
}

/// Whether everything written on `stream` has reached the client at the other end and been read
/// by it: nothing unacknowledged on this side, nothing in the client's receive queue (loopback, so
/// both sockets are in the kernel's table).
fn read_by_client(stream: &TcpStream) -> bool {
    let (client, server) = (stream.peer_addr().unwrap(), stream.local_addr().unwrap());
    let port = |addr: std::net::SocketAddr| format!(":{:04X}", addr.port());
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    // Field 4 is "tx_queue:rx_queue", in hex.
    let queue = |local, remote, rx: bool| {
        let row = table.lines().map(|line| line.split_whitespace().collect::<Vec<_>>()).find(|fields| {
            fields.len() > 4 && fields[1].ends_with(&port(local)) && fields[2].ends_with(&port(remote))
        })?;
        let (tx, rx_queue) = row[4].split_once(':')?;
        u64::from_str_radix(if rx { rx_queue } else { tx }, 16).ok()
    };
    queue(server, client, false) == Some(0) && queue(client, server, true) == Some(0)
}

/// A TCP server that sends `HEL`, and `LO` only once the client has read `HEL`: a client that
/// reads once has its reply by then, whatever the timing.
fn segmented_reply(file: &'static str) -> Option<String> {
    let (port, server) = one_shot_server(move |mut stream| {
        let mut request = [0; 5];
        stream.read_exact(&mut request).unwrap();
        assert_eq!(&request, b"hello");
        stream.write_all(b"HEL").unwrap();
        assert!(eventually(|| read_by_client(&stream)), "the client never read");
        let _ = stream.write_all(b"LO");
    });
    let submission = Submission::get(file)?;
    let mut spec = Spec::new(submission.command(port));
    spec.input = Some(b"hello\n".to_vec());
    let mut program = Program::start(spec).unwrap();
    assert_eq!(
        program.wait_exit(PATIENCE).and_then(|exit| exit.code),
        Some(0),
        "{}",
        program.stderr().text()
    );
    server.join().unwrap();
    Some(program.stdout().text())
}

#[test]
fn clients_that_read_once_print_half_a_segmented_reply() {
    let Some(once) = segmented_reply("tcp_client_reads_once.c") else { return };
    assert_eq!(once, "Input lowercase sentence: From Server: HEL\n");
    let Some(all) = segmented_reply("tcp_client_reads_all.py") else { return };
    assert_eq!(all, "Input lowercase sentence:From Server: HELLO\n");
    let Some(crashing) = segmented_reply("tcp_client_crashes_on_invalid.py") else { return };
    assert_eq!(crashing, "Input lowercase sentence:From Server:  HELLO\n");
}

#[test]
fn a_client_that_decodes_strictly_crashes_on_invalid_bytes() {
    let (port, server) = one_shot_server(|mut stream| {
        let mut request = Vec::new();
        stream.read_to_end(&mut request).unwrap();
        stream.write_all(b"ABC \xff\xfe").unwrap();
    });
    let Some(run) = run_client("tcp_client_crashes_on_invalid.py", port, "abc", PATIENCE) else { return };
    server.join().unwrap();
    assert!(run.ended);
    let exit = run.stopped.exit;
    assert_eq!(exit.code, Some(1));
    assert!(exit
        .last_words()
        .error
        .unwrap()
        .starts_with("UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff"));
}

#[test]
fn a_udp_client_without_a_timeout_waits_forever_for_a_lost_reply() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let Some(run) = run_client("udp_client_waits_forever.py", port, "lost", NEVER * 2) else { return };
    assert!(!run.ended, "it should still be waiting");
    assert_eq!(run.stopped.ending, Ending::Terminated);
    server.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut request = [0; 16];
    assert_eq!(server.recv(&mut request).unwrap(), 4, "its request arrived; the reply was 'lost'");
}

#[test]
fn the_correct_udp_client_retries_and_gives_up_clearly() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let answering = thread::spawn(move || {
        server.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut request = [0; 64];
        for _ in 0..2 {
            server.recv_from(&mut request).unwrap(); // "Lost".
        }
        let (n, client) = server.recv_from(&mut request).unwrap();
        assert_eq!(&request[..n], b"retry me");
        server.send_to(b"RETRY ME \xff", client).unwrap();
    });
    let Some(run) = run_client("udp_client_retries.py", port, "retry me", PATIENCE) else { return };
    answering.join().unwrap();
    assert!(run.ended);
    assert_eq!(run.stdout, b"Input lowercase sentence:RETRY ME \xff\n");

    let nobody = free_port();
    let run = run_client("udp_client_retries.py", nobody, "anyone?", PATIENCE).unwrap();
    assert!(run.ended);
    let exit = run.stopped.exit;
    assert_eq!(exit.code, Some(1));
    let said = format!("no reply from localhost:{nobody} after 5 tries, 1 s each\n");
    assert_eq!(exit.stderr_tail, said);
}

#[test]
fn clients_say_when_no_server_is_there() {
    let nobody = free_port();
    let Some(once) = run_client("tcp_client_reads_once.c", nobody, "x", PATIENCE) else { return };
    let exit = once.stopped.exit;
    assert_eq!((exit.code, exit.stderr_tail.as_str()), (Some(1), "connect: Connection refused\n"));
    let Some(all) = run_client("tcp_client_reads_all.py", nobody, "x", PATIENCE) else { return };
    let exit = all.stopped.exit;
    assert_eq!(exit.code, Some(1));
    assert!(
        exit.stderr_tail.starts_with(&format!("cannot get a reply from localhost:{nobody}: ")),
        "{exit:?}"
    );
}
