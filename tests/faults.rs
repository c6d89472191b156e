//! The fault battery: the real `upcase serve` binary, as a child process, against clients that
//! misbehave (resets, readers that never read, slowloris, connection and datagram floods, forged
//! source ports, rate abuse) and against signals and restarts under load.
//!
//! Each test says in its comment what must hold. Everything is loopback only and bounded in time:
//! every wait has a timeout and every loop a bound on its count, so a broken server fails a test
//! instead of hanging it. Figures worth keeping (memory per idle connection, memory under a
//! client that never reads, shutdown time under load) are printed with `eprintln!`; see them with
//! `cargo test --test faults -- --nocapture`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use support::*;
use upcase::bench::process::{open_descriptors, resident_kib, Process};
use upcase::server::Model;

for_each_model!(
    rst_in_mid_stream,
    client_that_never_reads_is_dropped_and_memory_stays_bounded,
    slowloris_is_closed_at_max_connection_time,
    udp_flood_from_1000_source_ports,
    udp_rate_limit,
    sigterm_lets_a_100_mib_stream_finish,
    restart_while_clients_hammer,
    accept_errors_never_stop_the_server: [threaded, asynchronous],
);

/// The counters of the server's exit summary (`stopped: name=value ...`; absent ones are 0).
struct Summary {
    line: String,
    counters: HashMap<String, u64>,
}

impl Summary {
    fn get(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// Waits (bounded) for the `stopped:` line of a server that has exited, and parses it.
fn summary(guard: &Guard) -> Summary {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = guard.stderr();
        if let Some(rest) = log.lines().find_map(|l| l.split_once("stopped: ").map(|(_, rest)| rest)) {
            let counters = rest
                .split_whitespace()
                .filter_map(|pair| pair.split_once('='))
                .map(|(name, value)| (name.to_owned(), value.parse().unwrap()))
                .collect();
            return Summary { line: rest.trim().to_owned(), counters };
        }
        assert!(Instant::now() < deadline, "no `stopped:` summary in the server's stderr:\n{log}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// SIGTERM, then the exit (bounded; it must be status 0) and its summary.
fn stop(server: &mut UpcaseServer) -> Summary {
    server.guard.sigterm();
    let status = server.guard.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM; stderr:\n{}", server.guard.stderr());
    summary(&server.guard)
}

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
    let mut server = serve_upcase_model(model, &["--max-connections", &limit_flag]);
    let addr = server.tcp();
    let started = Instant::now();
    // In order: the first `limit` are held.
    let mut streams = connect_one_by_one(addr, limit + excess);
    eprintln!("{model}: {} connections made in {:.2?}", streams.len(), started.elapsed());

    // The excess ones are closed by the server: within 5 s, each reads end of stream or an error.
    let (held, over) = streams.split_at_mut(limit);
    for stream in over.iter() {
        stream.set_nonblocking(true).unwrap();
    }
    let mut open: Vec<usize> = (0..over.len()).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buffer = [0; 16];
    for _ in 0..500 {
        open.retain(|&i| match (&over[i]).read(&mut buffer) {
            Ok(0) => false,
            Ok(n) => panic!("{model}: connection {} over the limit got {n} bytes", limit + i),
            Err(e) => is_timeout(&e),
        });
        if open.is_empty() || Instant::now() >= deadline {
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    assert!(open.is_empty(), "{model}: {} of {excess} connections over the limit still open", open.len());

    assert_each_answered(held, "held");
    eprintln!("{model}: {limit} held connections answered, {excess} closed, in {:.2?}", started.elapsed());
    drop(streams);
    let summary = stop(&mut server);
    assert_eq!(summary.get("tcp_rejected_over_limit"), excess as u64, "{model}: {}", summary.line);
    assert_eq!(summary.get("tcp_accepted"), limit as u64, "{model}: {}", summary.line);
}

/// Must hold: 10,000 idle connections to the async server cost little memory: its resident memory
/// grows by at most 1 KiB per connection (the figure is printed; about 920 bytes), and afterwards
/// every one of them is still open and answered. (Resident memory is the process's own; socket
/// buffers are the kernel's and are not in it.)
#[test]
fn ten_thousand_idle_connections_cost_little_memory() {
    const CONNECTIONS: usize = 10_000;
    let _turn = many_sockets();
    let mut server = serve_upcase_model(Model::Async, &[]);
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

/// Must hold: a client that sends 1 MiB and then resets the connection (SO_LINGER 0) without
/// reading the rest of its reply costs the server that connection only. What it did read was
/// exact; the server stays alive, counts the reset as one error (`tcp_errors=1`), and serves the
/// next client's 1 MiB byte for byte (nothing lost, nothing cut).
fn rst_in_mid_stream(model: Model) {
    let mut server = serve_upcase_model(model, &[]);
    let addr = server.tcp();
    let (message, expected) = long_message(1 << 20);
    let stream = connect(addr);
    let mut writer = stream.try_clone().unwrap();
    let to_send = message.clone();
    let sending = thread::spawn(move || writer.write_all(&to_send));
    // Read while sending (so neither side can block the other), and stop as soon as all is sent:
    // the rest of the reply is still in flight when the reset goes out.
    stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut received = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    let deadline = Instant::now() + PATIENCE;
    while !sending.is_finished() {
        assert!(Instant::now() < deadline, "sending 1 MiB took longer than {PATIENCE:?}");
        match (&stream).read(&mut chunk) {
            Ok(0) => panic!("{model}: server closed before the client finished"),
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(e) => panic!("{model}: read: {e}"),
        }
    }
    sending.join().unwrap().expect("send 1 MiB");
    assert_eq!(received, expected[..received.len()], "{model}: the part of the reply read is exact");
    socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)).unwrap();
    drop(stream); // RST
    eprintln!("{model}: reset after reading {} of {} reply bytes", received.len(), expected.len());

    assert!(server.guard.is_running(), "{model}: server died after a reset");
    let (reply, error) = tcp_reply_and_error(addr, &message);
    assert!(error.is_none(), "{model}: next client failed: {error:?}");
    assert!(reply == expected, "{model}: next client's reply differs ({} bytes)", reply.len());

    let summary = stop(&mut server);
    assert_eq!(summary.get("tcp_accepted"), 2, "{model}: {}", summary.line);
    // The server sees the reset as ECONNRESET on its next read or write: one error, no other
    // ending.
    assert_eq!(summary.get("tcp_errors"), 1, "{model}: {}", summary.line);
    assert_eq!(summary.get("tcp_write_timeouts") + summary.get("tcp_idle_timeouts"), 0, "{}", summary.line);
}

/// Must hold: with `--idle-timeout 10s --max-connection-time 2s`, a client that sends one byte
/// every 400 ms (never idle long enough for the idle timeout) is served while it lasts and closed
/// 2 to 5 s after it connected (`tcp_lifetime_exceeded=1`, no idle timeout). Meanwhile other
/// clients are served normally (threaded, async); the iterative server, held by the slow client,
/// serves the waiting client as soon as the slow one is closed.
fn slowloris_is_closed_at_max_connection_time(model: Model) {
    let mut server = serve_upcase_model(model, &["--idle-timeout", "10s", "--max-connection-time", "2s"]);
    let addr = server.tcp();
    let (served, first_echo) = mpsc::channel();
    let slow = thread::spawn(move || -> (Duration, usize) {
        let mut stream = connect(addr);
        let opened = Instant::now();
        let mut echoed = 0;
        let mut buffer = [0; 16];
        for _ in 0..25 {
            // 25 × 400 ms: 10 s at most
            if stream.write_all(b"s").is_err() {
                return (opened.elapsed(), echoed);
            }
            // Waits out the 400 ms reading: the echo, then the close when it comes.
            let next = Instant::now() + Duration::from_millis(400);
            loop {
                let left = next.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                stream.set_read_timeout(Some(left)).unwrap();
                match stream.read(&mut buffer) {
                    Ok(0) => return (opened.elapsed(), echoed),
                    Ok(n) => {
                        assert!(buffer[..n].iter().all(|&b| b == b'S'), "echo {:?}", &buffer[..n]);
                        echoed += n;
                        let _ = served.send(());
                    }
                    Err(e) if is_timeout(&e) => break,
                    Err(_) => return (opened.elapsed(), echoed),
                }
            }
        }
        panic!("slow client still open after 10 s");
    });
    first_echo.recv_timeout(PATIENCE).expect("the slow client is served");

    if model == Model::Iterative {
        // One client at a time: this one waits in the backlog until the slow one is closed.
        let waiting = Instant::now();
        assert_tcp_uppercases(addr, SENTENCE);
        eprintln!("{model}: waiting client answered after {:.2?}", waiting.elapsed());
    } else {
        let mut exchanges = 0;
        for _ in 0..100 {
            if slow.is_finished() {
                break;
            }
            let started = Instant::now();
            assert_tcp_uppercases(addr, SENTENCE);
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{model}: exchange took {:?}",
                started.elapsed()
            );
            exchanges += 1;
            thread::sleep(Duration::from_millis(100));
        }
        assert!(exchanges >= 5, "{model}: only {exchanges} exchanges beside the slow client");
    }
    let (closed_after, echoed) = slow.join().unwrap();
    eprintln!("{model}: slow client closed {closed_after:.2?} after connecting, {echoed} bytes echoed");
    // The server's clock starts at accept, a moment after the client's connect returned.
    assert!(closed_after >= Duration::from_millis(1950), "{model}: closed too early: {closed_after:?}");
    assert!(closed_after <= Duration::from_secs(5), "{model}: closed too late: {closed_after:?}");
    assert!(echoed >= 3, "{model}: the slow client was served while it lasted ({echoed} echoed)");

    let summary = stop(&mut server);
    assert_eq!(summary.get("tcp_lifetime_exceeded"), 1, "{model}: {}", summary.line);
    assert_eq!(summary.get("tcp_idle_timeouts"), 0, "{model}: {}", summary.line);
}

/// The server answers a normal UDP request. Retried a few times: right after a flood its receive
/// queue may still be full, and UDP may drop.
fn assert_udp_answered(addr: SocketAddr) {
    for _ in 0..10 {
        if let Some(reply) = udp_reply_within(addr, SENTENCE.as_bytes(), Duration::from_millis(500)) {
            assert_eq!(reply, SHOUTED.as_bytes());
            return;
        }
    }
    panic!("no UDP reply from {addr} in 10 attempts");
}

/// Must hold: 1,000 UDP sockets each sending 20 datagrams without waiting (20,000 at once) do not
/// crash or wedge the server. Datagrams the kernel's queues drop are UDP's business, but every
/// reply that does come back is whole and goes to the socket that asked; afterwards the server is
/// alive and answers a normal request over UDP and TCP, and exits cleanly.
fn udp_flood_from_1000_source_ports(model: Model) {
    const SOCKETS: usize = 1_000;
    const EACH: usize = 20;
    let limit = rlimit::increase_nofile_limit(u64::MAX).expect("raise the open file limit");
    assert!(limit >= 2 * SOCKETS as u64, "this test needs {SOCKETS} sockets; the open file limit is {limit}");
    let mut server = serve_upcase_model(model, &[]);
    let addr = server.udp();
    let sockets: Vec<UdpSocket> = (0..SOCKETS)
        .map(|_| {
            let socket = udp_socket(addr, PATIENCE);
            socket.set_nonblocking(true).unwrap();
            socket
        })
        .collect();
    let started = Instant::now();
    let mut sent = 0;
    for round in 0..EACH {
        for (i, socket) in sockets.iter().enumerate() {
            if socket.send(format!("flood {i} {round} straße").as_bytes()).is_ok() {
                sent += 1;
            }
        }
    }
    let sending = started.elapsed();

    // Collect replies until none has come for 300 ms (at most 5 s).
    let mut replies = 0;
    let mut buffer = [0; 256];
    let mut last = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(5);
    while last.elapsed() < Duration::from_millis(300) && Instant::now() < deadline {
        let mut got_any = false;
        for (i, socket) in sockets.iter().enumerate() {
            for _ in 0..EACH {
                match socket.recv(&mut buffer) {
                    Ok(n) => {
                        let reply = std::str::from_utf8(&buffer[..n]).expect("reply is UTF-8");
                        let prefix = format!("FLOOD {i} ");
                        let round = reply.strip_prefix(&prefix).and_then(|r| r.strip_suffix(" STRASSE"));
                        assert!(
                            round.is_some_and(|r| r.parse::<usize>().is_ok_and(|r| r < EACH)),
                            "{model}: socket {i} got {reply:?}"
                        );
                        replies += 1;
                        got_any = true;
                    }
                    Err(e) if is_timeout(&e) => break,
                    Err(e) => panic!("{model}: socket {i}: {e}"),
                }
            }
        }
        if got_any {
            last = Instant::now();
        } else {
            thread::sleep(Duration::from_millis(10));
        }
    }
    eprintln!(
        "{model}: UDP flood: {sent} of {} datagrams sent in {sending:.2?}, {replies} replies",
        SOCKETS * EACH
    );
    assert!(server.guard.is_running(), "{model}: server died in the flood");
    assert!(replies > 0, "{model}: not one reply to the flood");
    drop(sockets);
    assert_udp_answered(addr);
    assert_tcp_uppercases(server.tcp(), SENTENCE);
    let summary = stop(&mut server);
    assert!(summary.get("udp_replies") >= replies as u64, "{model}: {}", summary.line);
    eprintln!("{model}: summary after the flood: {}", summary.line);
}

/// Binds a UDP socket to `addr`, saying clearly why when that is not possible.
fn bind_udp(addr: &str) -> UdpSocket {
    match UdpSocket::bind(addr) {
        Ok(socket) => socket,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => panic!(
            "binding {addr} needs root or CAP_NET_BIND_SERVICE (this test sends from port 7, the echo \
             service's port): {e}"
        ),
        Err(e) => panic!("cannot bind {addr} (is something else using it?): {e}"),
    }
}

/// Sends `message` from `socket` to `to` and waits `wait` for a reply.
fn udp_reply_from(socket: &UdpSocket, to: SocketAddr, message: &[u8], wait: Duration) -> Option<Vec<u8>> {
    socket.set_read_timeout(Some(wait)).unwrap();
    socket.send_to(message, to).unwrap();
    let mut buffer = [0; 1024];
    match socket.recv_from(&mut buffer) {
        Ok((n, from)) => {
            assert_eq!(from, to, "reply from the server's address");
            Some(buffer[..n].to_vec())
        }
        Err(e) if is_timeout(&e) => None,
        Err(e) => panic!("udp receive: {e}"),
    }
}

/// Must hold, for every model: a datagram from source port 7 (echo, which would answer back and
/// start an endless loop) gets no reply within 500 ms and is counted
/// (`udp_ignored_source_port=1`), while a normal client is still answered; with
/// `--udp-allow-low-ports` port 7 is answered, but a datagram from the server's own port number
/// (here from 127.0.0.2, as a second upcase would send) is still ignored. Needs root (or
/// CAP_NET_BIND_SERVICE) to bind port 7.
#[test]
fn udp_from_low_or_own_source_port_is_ignored() {
    let no_reply = Duration::from_millis(500);
    // Port 7 needs root or CAP_NET_BIND_SERVICE: CI has it (and requires the test there);
    // elsewhere the test says what it skipped rather than failing a newcomer's `cargo test`.
    if let Err(e) = UdpSocket::bind("127.0.0.1:7") {
        if e.kind() == io::ErrorKind::PermissionDenied {
            skip_unless_required(&format!("sending from port 7 needs root or CAP_NET_BIND_SERVICE ({e})"));
            return;
        }
    }
    let low = bind_udp("127.0.0.1:7");
    for model in Model::ALL {
        let mut server = serve_upcase_model(model, &[]);
        let addr = server.udp();
        assert_eq!(
            udp_reply_from(&low, addr, b"from port seven", no_reply),
            None,
            "{model}: port 7 answered"
        );
        assert_udp_answered(addr);
        let summary = stop(&mut server);
        assert_eq!(summary.get("udp_ignored_source_port"), 1, "{model}: {}", summary.line);
        assert_eq!(summary.get("udp_replies"), 1, "{model}: {}", summary.line);

        let mut server = serve_upcase_model(model, &["--udp-allow-low-ports"]);
        let addr = server.udp();
        let reply = udp_reply_from(&low, addr, b"from port seven", PATIENCE);
        assert_eq!(reply.as_deref(), Some(&b"FROM PORT SEVEN"[..]), "{model}: --udp-allow-low-ports");
        let own_port = bind_udp(&format!("127.0.0.2:{}", addr.port()));
        assert_eq!(
            udp_reply_from(&own_port, addr, b"same port", no_reply),
            None,
            "{model}: own port answered"
        );
        assert_udp_answered(addr);
        let summary = stop(&mut server);
        assert_eq!(summary.get("udp_ignored_source_port"), 1, "{model}: {}", summary.line);
        assert_eq!(summary.get("udp_replies"), 2, "{model}: {}", summary.line);
    }
}

/// Request `i` of the rate tests: 1,000 bytes, numbered, lowercase.
fn numbered_request(i: usize) -> Vec<u8> {
    let mut request = format!("{i:03} ").into_bytes();
    request.resize(1000, b'r');
    request
}

/// Must hold: with `--udp-rate 10000 --udp-burst 20000 --udp-rate-loopback`, a client sending 100
/// datagrams of 1,000 bytes as fast as it can gets about the burst's worth of replies (20; between
/// 15 and 40 accepted), each whole, and the summary counts the rest (`udp_rate_limited`). Without
/// `--udp-rate-loopback` loopback clients are exempt: 100 requests sent one at a time all get
/// their reply.
fn udp_rate_limit(model: Model) {
    const REQUESTS: usize = 100;
    let rate = ["--udp-rate", "10000", "--udp-burst", "20000"];
    let mut limited = serve_upcase_model(model, &[&rate[..], &["--udp-rate-loopback"]].concat());
    let addr = limited.udp();
    let socket = udp_socket(addr, Duration::from_millis(500));
    let started = Instant::now();
    for i in 0..REQUESTS {
        socket.send(&numbered_request(i)).unwrap();
    }
    let sending = started.elapsed();
    let mut replies = 0;
    let mut buffer = [0; 2048];
    for _ in 0..=REQUESTS {
        match socket.recv(&mut buffer) {
            Ok(n) => {
                let i: usize = std::str::from_utf8(&buffer[..3]).unwrap().parse().unwrap();
                assert_eq!(&buffer[..n], &numbered_request(i).to_ascii_uppercase()[..], "{model}: reply {i}");
                replies += 1;
            }
            Err(e) if is_timeout(&e) => break,
            Err(e) => panic!("{model}: {e}"),
        }
    }
    eprintln!("{model}: rate-limited client: {replies} of {REQUESTS} answered (sent in {sending:.2?})");
    assert!((15..=40).contains(&replies), "{model}: {replies} replies to {REQUESTS} requests");
    let summary = stop(&mut limited);
    assert!(summary.get("udp_rate_limited") > 0, "{model}: {}", summary.line);
    assert_eq!(summary.get("udp_replies"), replies as u64, "{model}: {}", summary.line);

    let mut exempt = serve_upcase_model(model, &rate);
    let addr = exempt.udp();
    let socket = udp_socket(addr, PATIENCE);
    for i in 0..REQUESTS {
        socket.send(&numbered_request(i)).unwrap();
        let n = socket.recv(&mut buffer).unwrap_or_else(|e| panic!("{model}: no reply to request {i}: {e}"));
        assert_eq!(&buffer[..n], &numbered_request(i).to_ascii_uppercase()[..], "{model}: reply {i}");
    }
    let summary = stop(&mut exempt);
    assert_eq!(summary.get("udp_rate_limited"), 0, "{model}: {}", summary.line);
    assert_eq!(summary.get("udp_replies"), REQUESTS as u64, "{model}: {}", summary.line);
}

/// Must hold: SIGTERM while a 100 MiB stream is in flight (sent and read at once) with
/// `--grace 30s` lets the stream finish byte for byte (nothing lost, nothing cut, nothing closed
/// at shutdown), then the server exits 0 by itself, long before the grace runs out. The time from
/// the signal to the exit is printed.
fn sigterm_lets_a_100_mib_stream_finish(model: Model) {
    const TOTAL: usize = 100 << 20;
    let units = TOTAL / UNIT.len();
    let mut server = serve_upcase_model(model, &["--grace", "30s"]);
    let stream = connect(server.tcp());
    let writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || send_units(writer, units));
    let progress = Arc::new(AtomicUsize::new(0));
    let reader = {
        let progress = Arc::clone(&progress);
        thread::spawn(move || -> io::Result<usize> {
            let mut checker = ReplyChecker::default();
            let mut buffer = vec![0; 256 * 1024];
            loop {
                let n = (&stream).read(&mut buffer)?;
                if n == 0 {
                    return Ok(checker.received);
                }
                checker.check(&buffer[..n]);
                progress.store(checker.received, Ordering::Relaxed);
            }
        })
    };
    let expected = units * UNIT_UPPER.len();
    let deadline = Instant::now() + PATIENCE;
    while progress.load(Ordering::Relaxed) < 10 << 20 {
        assert!(Instant::now() < deadline && !reader.is_finished(), "{model}: stream stalled before 10 MiB");
        thread::sleep(Duration::from_millis(1));
    }
    let signalled = Instant::now();
    server.guard.sigterm();
    let at_signal = progress.load(Ordering::Relaxed);
    assert!(at_signal < expected, "{model}: the stream was over before the signal was sent");

    let received = reader.join().unwrap().unwrap_or_else(|e| panic!("{model}: reading the reply: {e}"));
    sender.join().unwrap().unwrap_or_else(|e| panic!("{model}: sending: {e}"));
    let finished = signalled.elapsed();
    assert_eq!(received, expected, "{model}: reply length");
    let status = server.guard.wait_exit(PATIENCE);
    let exited = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "{model}: exit status; stderr:\n{}", server.guard.stderr());
    eprintln!(
        "{model}: SIGTERM at {:.1} MiB of {:.1} MiB of reply; stream finished {finished:.2?} and the \
         server exited {exited:.2?} after the signal",
        at_signal as f64 / f64::from(1 << 20),
        expected as f64 / f64::from(1 << 20)
    );
    assert!(exited < Duration::from_secs(20), "{model}: exit took {exited:?}");
    let summary = summary(&server.guard);
    assert_eq!(summary.get("tcp_closed_at_shutdown"), 0, "{model}: {}", summary.line);
    assert_eq!(summary.get("tcp_errors"), 0, "{model}: {}", summary.line);
    assert_eq!(summary.get("tcp_bytes_in"), (units * UNIT.len()) as u64, "{model}: {}", summary.line);
    assert_eq!(summary.get("tcp_bytes_out"), expected as u64, "{model}: {}", summary.line);
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The whole reply, then a clean close.
    Answered,
    /// No reply at all (refused, reset, closed): the gap between the two servers.
    Failed(String),
    /// Part of a reply, or a wrong one: must never happen.
    Cut(usize),
}

/// One exchange of a hammering client, never panicking: connection errors are outcomes.
fn try_exchange(addr: SocketAddr, message: &str) -> Outcome {
    let (reply, error) = tcp_reply_and_error_within(addr, message.as_bytes(), Duration::from_secs(2));
    if error.is_none() && reply == message.to_uppercase().as_bytes() {
        Outcome::Answered
    } else if !reply.is_empty() {
        Outcome::Cut(reply.len())
    } else {
        Outcome::Failed(error.map_or_else(|| "closed without a reply".to_owned(), |e| e.to_string()))
    }
}

/// Must hold: 8 clients doing TCP exchanges in a loop on port P while the server is stopped with
/// SIGTERM and a new one started on P: the new server binds at once (no "address in use") as soon
/// as the old one has exited, exchanges fail only in the gap (none is ever cut: an exchange gets
/// its whole reply or none), and every client's last exchanges succeed on the new server. The
/// old server finishes its in-flight exchanges and exits 0.
fn restart_while_clients_hammer(model: Model) {
    const CLIENTS: usize = 8;
    let mut old = serve_upcase_model(model, &[]);
    let addr = old.tcp();
    let stop_clients = Arc::new(AtomicBool::new(false));
    let answered: Arc<Vec<AtomicUsize>> = Arc::new((0..CLIENTS).map(|_| AtomicUsize::new(0)).collect());
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (stop_clients, answered) = (Arc::clone(&stop_clients), Arc::clone(&answered));
            thread::spawn(move || {
                let mut log = Vec::new();
                for n in 0..100_000 {
                    if stop_clients.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(10) {
                        break;
                    }
                    let at = Instant::now();
                    let outcome = try_exchange(addr, &format!("client {c}, exchange {n}: straße"));
                    if outcome == Outcome::Answered {
                        answered[c].fetch_add(1, Ordering::Relaxed);
                    } else {
                        thread::sleep(Duration::from_millis(10));
                    }
                    log.push((at, outcome));
                    // Hammering, but not so fast that TIME_WAIT uses up the ephemeral ports.
                    thread::sleep(Duration::from_millis(2));
                }
                log
            })
        })
        .collect();
    // Lets the clients hammer for at least 300 ms, until each has at least `at_least` answers.
    let hammer = |at_least: &[usize]| {
        let since = Instant::now();
        let deadline = since + Duration::from_secs(5);
        while since.elapsed() < Duration::from_millis(300)
            || answered.iter().zip(at_least).any(|(a, &min)| a.load(Ordering::Relaxed) < min)
        {
            assert!(Instant::now() < deadline, "{model}: clients not answered: {answered:?}");
            thread::sleep(Duration::from_millis(5));
        }
    };
    hammer(&[5; CLIENTS]);

    let signalled = Instant::now();
    old.guard.sigterm();
    let status = old.guard.wait_exit(PATIENCE);
    let old_exited = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "{model}: old server's exit; stderr:\n{}", old.guard.stderr());
    let old_summary = summary(&old.guard);
    let mut new = serve_upcase_on(&addr.to_string(), &["--model", model.name()]);
    let restarted = Instant::now();
    assert_eq!(new.tcp(), addr);
    let before_restart: Vec<usize> = answered.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    hammer(&before_restart.iter().map(|n| n + 5).collect::<Vec<_>>());
    stop_clients.store(true, Ordering::Relaxed);

    let logs: Vec<Vec<(Instant, Outcome)>> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let all = || logs.iter().flatten();
    let cut: Vec<_> = all().filter(|(_, o)| matches!(o, Outcome::Cut(_))).collect();
    assert!(cut.is_empty(), "{model}: exchanges cut: {cut:?}");
    let failed: Vec<&String> = all()
        .filter_map(|(_, o)| match o {
            Outcome::Failed(why) => Some(why),
            _ => None,
        })
        .collect();
    let after = all().filter(|(at, o)| *at >= restarted && *o == Outcome::Answered).count();
    eprintln!(
        "{model}: {} exchanges, {} failed (first: {:?}); old server exited {old_exited:.2?} after \
         SIGTERM, new one ready {:.2?} after SIGTERM, {after} answered by it",
        all().count(),
        failed.len(),
        failed.first(),
        restarted - signalled
    );
    for (c, log) in logs.iter().enumerate() {
        let last: Vec<&Outcome> = log.iter().rev().take(5).map(|(_, o)| o).collect();
        assert!(
            last.iter().all(|o| **o == Outcome::Answered),
            "{model}: client {c}'s last exchanges: {last:?}"
        );
    }
    assert_eq!(old_summary.get("tcp_closed_at_shutdown"), 0, "{model}: old server: {}", old_summary.line);
    let new_summary = stop(&mut new);
    assert!(new_summary.get("tcp_accepted") >= (CLIENTS * 5) as u64, "{model}: {}", new_summary.line);
}

/// The first SIGTERM starts a graceful stop that an open stream would keep going for a minute;
/// the second one ends the process at once, with status 130.
#[test]
fn second_signal_exits_at_once() {
    let mut server = serve_upcase_model(Model::Async, &["--grace", "60s"]);
    let mut open = connect(server.tcp());
    open.write_all(b"x").unwrap();
    let mut reply = [0; 1];
    open.read_exact(&mut reply).unwrap();
    server.guard.sigterm();
    thread::sleep(Duration::from_millis(300));
    assert!(server.guard.is_running(), "still in its grace period");
    let started = Instant::now();
    server.guard.sigterm();
    let status = server.guard.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(130));
    eprintln!("second signal to exit: {:?}", started.elapsed());
}
