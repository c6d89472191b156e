//! UDP abuse: a flood from 1,000 source ports, datagrams from low source ports and from the
//! server's own port, and a client over its rate.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use upcase::server::Model;

use crate::stop;
use crate::support::*;

for_each_model!(udp_flood_from_1000_source_ports, udp_rate_limit);

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

/// Binds a UDP socket to `addr`, saying clearly why when that is not possible. Port 7 is the
/// whole machine's: another test (a check's port-7 probe) may hold it for a moment, so a port in
/// use is waited for, within [`PATIENCE`].
fn bind_udp(addr: &str) -> UdpSocket {
    let deadline = Instant::now() + PATIENCE;
    let mut bound = UdpSocket::bind(addr);
    while matches!(&bound, Err(e) if e.kind() == io::ErrorKind::AddrInUse) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
        bound = UdpSocket::bind(addr);
    }
    match bound {
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
