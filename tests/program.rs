//! The supervisor of a program under test (`upcase::check::program`), against the class of
//! student programs (`tests/peers/class/`) and small shell commands: start, wait until it
//! answers, stop (SIGTERM, then SIGKILL, the whole group, nothing left behind), last words of a
//! program that died, restart over a port still held, and what watching `/proc` shows (a server
//! spinning while idle, threads and zombies piling up per connection).
//!
//! Loopback only; every wait is bounded. One test waits out a TIME_WAIT port (about a minute,
//! spent sleeping).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use support::submissions::*;
use support::PATIENCE;
use upcase::bench::process::{stat, Process};
use upcase::check::program::{Ending, Program, ProgramError, Spec};
use upcase::net::Transport;

/// Sends `message`, half-closes, reads until the server closes.
fn tcp_exchange(port: u16, message: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect_timeout(&local(port), PATIENCE).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    // A server that dies of the message resets the connection: what came back still counts.
    let _ = stream.write_all(message).and_then(|()| stream.shutdown(Shutdown::Write));
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    reply
}

fn udp_exchange(port: u16, message: &[u8]) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    socket.send_to(message, local(port)).unwrap();
    let mut reply = vec![0; 65_536];
    let n = socket.recv(&mut reply).unwrap();
    reply.truncate(n);
    reply
}

/// The line of the class's `file` holding `code`, as a traceback names it.
fn line_of(file: &str, code: &str) -> usize {
    let text = std::fs::read_to_string(class_dir().join(file)).unwrap();
    1 + text.lines().position(|line| line.contains(code)).unwrap_or_else(|| panic!("{code:?} in {file}"))
}

#[test]
fn a_correct_server_starts_answers_and_stops_on_sigterm() {
    let Some(server) = Submission::get("correct_server.py") else { return };
    let (mut program, port, ready) = server.serve(Transport::Tcp);
    assert_eq!((ready.starts, ready.refused_bind.as_deref()), (1, None));
    assert!(program.serves(Transport::Udp, port), "it serves UDP on the same port");
    assert!(!program.serves(Transport::Tcp, free_port()), "nor any port it was not given");
    assert_eq!(tcp_exchange(port, "straße".as_bytes()), b"STRASSE");
    assert_eq!(udp_exchange(port, "ﬁne".as_bytes()), b"FINE");
    assert_eq!(program.exited(), None);
    let stopped = program.stop();
    assert_eq!(stopped.ending, Ending::Terminated);
    assert_eq!((stopped.exit.code, stopped.exit.signal_name()), (None, Some("SIGTERM")));
    assert!(stopped.left_running.is_empty());
    assert_eq!(program.stdout().text(), "The server is ready to receive\n");
    assert_eq!(program.stop(), stopped, "stopping again changes nothing");
}

#[test]
fn a_server_that_ignores_sigterm_is_killed_and_reaped() {
    let Some(server) = Submission::get("tcp_ignores_sigterm.py") else { return };
    let (mut program, port, _) = server.serve(Transport::Tcp);
    assert_eq!(tcp_exchange(port, b"still here"), b"STILL HERE");
    let group = program.group();
    let began = Instant::now();
    let stopped = program.stop();
    assert_eq!(stopped.ending, Ending::Killed);
    assert!(began.elapsed() >= Spec::new("").grace, "SIGKILL only after the grace");
    assert_eq!(stopped.exit.signal_name(), Some("SIGKILL"));
    assert!(stat(Process::Pid(group)).is_err(), "the leader is reaped: no zombie left");
}

#[test]
fn nothing_a_program_started_is_left_running() {
    // Children that ignore SIGTERM (an ignored signal stays ignored across exec), one of them
    // orphaned by a subshell, so the leader's death alone would leave them all running.
    let command = "trap '' TERM; sleep 60 & sleep 60 & (sleep 60 &); echo started; wait";
    let mut spec = Spec::new(command);
    spec.grace = Duration::from_millis(300);
    let mut program = Program::start(spec).unwrap();
    let members = || upcase::bench::process::group_members(program.group()).unwrap();
    assert!(eventually(|| members().len() >= 4), "sh and three sleeps: {:?}", members());
    let started = members();
    let stopped = program.stop();
    assert_eq!(stopped.ending, Ending::Killed);
    assert!(stopped.left_running.is_empty());
    for pid in started {
        assert!(!running(pid), "process {pid} of the group still runs");
    }
    assert_eq!(program.stdout().text(), "started\n");
}

#[test]
fn a_forking_server_leaves_no_child_behind() {
    let Some(server) = Submission::get("tcp_zombies.c") else { return };
    let (mut program, port, _) = server.serve(Transport::Tcp);
    // Held open, so a child is still serving it when the server is stopped.
    let held = TcpStream::connect_timeout(&local(port), PATIENCE).unwrap();
    assert!(eventually(|| program.sample().processes == 2), "{:?}", program.sample());
    let members = upcase::bench::process::group_members(program.group()).unwrap();
    let stopped = program.stop();
    assert_eq!(stopped.ending, Ending::Terminated);
    for pid in members {
        assert!(!running(pid), "process {pid} of the group still runs");
    }
    drop(held);
}

#[test]
fn a_crash_on_invalid_utf8_shows_the_traceback() {
    let file = "tcp_dies_on_invalid_utf8.py";
    let Some(server) = Submission::get(file) else { return };
    let (mut program, port, _) = server.serve(Transport::Tcp);
    assert_eq!(tcp_exchange(port, "привет".as_bytes()), "ПРИВЕТ".as_bytes());
    tcp_exchange(port, b"abc\xff def");
    let exit = program.wait_exit(PATIENCE).expect("it dies of the invalid byte");
    assert_eq!((exit.code, exit.signal), (Some(1), None));
    let words = exit.last_words();
    let error = words.error.unwrap();
    assert!(error.starts_with("UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff"), "{error}");
    let line = line_of(file, "data.decode('utf-8')");
    let location = words.location.unwrap();
    assert!(location.ends_with(&format!("{file}\", line {line}, in <module>")), "{location}");
    let stopped = program.stop();
    assert_eq!((stopped.ending, stopped.exit), (Ending::Exited, exit));
}

#[test]
fn a_server_without_so_reuseaddr_cannot_rebind_at_once_and_is_waited_out() {
    let Some(server) = Submission::get("tcp_dies_on_empty.py") else { return };
    let (mut program, port, _) = server.serve(Transport::Tcp);
    // Like the lecture's client: no half-close, so the server closes first and its side of the
    // connection keeps TIME_WAIT.
    let mut client = TcpStream::connect_timeout(&local(port), PATIENCE).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    client.write_all(b"hello").unwrap();
    let mut reply = Vec::new();
    client.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"HELLO");
    drop(client);
    assert!(eventually(|| upcase::check::program::tcp_port_in_time_wait(port)));
    let quick = program.restart(Duration::from_secs(2), |p| p.serves(Transport::Tcp, port));
    let Err(ProgramError::NotReady { exit: Some(exit), port_held: true, .. }) = &quick else {
        panic!("expected a refused bind, got {quick:?}")
    };
    assert!(exit.last_words().error.unwrap().contains("Address already in use"), "{exit:?}");
    let message = quick.unwrap_err().to_string();
    assert!(message.contains("TIME_WAIT") && message.contains("SO_REUSEADDR"), "{message}");

    // Linux keeps TIME_WAIT for 60 s; the restart waits it out.
    let (_, ready) = program.restart(Duration::from_secs(90), |p| p.serves(Transport::Tcp, port)).unwrap();
    assert!(ready.starts > 1, "{ready:?}");
    let refusal = ready.refused_bind.unwrap();
    assert!(refusal.starts_with("OSError: [Errno 98] Address already in use"), "{refusal}");
    assert_eq!(tcp_exchange(port, b"back"), b"BACK");
}

#[test]
fn a_server_with_so_reuseaddr_rebinds_at_once() {
    let Some(server) = Submission::get("correct_server.py") else { return };
    let (mut program, port, _) = server.serve(Transport::Tcp);
    let mut held = TcpStream::connect_timeout(&local(port), PATIENCE).unwrap();
    held.write_all(b"x").unwrap();
    let (stopped, ready) = program.restart(PATIENCE, |p| p.serves(Transport::Tcp, port)).unwrap();
    assert_eq!(stopped.ending, Ending::Terminated);
    assert_eq!((ready.starts, ready.refused_bind), (1, None));
    assert_eq!(tcp_exchange(port, b"again"), b"AGAIN");
}

#[test]
fn a_server_spinning_after_eof_burns_a_core_while_idle() {
    let Some(server) = Submission::get("tcp_spins_at_eof.c") else { return };
    let (program, port, _) = server.serve(Transport::Tcp);
    let idle = program.cpu_over(Duration::from_millis(500));
    // One client, served (the thread never closes, so the reply is read, not waited to its end).
    let mut client = TcpStream::connect_timeout(&local(port), PATIENCE).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    client.write_all(b"spin").unwrap();
    let mut reply = [0; 4];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"SPIN");
    drop(client);
    let spinning = program.cpu_over(Duration::from_secs(1));
    // It wants a whole core, running or waiting for one, however busy the machine is.
    assert!(spinning.wanted() > 0.8, "{spinning:?} after the client left; {idle:?} before");
    assert!(spinning.running > Duration::ZERO);
    assert!(idle.wanted() < 0.1, "{idle:?} before any client");
    assert!(eventually(|| program.watch().cpu >= Duration::from_millis(50)), "{:?}", program.watch());
}

#[test]
fn threads_that_never_end_are_seen_after_n_connections() {
    const N: usize = 5;
    let Some(server) = Submission::get("tcp_thread_leak.py") else { return };
    let (program, port, _) = server.serve(Transport::Tcp);
    let before = program.sample().threads;
    for i in 0..N {
        let mut client = TcpStream::connect_timeout(&local(port), PATIENCE).unwrap();
        client.set_read_timeout(Some(PATIENCE)).unwrap();
        client.write_all(format!("client {i}").as_bytes()).unwrap();
        let mut reply = [0; 8];
        client.read_exact(&mut reply).unwrap();
        assert_eq!(reply, *format!("CLIENT {i}").as_bytes());
    }
    assert!(eventually(|| program.sample().threads >= before + N), "{before} then {:?}", program.sample());
    let watch = program.watch();
    assert_eq!(watch.at_ready.map(|s| s.threads), Some(before));
    assert!(eventually(|| program.watch().peak_threads >= before + N), "{:?}", program.watch());
    let idle = program.cpu_over(Duration::from_millis(500));
    assert!(idle.wanted() < 0.1, "leaking, not spinning: {idle:?}");
}

#[test]
fn children_never_reaped_are_seen_as_zombies_after_n_connections() {
    const N: usize = 4;
    let (Some(zombies), Some(reaped)) = (Submission::get("tcp_zombies.c"), Submission::get("tcp_toupper.c"))
    else {
        return;
    };
    let (leaky, leaky_port, _) = zombies.serve(Transport::Tcp);
    let (tidy, tidy_port, _) = reaped.serve(Transport::Tcp);
    for _ in 0..N {
        assert_eq!(tcp_exchange(leaky_port, b"abc"), b"ABC");
        assert_eq!(tcp_exchange(tidy_port, b"abc"), b"ABC");
    }
    assert!(eventually(|| leaky.sample().zombies == N), "{:?}", leaky.sample());
    assert_eq!(leaky.sample().processes, 1, "the children have exited");
    assert!(eventually(|| leaky.watch().peak_zombies == N), "{:?}", leaky.watch());
    assert!(eventually(|| tidy.sample().processes == 1), "{:?}", tidy.sample());
    assert_eq!(tidy.sample().zombies, 0, "SIGCHLD ignored: the kernel reaps them");
}

#[test]
fn a_program_that_never_listens_or_exits_at_once_is_not_ready() {
    let mut silent = Program::start(Spec::new("exec sleep 30")).unwrap();
    let port = free_port();
    let error =
        silent.wait_ready(Duration::from_millis(300), |p| p.serves(Transport::Tcp, port)).unwrap_err();
    assert!(matches!(error, ProgramError::NotReady { exit: None, port_held: false, .. }), "{error:?}");
    assert!(error.to_string().contains("did not start answering within 300ms"), "{error}");
    assert_eq!(silent.stop().ending, Ending::Terminated);

    let mut failing = Program::start(Spec::new("echo 'server.py: no such file' >&2; exit 3")).unwrap();
    let error = failing.wait_ready(PATIENCE, |p| p.serves(Transport::Tcp, port)).unwrap_err();
    let ProgramError::NotReady { exit: Some(exit), .. } = &error else { panic!("{error:?}") };
    assert_eq!(exit.code, Some(3));
    assert_eq!(error.to_string(), "`echo 'server.py: no such file' >&2; exit 3` exited with status 3 before it answered: server.py: no such file");
}

#[test]
fn a_program_runs_in_its_directory_with_its_input() {
    let dir = class_dir();
    let mut spec = Spec::new("pwd; cat");
    spec.dir = Some(dir.clone());
    spec.input = Some("straße\n".as_bytes().to_vec());
    let mut program = Program::start(spec).unwrap();
    let exit = program.wait_exit(PATIENCE).expect("cat ends at the end of its input");
    assert_eq!(exit.code, Some(0));
    assert_eq!(program.stdout().text(), format!("{}\nstraße\n", dir.display()));

    let mut nowhere = Spec::new("true");
    nowhere.dir = Some(dir.join("no such dir"));
    let error = Program::start(nowhere).unwrap_err();
    assert!(matches!(error, ProgramError::Dir { .. }), "{error:?}");
}

#[test]
fn a_chatty_program_keeps_only_the_tail() {
    let mut spec = Spec::new("head -c 10000000 /dev/zero; echo; echo the end >&2");
    spec.keep = 4096;
    let mut program = Program::start(spec).unwrap();
    assert_eq!(program.wait_exit(PATIENCE).unwrap().code, Some(0));
    assert!(eventually(|| program.stdout().total == 10_000_001));
    let stdout = program.stdout();
    assert_eq!((stdout.bytes.len(), stdout.dropped()), (4096, 10_000_001 - 4096));
    assert_eq!(stdout.bytes.last(), Some(&b'\n'));
    assert_eq!(program.stop().exit.stderr_tail, "the end\n");
}
