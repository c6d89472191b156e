//! The UDP flow: `rr`, a datagram out and its reply back, on a socket of its own.
//!
//! A reply that does not come within the timeout is counted as lost and the flow goes on. Each
//! request carries its number in its tag, so a reply that arrives after its request was given up
//! is recognised and counted as late, never taken for the reply to the request in flight. Like
//! the TCP flows, this must never block a thread or share a lock in the request loop.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::flow::{Pacer, Problem, Run, Tally};
use super::payload::Payload;
use super::{back_off, mismatch};
use crate::net::describe_io;
use crate::net::RECEIVE_BUFFER;

/// A socket that sends to and receives from `addr` only, so another program's datagrams (or a
/// reply from another address) are never taken for replies.
pub(crate) async fn socket_for(addr: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr =
        if addr.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(addr).await?;
    Ok(socket)
}

/// What came back for one request.
pub(crate) enum Answer {
    /// The expected reply.
    Correct,
    /// A reply, and not the expected one.
    Wrong(String),
    /// Nothing within the timeout.
    Lost,
    /// The socket failed; `ConnectionRefused` means the host said no one listens on the port.
    Failed(io::Error),
}

/// Sends the payload's current request and waits until `give_up` for its reply, counting late
/// replies to earlier requests on the way.
pub(crate) async fn request(
    socket: &UdpSocket,
    payload: &Payload,
    current: u32,
    give_up: Instant,
    buffer: &mut [u8],
    tally: &mut Tally,
) -> Answer {
    if let Err(e) = socket.send(payload.request()).await {
        return Answer::Failed(e);
    }
    tally.bytes_sent += payload.request().len() as u64;
    loop {
        let n = match tokio::time::timeout_at(give_up, socket.recv(buffer)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Answer::Failed(e),
            Err(_) => return Answer::Lost,
        };
        if let Some(answer) = judge(payload, current, buffer.get(..n).unwrap_or_default(), tally) {
            return answer;
        }
    }
}

/// What a datagram that came while request `current` waited says about it; `None` when it is a
/// late reply to an earlier request (counted), and the wait goes on.
pub(crate) fn judge(payload: &Payload, current: u32, reply: &[u8], tally: &mut Tally) -> Option<Answer> {
    tally.bytes_received += reply.len() as u64;
    if reply == payload.expected() {
        return Some(Answer::Correct);
    }
    match payload.sequence_of(reply) {
        Some(earlier) if earlier < current && payload.same_text(reply) => {
            tally.late += 1;
            None
        }
        _ => Some(Answer::Wrong(mismatch(payload.expected(), reply))),
    }
}

/// `rr` over UDP: one request in flight per flow.
pub(crate) async fn rr(
    live: Arc<Run>,
    flow: usize,
    addr: SocketAddr,
    mut payload: Payload,
    socket: UdpSocket,
) -> Tally {
    let mut tally = Tally::for_flow(Arc::clone(&live), flow);
    let mut pacer = Pacer::new(Arc::clone(&live), flow);
    let mut buffer = vec![0; RECEIVE_BUFFER];
    let mut sequence = 0u32;
    while let Some(due) = pacer.next(&mut tally).await {
        payload.stamp(sequence);
        let sent = Instant::now();
        let answer = request(&socket, &payload, sequence, sent + live.timeout, &mut buffer, &mut tally).await;
        match answer {
            Answer::Correct => tally.ok(due, sent),
            Answer::Wrong(described) => tally.problem(Problem::Wrong, || format!("udp {addr}: {described}")),
            Answer::Lost => tally.problem(Problem::Timeout, || lost(addr, sequence, live.timeout)),
            Answer::Failed(e) => {
                tally.problem(Problem::Connection, || failed(addr, &e));
                back_off(&live).await;
            }
        }
        sequence = sequence.wrapping_add(1);
    }
    tally
}

/// How a lost request is described.
pub(crate) fn lost(addr: SocketAddr, sequence: u32, timeout: Duration) -> String {
    format!("udp {addr}: no reply to request {sequence} within {timeout:?}")
}

/// How a failed socket is described.
pub(crate) fn failed(addr: SocketAddr, error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::ConnectionRefused {
        format!("udp {addr}: port unreachable (the server stopped, or never listened there)")
    } else {
        format!("udp {addr}: {}", describe_io(error))
    }
}
