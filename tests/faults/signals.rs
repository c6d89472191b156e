//! Signals and restarts under load: SIGTERM while a 100 MiB stream is in flight, a restart on
//! the same port while clients hammer it, and a second signal during the grace period.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use upcase::server::Model;

use crate::support::*;
use crate::{stop, summary};

for_each_model!(sigterm_lets_a_100_mib_stream_finish, restart_while_clients_hammer);

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
