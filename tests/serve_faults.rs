//! Faults injected on purpose (`upcase serve --drop`, `--delay`, `--duplicate`, `--reorder`,
//! `--split`, `--pause`, `--seed`), each seen by a real client over loopback, in the async model
//! and a blocking one (iterative), with the server's own counters agreeing; and the command line's
//! start line and exit summary.
//!
//! Timings are only ever lower bounds here: a delay or a pause made on purpose cannot come early,
//! however busy the machine; nothing asserts that anything is fast.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use support::*;
use upcase::faults::{Chance, Delay, Faults, Split};
use upcase::server::{Config, Model, Snapshot};

fn faulty(model: Model, faults: Faults) -> TestServer {
    TestServer::start(Config { model, workers: 1, faults: Some(faults), ..Config::default() })
}

fn chance(p: f64) -> Chance {
    Chance::new(p).unwrap()
}

/// Sends requests `0`..`count` in bursts of 50 (so no socket buffer overflows) and returns the
/// numbers of those answered, each reply checked: after each burst, as many replies as the server
/// counts sent.
fn answered(server: &TestServer, socket: &UdpSocket, count: usize) -> BTreeSet<usize> {
    let mut answered = BTreeSet::new();
    let mut buffer = vec![0; 2048];
    for burst in (0..count).collect::<Vec<_>>().chunks(50) {
        for n in burst {
            socket.send(format!("request {n}").as_bytes()).unwrap();
        }
        let sent = burst[burst.len() - 1] as u64 + 1;
        let decided = |s: &Snapshot| s.udp_requests == sent && s.udp_replies + s.fault_udp_dropped == sent;
        let replies = server.stats_eventually("the burst answered or dropped", decided).udp_replies;
        while (answered.len() as u64) < replies {
            let len = socket.recv(&mut buffer).expect("a reply the server sent");
            let reply = std::str::from_utf8(&buffer[..len]).unwrap();
            let n = reply.strip_prefix("REQUEST ").expect(reply).parse().unwrap();
            assert!(answered.insert(n), "request {n} answered twice");
        }
    }
    answered
}

/// 500 requests, a fifth of the replies dropped with seed 7: about 100 lost, every one counted,
/// and the same seed loses the very same ones again.
fn drop_rate_is_as_asked_and_the_seed_repeats_it(model: Model) {
    let faults = Faults { drop: chance(0.2), seed: 7, ..Faults::default() };
    let run = || {
        let server = faulty(model, faults.clone());
        let socket = udp_socket(server.addr, PATIENCE);
        let answered = answered(&server, &socket, 500);
        let stats = server.stats_eventually("500 requests", |s| s.udp_requests == 500);
        assert_eq!(stats.fault_udp_dropped as usize, 500 - answered.len(), "{stats:?}");
        assert_eq!(stats.udp_replies as usize, answered.len());
        answered
    };
    let first = run();
    let lost = 500 - first.len();
    assert!((60..=140).contains(&lost), "{lost} of 500 lost, for 20%");
    assert_eq!(run(), first, "the same seed drops the same replies");
}

/// Every reply 300 ms late: none comes sooner, over UDP or TCP, and the socket answers other
/// requests while one waits.
fn delays_hold_replies_back(model: Model) {
    let by = Duration::from_millis(300);
    let server =
        faulty(model, Faults { delay: Some(Delay { by, chance: Chance::ALWAYS }), ..Faults::default() });
    let socket = udp_socket(server.addr, PATIENCE);
    let sent = Instant::now();
    socket.send(b"first").unwrap();
    socket.send(b"second").unwrap();
    let mut buffer = [0; 64];
    let len = socket.recv(&mut buffer).unwrap();
    let first = sent.elapsed();
    assert_eq!(&buffer[..len], b"FIRST");
    let len = socket.recv(&mut buffer).unwrap();
    assert_eq!(&buffer[..len], b"SECOND");
    assert!(first >= by, "a reply came {first:?} after its request, delayed by {by:?}");
    // Both were held at once: the second did not wait for the first to be sent.
    assert!(sent.elapsed() < first + by, "the loop waited for one delayed reply before the next");

    let started = Instant::now();
    assert_eq!(tcp_reply(server.addr, b"late"), b"LATE");
    assert!(started.elapsed() >= by);
    let stats = server.stats_eventually("delays counted", |s| s.fault_tcp_delayed == 1);
    assert_eq!(stats.fault_udp_delayed, 2);
}

/// Every reply sent twice.
fn duplicates_arrive_twice(model: Model) {
    let server = faulty(model, Faults { duplicate: Chance::ALWAYS, ..Faults::default() });
    let socket = udp_socket(server.addr, PATIENCE);
    socket.send(b"twice").unwrap();
    let mut buffer = [0; 64];
    for _ in 0..2 {
        let len = socket.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..len], b"TWICE");
    }
    socket.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    assert!(socket.recv(&mut buffer).is_err(), "a third copy");
    assert_eq!(server.stats_eventually("duplicate counted", |s| s.udp_replies == 2).fault_udp_duplicated, 1);
}

/// Every reply held for the next: the second request's reply overtakes the first's; a lone
/// reply is sent anyway once it has waited long enough.
fn reordered_replies_arrive_out_of_order(model: Model) {
    let server = faulty(model, Faults { reorder: Chance::ALWAYS, ..Faults::default() });
    let socket = udp_socket(server.addr, PATIENCE);
    socket.send(b"one").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    socket.send(b"two").unwrap();
    let mut buffer = [0; 64];
    let mut got = Vec::new();
    for _ in 0..2 {
        let len = socket.recv(&mut buffer).unwrap();
        got.push(String::from_utf8_lossy(&buffer[..len]).into_owned());
    }
    assert_eq!(got, ["TWO", "ONE"]);
    let lone = Instant::now();
    socket.send(b"alone").unwrap();
    let len = socket.recv(&mut buffer).unwrap();
    assert_eq!(&buffer[..len], b"ALONE");
    assert!(lone.elapsed() >= upcase::faults::REORDER_HOLD);
    assert_eq!(server.stats_eventually("reorders counted", |s| s.udp_replies == 3).fault_udp_reordered, 2);
}

/// A TCP reply in 4-byte segments, 150 ms apart: it arrives in pieces, never all at once, and
/// the pauses add up.
fn split_replies_arrive_in_segments_with_pauses(model: Model) {
    let pause = Duration::from_millis(150);
    let split = Split { bytes: 4, chance: Chance::ALWAYS };
    let server = faulty(model, Faults { split: Some(split), pause, ..Faults::default() });
    let mut stream = connect(server.addr);
    stream.write_all(b"abcdefghijklmnop").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let (mut reply, mut reads, mut chunk) = (Vec::new(), Vec::new(), [0; 64]);
    let mut first_byte = None;
    loop {
        let n = stream.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        first_byte.get_or_insert_with(Instant::now);
        reads.push(n);
        reply.extend_from_slice(&chunk[..n]);
    }
    let spread = first_byte.unwrap().elapsed();
    assert_eq!(reply, b"ABCDEFGHIJKLMNOP");
    assert!(reads.len() >= 2, "one read got the whole reply: {reads:?}");
    assert!(reads.iter().all(|n| n % 4 == 0), "segments of 4 bytes: {reads:?}");
    assert!(spread >= pause * 3, "4 segments 150 ms apart arrived within {spread:?}");
    assert_eq!(server.stats_eventually("split counted", |s| s.fault_tcp_split == 1).tcp_bytes_out, 16);
}

/// On the wildcard address (0.0.0.0), replies dropped, late, doubled or held back on purpose
/// leave from the address their request was sent to, as every reply does there: 127.0.0.2 or
/// 127.0.0.3, both the machine's on loopback, where the kernel's own pick would be 127.0.0.1.
fn on_the_wildcard_address_faulty_replies_leave_from_the_address_written_to(model: Model) {
    let wildcard = |faults| {
        let config = Config { model, workers: 1, faults: Some(faults), ..Config::default() };
        TestServer::start_on("0.0.0.0:0", config)
    };
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    let reply = || recv_text_from(&socket);

    // Half dropped; the rest late, and sent twice.
    let delay = Delay { by: Duration::from_millis(100), chance: Chance::ALWAYS };
    let faults = Faults {
        drop: chance(0.5),
        delay: Some(delay),
        duplicate: Chance::ALWAYS,
        seed: 5,
        ..Faults::default()
    };
    let server = wildcard(faults);
    for n in 0..20 {
        let to = SocketAddr::from(([127, 0, 0, 2 + n % 2], server.addr.port()));
        socket.send_to(format!("request {n} to {to}").as_bytes(), to).unwrap();
    }
    let all_sent = |s: &Snapshot| {
        s.udp_requests == 20
            && s.fault_udp_dropped + s.fault_udp_duplicated == 20
            && s.udp_replies == 2 * s.fault_udp_duplicated
    };
    let stats = server.stats_eventually("every reply dropped or sent twice, late", all_sent);
    assert!(stats.fault_udp_dropped > 0 && stats.fault_udp_duplicated > 0, "{stats:?}");
    for _ in 0..stats.udp_replies {
        let (text, from) = reply();
        let sent_to: SocketAddr = text.split_once(" TO ").unwrap().1.parse().unwrap();
        assert_eq!(from, sent_to, "{text}");
    }

    // Every reply held for the next: the one held leaves from its own address after the other's.
    let server = wildcard(Faults { reorder: Chance::ALWAYS, ..Faults::default() });
    let [two, three] = [2, 3].map(|last| SocketAddr::from(([127, 0, 0, last], server.addr.port())));
    socket.send_to(b"one", two).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    socket.send_to(b"two", three).unwrap();
    assert_eq!(reply(), ("TWO".to_owned(), three));
    assert_eq!(reply(), ("ONE".to_owned(), two));
}

for_each_model!(
    drop_rate_is_as_asked_and_the_seed_repeats_it: [iterative, asynchronous],
    delays_hold_replies_back: [iterative, asynchronous],
    duplicates_arrive_twice: [iterative, asynchronous],
    reordered_replies_arrive_out_of_order: [iterative, asynchronous],
    split_replies_arrive_in_segments_with_pauses: [iterative, asynchronous],
    on_the_wildcard_address_faulty_replies_leave_from_the_address_written_to: [iterative, asynchronous],
);

/// The command line: a bad probability is refused with the range; a lossy server says so at
/// start, `upcase send --udp` still gets every reply by resending, and the exit summary counts
/// what was dropped.
#[test]
fn serve_announces_its_faults_and_counts_them() {
    let mut command = upcase();
    command.args(["serve", "--listen", "127.0.0.1:0", "--drop", "1.5"]);
    let refused = run("upcase serve --drop 1.5", command, b"", PATIENCE);
    assert_eq!(refused.status.code(), Some(2));
    assert!(refused.stderr.contains("from 0 to 1"), "{}", refused.stderr);

    let mut server = serve_upcase(&["--udp", "--drop", "0.5", "--seed", "3"]);
    let lines: String = (1..=10).map(|n| format!("line {n}\n")).collect();
    let to = server.udp().to_string();
    let sent =
        upcase_send(&["--udp", "--to", &to, "--timeout", "200ms", "--retries", "10"], lines.as_bytes());
    sent.assert_success("upcase send --udp through a lossy server");
    let expected: String = (1..=10).map(|n| format!("LINE {n}\n")).collect();
    assert_eq!(sent.text(), expected);
    server.guard.sigterm();
    assert!(server.guard.wait_exit(PATIENCE).success());
    let stderr = server.guard.stderr();
    assert!(
        stderr.contains("faults on, on purpose, for testing a client: UDP replies dropped 50% (seed 3)"),
        "{stderr}"
    );
    let dropped = stderr.split("fault_udp_dropped=").nth(1).expect(&stderr);
    let dropped: u32 = dropped.split_whitespace().next().unwrap().parse().unwrap();
    assert!(dropped >= 1, "{stderr}");
}
