//! Each server of the class (`tests/peers/class/`) does what its opening comment says, flaw and
//! all, so the verdicts the grader gives them can be trusted to be about real behaviour. They run
//! under the supervisor on free loopback ports. The clients of the class: `class_clients.rs`.
//!
//! Needs python3 and gcc (failing under `UPCASE_REQUIRE_TOOLS` without them); the Java programs
//! run only where `javac` is installed, and are skipped with a note elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::thread;
use std::time::Duration;

use support::submissions::*;
use support::PATIENCE;
use upcase::check::program::{Ending, Program};
use upcase::net::Transport;
use upcase::transform::{uppercase, Encoding};

/// How long a reply or the end of a connection is awaited when the point is that it never comes.
const NEVER: Duration = Duration::from_secs(1);

const TEXT: &str = "straße ﬁne привет, abc";

fn upper(message: &[u8]) -> Vec<u8> {
    uppercase(message, Encoding::Utf8)
}

/// What one connection gets back: the bytes, and whether the server closed it (else the wait for
/// more ran out).
struct Got {
    reply: Vec<u8>,
    closed: bool,
}

/// Connects, writes `parts` (pausing between them, so each is a segment of its own), half-closes
/// if `half_close`, and reads until the server closes or `wait` passes with nothing new.
fn tcp(port: u16, parts: &[&[u8]], half_close: bool, wait: Duration) -> Got {
    let mut stream = TcpStream::connect_timeout(&local(port), PATIENCE).unwrap();
    stream.set_nodelay(true).unwrap();
    // A server that has closed or died makes writing fail: what it sent back still counts.
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            thread::sleep(Duration::from_millis(300));
        }
        let _ = stream.write_all(part);
    }
    if half_close {
        let _ = stream.shutdown(Shutdown::Write);
    }
    read_for(&mut stream, wait)
}

fn read_for(stream: &mut TcpStream, wait: Duration) -> Got {
    stream.set_read_timeout(Some(wait)).unwrap();
    let (mut reply, mut chunk) = (Vec::new(), vec![0; 8192]);
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Got { reply, closed: true },
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Got { reply, closed: false }
            }
            Err(_) => return Got { reply, closed: true }, // reset: closed, rudely
        }
    }
}

/// The whole reply to `message`, half-closed, with the server's close awaited.
fn tcp_whole(port: u16, message: &[u8]) -> Vec<u8> {
    let got = tcp(port, &[message], true, PATIENCE);
    assert!(got.closed, "the server never closed; got {:?}", String::from_utf8_lossy(&got.reply));
    got.reply
}

/// The lecture's client: send, no half-close, read what comes.
fn lecture_client(port: u16, message: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect_timeout(&local(port), PATIENCE).unwrap();
    stream.write_all(message).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut reply = vec![0; upper(message).len()];
    stream.read_exact(&mut reply).unwrap();
    reply
}

fn udp(port: u16, message: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(wait)).unwrap();
    socket.send_to(message, local(port)).unwrap();
    let mut reply = vec![0; 65_536];
    let n = socket.recv(&mut reply).ok()?;
    Some(reply[..n].to_vec())
}

fn padded(text: &[u8], len: usize) -> Vec<u8> {
    let mut reply = text.to_vec();
    reply.resize(len, 0);
    reply
}

fn serve(file: &'static str, transport: Transport) -> Option<(Program, u16)> {
    let (program, port, _) = Submission::get(file)?.serve(transport);
    Some((program, port))
}

/// Whatever the client, a streaming reply of everything sent, split character and bad bytes too.
fn assert_streams_correctly(port: u16) {
    let message = TEXT.as_bytes();
    assert_eq!(lecture_client(port, message), upper(message));
    let invalid = b"abc\xff\xfe def \xe2\x82";
    assert_eq!(tcp_whole(port, invalid), invalid.to_ascii_uppercase());
    let got = tcp(port, &[b"stra\xc3", b"\x9fe"], true, PATIENCE);
    assert_eq!((got.reply, got.closed), (b"STRASSE".to_vec(), true), "a character split between reads");
    let long = "ωμέγα ".repeat(2_000);
    assert_eq!(tcp_whole(port, long.as_bytes()), upper(long.as_bytes()));
    // Two at once: the first, still open, does not hold up the second.
    let mut first = TcpStream::connect_timeout(&local(port), PATIENCE).unwrap();
    first.write_all(b"first").unwrap();
    assert_eq!(tcp_whole(port, b"second"), b"SECOND");
    first.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_for(&mut first, PATIENCE).reply, b"FIRST");
}

#[test]
fn the_correct_python_server_has_no_flaw() {
    let Some((program, port)) = serve("correct_server.py", Transport::Tcp) else { return };
    assert_streams_correctly(port);
    let big = "ﬁne ".repeat(2_000);
    assert_eq!(udp(port, big.as_bytes(), PATIENCE).unwrap(), upper(big.as_bytes()));
    assert_eq!(udp(port, b"x\xffy", PATIENCE).unwrap(), b"X\xffY");
    assert_eq!(program.stderr().total, 0);
}

#[test]
fn the_correct_c_server_has_no_flaw() {
    let Some((program, port)) = serve("correct_server.c", Transport::Tcp) else { return };
    assert_streams_correctly(port);
    assert!(eventually(|| program.sample().processes == 1), "{:?}", program.sample());
    assert_eq!(program.sample().zombies, 0);
}

#[test]
fn tcp_toupper_is_ascii_only_and_otherwise_sound() {
    let Some((program, port)) = serve("tcp_toupper.c", Transport::Tcp) else { return };
    assert_eq!(lecture_client(port, "straße привет abc".as_bytes()), "STRAßE привет ABC".as_bytes());
    assert_eq!(tcp_whole(port, "ß".repeat(3_000).as_bytes()), "ß".repeat(3_000).as_bytes());
    let mut first = TcpStream::connect_timeout(&local(port), PATIENCE).unwrap();
    first.write_all(b"first").unwrap();
    assert_eq!(tcp_whole(port, b"second"), b"SECOND");
    first.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_for(&mut first, PATIENCE).reply, b"FIRST");
    drop(first);
    assert!(eventually(|| program.sample().processes == 1), "{:?}", program.sample());
    assert_eq!(program.sample().zombies, 0);
}

#[test]
fn tcp_whole_buffer_pads_with_nuls_to_1024() {
    let Some((_program, port)) = serve("tcp_whole_buffer.c", Transport::Tcp) else { return };
    assert_eq!(tcp_whole(port, b"hello"), padded(b"HELLO", 1024));
    assert_eq!(tcp_whole(port, "straße".as_bytes()), padded("STRAßE".as_bytes(), 1024));
    let long = "abcd".repeat(500);
    let reply = tcp(port, &[long.as_bytes()], false, PATIENCE).reply;
    assert_eq!(reply, long[..1024].to_ascii_uppercase().as_bytes(), "cut at 1,024");
}

#[test]
fn udp_whole_buffer_in_java_sends_stale_bytes_and_nuls() {
    let Some((_program, port)) = serve("UdpWholeBuffer.java", Transport::Udp) else { return };
    assert_eq!(udp(port, b"hello world", PATIENCE).unwrap(), padded(b"HELLO WORLD", 1024));
    assert_eq!(udp(port, b"hi", PATIENCE).unwrap(), padded(b"HILLO WORLD", 1024));
    let long = "abcd".repeat(300);
    assert_eq!(udp(port, long.as_bytes(), PATIENCE).unwrap(), long[..1024].to_ascii_uppercase().as_bytes());
}

#[test]
fn udp_stale_bytes_in_c_sends_strlen_of_the_buffer() {
    let Some((_program, port)) = serve("udp_stale_bytes.c", Transport::Udp) else { return };
    assert_eq!(udp(port, b"hello world", PATIENCE).unwrap(), b"HELLO WORLD");
    assert_eq!(udp(port, b"hi", PATIENCE).unwrap(), b"HILLO WORLD");
    assert_eq!(udp(port, b"ab\0cd", PATIENCE).unwrap(), b"AB", "cut at the NUL");
    assert_eq!(udp(port, "ß".repeat(10).as_bytes(), PATIENCE).unwrap(), "ß".repeat(10).as_bytes());
    let long = "x".repeat(3_000);
    assert_eq!(udp(port, long.as_bytes(), PATIENCE).unwrap(), "X".repeat(2_048).as_bytes());
}

#[test]
fn udp_last_byte_stays_lowercase() {
    let Some((_program, port)) = serve("udp_last_byte.c", Transport::Udp) else { return };
    assert_eq!(udp(port, b"hello", PATIENCE).unwrap(), b"HELLo");
    assert_eq!(udp(port, "straße".as_bytes(), PATIENCE).unwrap(), "STRAße".as_bytes());
    let long = "y".repeat(3_000);
    assert_eq!(udp(port, long.as_bytes(), PATIENCE).unwrap(), format!("{}y", "Y".repeat(2_047)).as_bytes());
}

#[test]
fn tcp_accept_once_serves_only_its_first_connection() {
    let Some((mut program, port)) = serve("tcp_accept_once.c", Transport::Tcp) else { return };
    let got = tcp(port, &[b"first"], true, NEVER);
    assert_eq!((got.reply, got.closed), (b"FIRST".to_vec(), false), "answered, never closed");
    let second = tcp(port, &[b"second"], false, NEVER);
    assert_eq!((second.reply, second.closed), (Vec::new(), false), "connected, never answered");
    assert_eq!(program.exited(), None);
    assert!(program.cpu_over(Duration::from_millis(500)).wanted() < 0.1, "it sleeps, it does not spin");
}

#[test]
fn tcp_spins_at_eof_answers_and_never_closes() {
    let Some((_program, port)) = serve("tcp_spins_at_eof.c", Transport::Tcp) else { return };
    assert_eq!(lecture_client(port, b"abc"), b"ABC");
    let got = tcp(port, &["straße".as_bytes()], true, NEVER);
    assert_eq!((got.reply, got.closed), ("STRAßE".as_bytes().to_vec(), false));
    // The spinning itself: tests/program.rs.
}

#[test]
fn tcp_zombies_answers_and_closes() {
    let Some((_program, port)) = serve("tcp_zombies.c", Transport::Tcp) else { return };
    assert_eq!(lecture_client(port, b"abc"), b"ABC");
    assert_eq!(tcp_whole(port, "straße".as_bytes()), "STRAßE".as_bytes());
    // The zombies themselves: tests/program.rs.
}

/// Connects and closes without a word; the server dies of it, saying `error` at `code`.
fn dies_of_an_empty_connection(mut program: Program, port: u16, file: &str, error: &str, location: &str) {
    drop(TcpStream::connect_timeout(&local(port), PATIENCE).unwrap());
    let exit = program.wait_exit(PATIENCE).expect("it dies of an empty connection");
    assert_eq!(exit.code, Some(1));
    let words = exit.last_words();
    assert!(words.error.as_deref().unwrap_or_default().starts_with(error), "{exit:?}");
    let text = std::fs::read_to_string(class_dir().join(file)).unwrap();
    let line = 1 + text.lines().position(|l| l.contains(location)).unwrap();
    assert!(words.location.unwrap().contains(&format!("{file}\", line {line}")) || file.ends_with(".java"));
    assert_eq!(program.stop().ending, Ending::Exited);
}

#[test]
fn tcp_dies_on_empty_in_python() {
    let file = "tcp_dies_on_empty.py";
    let Some((program, port)) = serve(file, Transport::Tcp) else { return };
    assert_eq!(lecture_client(port, TEXT.as_bytes()), upper(TEXT.as_bytes()));
    dies_of_an_empty_connection(program, port, file, "IndexError: list index out of range", "split()[0]");
}

#[test]
fn tcp_dies_on_empty_in_java_answers_lines() {
    let file = "TcpDiesOnEmpty.java";
    let Some((mut program, port)) = serve(file, Transport::Tcp) else { return };
    assert_eq!(tcp_whole(port, "straße\n".as_bytes()), "STRASSE\n".as_bytes());
    assert_eq!(tcp_whole(port, b"one\ntwo\n"), b"ONE\n", "only the first line");
    assert_eq!(tcp_whole(port, b"abc"), b"ABC\n", "a newline added");
    let got = tcp(port, &[b"no newline"], false, NEVER);
    assert_eq!((got.reply, got.closed), (Vec::new(), false), "waits for a newline or the end");
    assert_eq!(program.exited(), None);
    let stack_top = "java.lang.NullPointerException";
    dies_of_an_empty_connection(program, port, file, stack_top, "clientSentence.toUpperCase()");
}

#[test]
fn tcp_dies_on_invalid_utf8_and_on_a_split_character() {
    let file = "tcp_dies_on_invalid_utf8.py";
    let Some(submission) = Submission::get(file) else { return };
    let (mut program, port, _) = submission.serve(Transport::Tcp);
    assert_eq!(lecture_client(port, TEXT.as_bytes()), upper(TEXT.as_bytes()));
    // The server reads each part as it comes, unless the machine is so busy that both arrived
    // before it read the first: a few tries make that as unlikely as it gets.
    for _ in 0..3 {
        tcp(port, &[b"stra\xc3", b"\x9fe"], true, PATIENCE);
        if program.wait_exit(Duration::from_secs(2)).is_some() {
            break;
        }
    }
    let exit = program.wait_exit(PATIENCE).expect("it dies of a character split between reads");
    let error = exit.last_words().error.unwrap();
    assert!(error.starts_with("UnicodeDecodeError") && error.contains("unexpected end of data"), "{error}");
}

#[test]
fn tcp_first_line_only_answers_one_line_and_waits_for_it() {
    let Some((_program, port)) = serve("tcp_first_line_only.py", Transport::Tcp) else { return };
    assert_eq!(tcp_whole(port, "straße\nsecond line\n".as_bytes()), "STRASSE\n".as_bytes());
    let got = tcp(port, &[b"no newline"], false, NEVER);
    assert_eq!((got.reply, got.closed), (Vec::new(), false), "the lecture's client waits forever");
    assert_eq!(tcp_whole(port, b"half-closed"), b"HALF-CLOSED");
    assert_eq!(tcp_whole(port, b"a\xffb\n"), b"A\xffB\n");
}

#[test]
fn tcp_never_closes_answers_and_keeps_every_connection() {
    let Some((program, port)) = serve("tcp_never_closes.py", Transport::Tcp) else { return };
    let before = program.sample().descriptors;
    for _ in 0..3 {
        let got = tcp(port, &[TEXT.as_bytes()], true, NEVER);
        assert_eq!((got.reply, got.closed), (upper(TEXT.as_bytes()), false));
    }
    assert!(
        eventually(|| program.sample().descriptors >= before + 3),
        "{before} then {:?}",
        program.sample()
    );
}

#[test]
fn tcp_thread_leak_answers_and_never_closes() {
    let Some((_program, port)) = serve("tcp_thread_leak.py", Transport::Tcp) else { return };
    let got = tcp(port, &[TEXT.as_bytes()], true, NEVER);
    assert_eq!((got.reply, got.closed), (upper(TEXT.as_bytes()), false));
    // The threads themselves: tests/program.rs.
}

#[test]
fn udp_one_datagram_answers_once_and_exits() {
    let Some((mut program, port)) = serve("udp_one_datagram.py", Transport::Udp) else { return };
    assert_eq!(udp(port, "straße".as_bytes(), PATIENCE).unwrap(), "STRASSE".as_bytes());
    let exit = program.wait_exit(PATIENCE).expect("it exits after one datagram");
    assert_eq!((exit.code, exit.stderr_tail.as_str()), (Some(0), ""));
    assert_eq!(udp(port, b"again", NEVER), None);
}

#[test]
fn tcp_ignores_sigterm_until_the_next_client() {
    let Some((mut program, port)) = serve("tcp_ignores_sigterm.py", Transport::Tcp) else { return };
    assert_eq!(tcp_whole(port, TEXT.as_bytes()), upper(TEXT.as_bytes()));
    // Once it sleeps it is back in accept(), the only place it blocks after closing a connection;
    // a SIGTERM before that would be seen at once, which is not the flaw under test.
    let leader = upcase::bench::process::Process::Pid(program.group());
    assert!(eventually(|| upcase::bench::process::stat(leader).is_ok_and(|s| s.state == 'S')));
    let group = nix::unistd::Pid::from_raw(program.group() as i32);
    nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(program.wait_exit(NEVER), None, "SIGTERM only set a flag");
    assert_eq!(tcp_whole(port, b"last one"), b"LAST ONE");
    assert_eq!(program.wait_exit(PATIENCE).map(|exit| exit.code), Some(Some(0)), "then it saw the flag");
}
