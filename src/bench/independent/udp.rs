//! The UDP flow of independent clients: `rr` on a blocking socket of the flow's own thread, a
//! datagram out and its reply back, as the lecture's UDP client does it.
//!
//! Replies are judged exactly as the multiplexed flow judges them (`bench::udp::judge`): a late
//! reply to an earlier request is counted as late, never taken for the reply in flight. No wait is
//! longer than the timeout.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::back_off;
use crate::bench::flow::{Pacer, Problem, Run, Tally};
use crate::bench::payload::Payload;
use crate::bench::udp::{failed, judge, lost, Answer};
use crate::net::{is_timeout, RECEIVE_BUFFER};

/// A socket that sends to and receives from `addr` only, waiting at most `timeout` for a reply.
pub(super) fn socket_for(addr: SocketAddr, timeout: Duration) -> io::Result<UdpSocket> {
    let local: SocketAddr =
        if addr.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = UdpSocket::bind(local)?;
    socket.connect(addr)?;
    socket.set_read_timeout(Some(timeout))?;
    Ok(socket)
}

/// `rr` over UDP: one request in flight.
pub(super) fn rr(
    live: Arc<Run>,
    flow: usize,
    addr: SocketAddr,
    mut payload: Payload,
    socket: io::Result<UdpSocket>,
) -> Tally {
    let mut tally = Tally::for_flow(Arc::clone(&live), flow);
    let socket = match socket {
        Ok(socket) => socket,
        Err(e) => {
            tally.problem(Problem::Connection, || format!("cannot open a UDP socket: {e}"));
            return tally;
        }
    };
    let mut pacer = Pacer::new(Arc::clone(&live), flow);
    let mut buffer = vec![0; RECEIVE_BUFFER];
    let mut sequence = 0u32;
    while let Some(due) = pacer.next_blocking(&mut tally) {
        payload.stamp(sequence);
        let sent = Instant::now();
        match request(&socket, &payload, sequence, sent + live.timeout, live.timeout, &mut buffer, &mut tally)
        {
            Answer::Correct => tally.ok(due, sent),
            Answer::Wrong(described) => tally.problem(Problem::Wrong, || format!("udp {addr}: {described}")),
            Answer::Lost => tally.problem(Problem::Timeout, || lost(addr, sequence, live.timeout)),
            Answer::Failed(e) => {
                tally.problem(Problem::Connection, || failed(addr, &e));
                back_off(&live);
            }
        }
        sequence = sequence.wrapping_add(1);
    }
    tally
}

/// Sends the payload's current request and waits until `give_up` for its reply; the socket
/// waits at most `timeout` per receive, and is set to wait less only after a late reply.
fn request(
    socket: &UdpSocket,
    payload: &Payload,
    current: u32,
    give_up: Instant,
    timeout: Duration,
    buffer: &mut [u8],
    tally: &mut Tally,
) -> Answer {
    if let Err(e) = socket.send(payload.request()) {
        return Answer::Failed(e);
    }
    tally.bytes_sent += payload.request().len() as u64;
    let mut shortened = false;
    let answer = loop {
        match socket.recv(buffer) {
            Ok(n) => {
                if let Some(answer) = judge(payload, current, buffer.get(..n).unwrap_or_default(), tally) {
                    break answer;
                }
            }
            Err(e) if is_timeout(&e) => break Answer::Lost,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Answer::Failed(e),
        }
        // A late reply came: wait only for what is left of this request's time.
        let left = give_up.saturating_duration_since(Instant::now());
        if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
            break Answer::Lost;
        }
        shortened = true;
    };
    if shortened && socket.set_read_timeout(Some(timeout)).is_err() {
        return Answer::Failed(io::Error::other("cannot set the socket's receive timeout"));
    }
    answer
}
