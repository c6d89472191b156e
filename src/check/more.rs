//! The probes beyond one message on one connection: a slow client, many clients at once, several
//! messages on one connection, where UDP replies come from, the reflection-loop guard, and a
//! latency summary. Each is bounded by a deadline of a few timeouts, whatever the server does.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::wire::{self, End};
use super::{expected, Ctx, Row, Status, HELLO};

/// Clients opened at once by the many-clients probe.
const MANY: usize = 100;
/// Round trips timed by the latency probes.
const SAMPLES: usize = 300;

/// TCP: "hello, world" one byte at a time, 10 ms apart, then a half-close.
pub(super) fn slow_client(ctx: &Ctx) -> Row {
    let name = "slow client";
    let want = expected(HELLO);
    let reply = wire::connect(ctx).and_then(|mut stream| {
        for byte in HELLO {
            stream.write_all(std::slice::from_ref(byte))?;
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = stream.shutdown(Shutdown::Write);
        Ok(wire::read_reply(ctx, &mut stream, Some(want.len())))
    });
    match reply {
        Ok(reply) if reply.bytes == want => {
            Row::new(name, Status::Pass, "a message sent one byte at a time came back whole", "")
        }
        Ok(reply) => Row::new(
            name,
            Status::Fail,
            format!("a message sent one byte at a time got {:?}", String::from_utf8_lossy(&reply.bytes)),
            "Keep reading until the client half-closes; one recv may hold a single byte.",
        ),
        Err(e) => {
            Row::new(name, Status::Fail, format!("connection failed: {e}"), "Keep accepting connections.")
        }
    }
}

/// TCP: [`MANY`] connections opened before any is used, then each sends and reads in turn.
pub(super) fn many_clients(ctx: &Ctx) -> Row {
    let name = "many clients";
    let deadline = Instant::now() + ctx.timeout * 5;
    let want = expected(HELLO);
    let mut streams = Vec::with_capacity(MANY);
    for _ in 0..MANY {
        match wire::connect(ctx) {
            Ok(stream) => streams.push(stream),
            Err(e) => {
                return Row::new(
                    name,
                    Status::Fail,
                    format!("connection {} of {MANY} failed: {e}", streams.len() + 1),
                    "Listen with a larger backlog and accept without pausing.",
                )
            }
        }
    }
    for stream in &mut streams {
        let _ = stream.write_all(HELLO);
        let _ = stream.shutdown(Shutdown::Write);
    }
    let mut answered = 0;
    for stream in &mut streams {
        if Instant::now() >= deadline {
            break;
        }
        if wire::read_reply(ctx, stream, Some(want.len())).bytes == want {
            answered += 1;
        }
    }
    if answered == MANY {
        Row::new(name, Status::Pass, format!("{MANY} clients connected at once were all answered"), "")
    } else {
        Row::new(
            name,
            Status::Fail,
            format!(
                "{answered} of {MANY} clients connected at once were answered within {:?}",
                ctx.timeout * 5
            ),
            "Serve connections concurrently and never drop one.",
        )
    }
}

/// TCP: three messages on one connection, each reply read before the next is sent.
pub(super) fn persistent(ctx: &Ctx) -> Row {
    let name = "persistent";
    let outcome = wire::connect(ctx).map(|mut stream| {
        for (n, message) in [&b"one"[..], b"two", b"three"].into_iter().enumerate() {
            let want = expected(message);
            let sent = stream.write_all(message);
            let reply = wire::read_reply(ctx, &mut stream, Some(want.len()));
            if sent.is_err() || reply.bytes != want || reply.end != End::Complete {
                return n;
            }
        }
        3
    });
    match outcome {
        Ok(3) => Row::new(name, Status::Pass, "three messages on one connection, each answered in turn", ""),
        Ok(n) => Row::new(
            name,
            Status::Info,
            format!("one message per connection: message {} on the same connection got no reply", n + 1),
            "Fine for the lecture's protocol; keep reading after a reply to serve clients that reuse it.",
        ),
        Err(e) => {
            Row::new(name, Status::Fail, format!("connection failed: {e}"), "Keep accepting connections.")
        }
    }
}

/// Percentiles of the durations, in microseconds, as "p50 X µs, p99 Y µs".
fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort_unstable();
    let at = |q: usize| samples.get((samples.len() * q / 100).min(samples.len().saturating_sub(1)));
    let us = |d: Option<&Duration>| d.map_or(0, Duration::as_micros);
    format!("p50 {} µs, p99 {} µs over {} round trips", us(at(50)), us(at(99)), samples.len())
}

/// Times up to [`SAMPLES`] round trips of `one` for at most five timeouts; info, or a fail when
/// one went unanswered.
fn latency(ctx: &Ctx, mut one: impl FnMut() -> bool) -> Row {
    let name = "latency";
    let deadline = Instant::now() + ctx.timeout * 5;
    let mut samples = Vec::with_capacity(SAMPLES);
    while samples.len() < SAMPLES && Instant::now() < deadline {
        let start = Instant::now();
        if !one() {
            return Row::new(
                name,
                Status::Fail,
                format!("round trip {} of {SAMPLES} went unanswered", samples.len() + 1),
                "Answer every request, however many came before.",
            );
        }
        samples.push(start.elapsed());
    }
    Row::new(name, Status::Info, percentiles(samples), "")
}

/// TCP: a new connection per round trip, as the lecture's client does.
pub(super) fn tcp_latency(ctx: &Ctx) -> Row {
    let want = expected(HELLO);
    latency(ctx, || wire::tcp_exchange(ctx, HELLO, true, Some(want.len())).is_ok_and(|r| r.bytes == want))
}

/// UDP: one socket, a datagram per round trip.
pub(super) fn udp_latency(ctx: &Ctx) -> Row {
    let want = expected(HELLO);
    match wire::udp_socket(ctx) {
        Ok(socket) => latency(ctx, || {
            socket.send(HELLO).is_ok() && matches!(wire::udp_recv(&socket), Ok(Some(reply)) if reply == want)
        }),
        Err(e) => Row::new("latency", Status::Skip, format!("cannot open a socket: {e}"), ""),
    }
}

/// An unconnected socket of the target's family bound to `port` of loopback, with the timeout.
fn unconnected(ctx: &Ctx, port: u16) -> io::Result<UdpSocket> {
    let ip = if ctx.addr.is_ipv4() { "127.0.0.1" } else { "::1" };
    let local = SocketAddr::new(ip.parse().map_err(|_| io::Error::other("bad address"))?, port);
    let socket = UdpSocket::bind(local)?;
    socket.set_read_timeout(Some(ctx.timeout))?;
    Ok(socket)
}

/// The first datagram back and where it came from, within the timeout.
fn ask(socket: &UdpSocket, to: SocketAddr) -> io::Result<Option<(Vec<u8>, SocketAddr)>> {
    socket.send_to(HELLO, to)?;
    let mut buffer = vec![0; 65_536];
    match socket.recv_from(&mut buffer) {
        Ok((n, from)) => {
            buffer.truncate(n);
            Ok(Some((buffer, from)))
        }
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Ok(None),
        Err(e) => Err(e),
    }
}

/// UDP: the reply must come from the address and port the request went to, or a connected
/// client (and any firewall) drops it.
pub(super) fn reply_port(ctx: &Ctx) -> Row {
    let name = "reply source";
    match unconnected(ctx, 0).and_then(|socket| ask(&socket, ctx.addr)) {
        Ok(Some((_, from))) if from == ctx.addr => {
            Row::new(name, Status::Pass, format!("the reply came from {from}, where the request went"), "")
        }
        Ok(Some((_, from))) => Row::new(
            name,
            Status::Fail,
            format!("the reply came from {from}, not {}", ctx.addr),
            "Reply from the socket the request arrived on (bind the address clients use).",
        ),
        Ok(None) => Row::new(name, Status::Fail, "no reply to an unconnected socket", "Reply with sendto()."),
        Err(e) => Row::new(name, Status::Skip, format!("cannot probe: {e}"), ""),
    }
}

/// UDP: a datagram from source port 7 (echo) must be ignored, or a spoofed one can start an
/// endless loop between the server and an echo service. Needs to bind port 7 (root).
pub(super) fn port_seven(ctx: &Ctx) -> Row {
    let name = "source port 7";
    // Another check may hold port 7 for a moment: wait for it, within a bound.
    let deadline = Instant::now() + ctx.timeout * 5;
    let socket = loop {
        match unconnected(ctx, 7) {
            Ok(socket) => break socket,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Row::new(name, Status::Skip, format!("cannot bind port 7 to probe: {e}"), ""),
        }
    };
    match ask(&socket, ctx.addr) {
        Ok(Some(_)) => Row::new(
            name,
            Status::Warn,
            "answered a datagram from source port 7 (echo): a spoofed one can start a reflection loop",
            "Ignore datagrams from source ports below 1024 and from the server's own port.",
        ),
        Ok(None) => Row::new(name, Status::Pass, "ignored a datagram from source port 7 (echo)", ""),
        Err(e) => Row::new(name, Status::Skip, format!("cannot probe: {e}"), ""),
    }
}
