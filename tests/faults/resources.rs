//! What a server holds, bounded: connections over `--max-connections`, 10,000 idle connections,
//! memory under a client that never reads, and accept errors when file descriptors run out.
//! Memory and descriptors are measured through `upcase::bench::process`, as the bench does.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use upcase::bench::process::{open_descriptors, resident_kib, Process};
use upcase::server::Model;

use crate::stop;
use crate::support::*;

for_each_model!(
    client_that_never_reads_is_dropped_and_memory_stays_bounded,
    accept_errors_never_stop_the_server: [threaded, asynchronous],
);

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    resident_kib(Process::Pid(pid)).expect("read the server's resident memory")
}

/// Open file descriptors of a process (each accepted connection is one).
fn open_fds(pid: u32) -> usize {
    open_descriptors(Process::Pid(pid)).expect("read the server's open descriptors")
}

/// The tests holding thousands of sockets take turns: together they would pass the open-file
/// limit (20,000 here), and each measures the server with nothing else going on.
fn many_sockets() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let limit = rlimit::increase_nofile_limit(u64::MAX).expect("raise the open file limit");
    assert!(limit >= 13_000, "these tests need about 13,000 open files; the hard limit is {limit}");
    guard
}

/// `count` connections to `addr`, made one after the other (so the server accepts them in this
/// order), without timeouts: the tests holding thousands set them only where they read.
fn connect_one_by_one(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|i| {
            TcpStream::connect_timeout(&addr, PATIENCE).unwrap_or_else(|e| panic!("connection {i}: {e}"))
        })
        .collect()
}

/// On every stream of `streams` (already connected and idle), sends a short message and reads its
/// uppercase: each connection is still open and served.
fn assert_each_answered(streams: &mut [TcpStream], what: &str) {
    for (i, stream) in streams.iter_mut().enumerate() {
        stream
            .write_all(format!("{what} {i}, straße").as_bytes())
            .unwrap_or_else(|e| panic!("write on {i}: {e}"));
    }
    for (i, stream) in streams.iter_mut().enumerate() {
        let expected = format!("{} {i}, STRASSE", what.to_uppercase());
        let mut reply = vec![0; expected.len()];
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.read_exact(&mut reply).unwrap_or_else(|e| panic!("no reply on connection {i}: {e}"));
        assert_eq!(reply, expected.as_bytes(), "connection {i}");
    }
}

/// Must hold: a client that sends a request whose reply would be 100 MiB and never reads any of it
/// does not make the server buffer: the server stops reading (backpressure), its resident memory
/// grows by less than 16 MiB, and with `--write-timeout 2s` it drops the client about 2 s after
/// its replies stop getting through (`tcp_write_timeouts=1`). The server stays alive and answers
/// the next client.
fn client_that_never_reads_is_dropped_and_memory_stays_bounded(model: Model) {
    const REQUEST: usize = 100 << 20;
    let mut server = serve_upcase_model(model, &["--write-timeout", "2s"]);
    let addr = server.tcp();
    let pid = server.guard.pid();
    // A first exchange, so what any connection allocates once (thread buffers) is in the baseline.
    assert_tcp_uppercases(addr, SENTENCE);
    let before = rss_kib(pid);

    let (chunk, _) = long_message(64 * 1024);
    let mut stream = connect(addr);
    let mut watch = NeverReader::new(pid, before);
    // Writes as much as the kernel takes: a write that makes no progress for 500 ms means the
    // buffers on both sides are full and the server has stopped reading.
    stream.set_write_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut sent = 0;
    while sent < REQUEST {
        match stream.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if is_timeout(&e) => break,
            Err(e) => panic!("{model}: write failed after {sent} bytes: {e}"),
        }
        watch.look(&stream);
    }
    assert!(sent < REQUEST, "{model}: the server took all 100 MiB from a client that reads nothing");
    let stuck = Instant::now();

    // Watch until the server drops the client: then a write fails (the server closed with unread
    // data, which resets the connection).
    stream.set_nonblocking(true).unwrap();
    let dropped = loop {
        watch.look(&stream);
        match stream.write(b"x") {
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(_) => break Instant::now(),
        }
        assert!(stuck.elapsed() < Duration::from_secs(15), "{model}: client not dropped within 15 s");
        thread::sleep(Duration::from_millis(50));
    };
    let growth = watch.peak_kib.saturating_sub(before);
    let silent = dropped - watch.last_reply_growth;
    eprintln!(
        "{model}: never-reading client sent {:.1} MiB, {:.1} MiB of reply reached it unread; server \
         RSS {before} KiB, peak growth {growth} KiB; dropped {:.2?} after the client got stuck, \
         {silent:.2?} after the last reply byte arrived",
        sent as f64 / f64::from(1 << 20),
        watch.reply_queued as f64 / f64::from(1 << 20),
        dropped - stuck,
    );
    assert!(growth < 16 * 1024, "{model}: RSS grew by {growth} KiB (limit 16 MiB)");
    drop(stream);
    assert!(server.guard.is_running(), "{model}: server died");
    assert_tcp_uppercases(addr, SENTENCE);
    let summary = stop(&mut server);
    assert_eq!(summary.get("tcp_write_timeouts"), 1, "{model}: {}", summary.line);
    // The write timeout counts from when the server's writes stop making progress, which is about
    // when the last reply byte reached the client; 1 s of slack.
    assert!(
        silent <= Duration::from_secs(3),
        "{model}: with --write-timeout 2s, a client that reads nothing was dropped {silent:.2?} after \
         the last byte of reply reached it ({:.2?} after its own writes stopped going through)",
        dropped - stuck
    );
}

/// What a client that never reads sees: the server's peak memory, and the unread reply piling up
/// in its own receive queue (measured with `peek`), with when it last grew.
struct NeverReader {
    pid: u32,
    peak_kib: u64,
    reply_queued: usize,
    last_reply_growth: Instant,
    buffer: Vec<u8>,
}

impl NeverReader {
    fn new(pid: u32, rss_kib: u64) -> Self {
        let buffer = vec![0; 16 << 20];
        Self { pid, peak_kib: rss_kib, reply_queued: 0, last_reply_growth: Instant::now(), buffer }
    }

    fn look(&mut self, stream: &TcpStream) {
        self.peak_kib = self.peak_kib.max(rss_kib(self.pid));
        if let Ok(queued) = stream.peek(&mut self.buffer) {
            if queued > self.reply_queued {
                self.reply_queued = queued;
                self.last_reply_growth = Instant::now();
            }
        }
    }
}

/// Must hold: beyond `--max-connections`, each new connection is closed by the server at once
/// (read returns 0 or an error within seconds), the connections held open within the limit are
/// untouched and each still gets its reply, and the summary counts every rejection
/// (`tcp_rejected_over_limit`). Async: 12,000 against 10,000.
#[test]
fn connection_limit_async_12000_against_10000() {
    connection_limit(Model::Async, 10_000, 2_000);
}

/// The same for the threaded model, where each connection costs a thread: 1,200 against 1,000.
#[test]
fn connection_limit_threaded_1200_against_1000() {
    connection_limit(Model::Threaded, 1_000, 200);
}

fn connection_limit(model: Model, limit: usize, excess: usize) {
    let _turn = many_sockets();
    let limit_flag = limit.to_string();
    // Two workers (the default leaves one core free): each accepts from its own queue, so the
    // limit must hold across workers.
    let mut server = serve_upcase_model(model, &["--max-connections", &limit_flag, "--workers", "2"]);
    let addr = server.tcp();
    let started = Instant::now();
    // One after the other. Which ones the server holds is the order it accepts them in, which
    // with a listener per worker (the async model) is not quite the order of the connects.
    let mut streams = connect_one_by_one(addr, limit + excess);
    eprintln!("{model}: {} connections made in {:.2?}", streams.len(), started.elapsed());
    for stream in &streams {
        stream.set_nonblocking(true).unwrap();
    }

    // Exactly the excess is closed by the server: within 5 s, each reads end of stream or an
    // error, and after that no other connection is closed.
    let mut closed = vec![false; streams.len()];
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buffer = [0; 16];
    let mut settled_at = None;
    while Instant::now() < deadline {
        for (i, stream) in streams.iter().enumerate() {
            if !closed[i] {
                closed[i] = match (&*stream).read(&mut buffer) {
                    Ok(0) => true,
                    Ok(n) => panic!("{model}: connection {i} got {n} bytes without asking"),
                    Err(e) => !is_timeout(&e),
                };
            }
        }
        let count = closed.iter().filter(|&&c| c).count();
        assert!(
            count <= excess,
            "{model}: {count} connections closed, more than the {excess} over the limit"
        );
        // All closed: watch a little longer, so that one more closed would be seen.
        match settled_at {
            None if count == excess => settled_at = Some(Instant::now()),
            Some(at) if at.elapsed() > Duration::from_millis(200) => break,
            _ => {}
        }
        thread::sleep(Duration::from_millis(10));
    }
    let count = closed.iter().filter(|&&c| c).count();
    assert_eq!(count, excess, "{model}: connections over the limit closed by the server");
    let mut held: Vec<TcpStream> =
        streams.drain(..).zip(&closed).filter(|(_, &closed)| !closed).map(|(stream, _)| stream).collect();
    for stream in &held {
        stream.set_nonblocking(false).unwrap();
    }
    assert_each_answered(&mut held, "held");
    eprintln!("{model}: {limit} held connections answered, {excess} closed, in {:.2?}", started.elapsed());
    drop(held);
    let summary = stop(&mut server);
    assert_eq!(summary.get("tcp_rejected_over_limit"), excess as u64, "{model}: {}", summary.line);
    assert_eq!(summary.get("tcp_accepted"), limit as u64, "{model}: {}", summary.line);
}

/// Must hold: 10,000 idle connections to the async server cost little memory: its resident memory
/// grows by at most 1 KiB per connection (the figure is printed; about 160 bytes), and afterwards
/// every one of them is still open and answered. (Resident memory is the process's own; socket
/// buffers are the kernel's and are not in it.)
#[test]
fn ten_thousand_idle_connections_cost_little_memory() {
    const CONNECTIONS: usize = 10_000;
    let _turn = many_sockets();
    let mut server = serve_upcase_model(Model::Async, &["--workers", "2"]);
    let addr = server.tcp();
    let pid = server.guard.pid();
    assert_tcp_uppercases(addr, SENTENCE);
    // The server closes that connection's socket a moment after the client has read to the end.
    let mut fds_before = open_fds(pid);
    for _ in 0..100 {
        thread::sleep(Duration::from_millis(20));
        let now = open_fds(pid);
        if now == fds_before {
            break;
        }
        fds_before = now;
    }
    let before = rss_kib(pid);

    let mut streams = connect_one_by_one(addr, CONNECTIONS);
    // Accepted means one descriptor each in the server.
    let deadline = Instant::now() + PATIENCE;
    while open_fds(pid) < fds_before + CONNECTIONS {
        assert!(
            Instant::now() < deadline,
            "server accepted only {} of {CONNECTIONS}; stderr:\n{}",
            open_fds(pid) - fds_before,
            server.guard.stderr()
        );
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(300));
    let after = rss_kib(pid);
    let per_connection = (after.saturating_sub(before) * 1024) as f64 / CONNECTIONS as f64;
    eprintln!(
        "async: {CONNECTIONS} idle connections: server RSS {before} KiB -> {after} KiB, \
         {per_connection:.0} bytes per connection"
    );
    assert!(per_connection <= 1024.0, "{per_connection:.0} bytes per idle connection (limit 1 KiB)");

    assert_each_answered(&mut streams, "idle");
    drop(streams);
    let summary = stop(&mut server);
    assert_eq!(summary.get("tcp_accepted"), CONNECTIONS as u64 + 1, "{}", summary.line);
    assert_eq!(summary.get("tcp_rejected_over_limit"), 0, "{}", summary.line);
}

/// With 48 file descriptors, 80 clients at once make `accept` fail with EMFILE. What must hold:
/// the server logs, backs off and goes on, and once those clients leave it serves again.
/// (The iterative model holds one connection at a time, so it never runs out.)
fn accept_errors_never_stop_the_server(model: Model) {
    let mut command = Command::new("prlimit");
    command.args(["--nofile=48:48", "--", env!("CARGO_BIN_EXE_upcase"), "serve", "--tcp"]);
    command.args(["--listen", "127.0.0.1:0", "--model", model.name()]);
    let (guard, addr) = start_server("upcase serve with 48 descriptors", command, |line| {
        line.strip_prefix("listening on tcp ")?.trim().parse::<SocketAddr>().ok()
    });
    let mut server = UpcaseServer { guard, tcp: Some(addr), udp: None };
    let held: Vec<TcpStream> = (0..80).map(|_| connect(addr)).collect();
    thread::sleep(Duration::from_millis(500));
    assert!(server.guard.is_running(), "the server died:\n{}", server.guard.stderr());
    drop(held);
    assert_tcp_uppercases(addr, "after the storm");
    let summary = stop(&mut server);
    assert!(summary.get("tcp_accept_errors") > 0, "no accept error was provoked: {}", summary.line);
    assert!(server.guard.stderr().contains("accept failed"), "logged");
}
