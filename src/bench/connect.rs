//! Before the clock starts: find the address of the target that answers, and open every
//! flow's connection or socket, so that neither eats into the measured run.
//!
//! Only a target that cannot be reached at all stops the bench here; a flow whose connection
//! fails is handed its error and counts it once the run starts. Never sends load.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use super::payload::Payload;
use super::{tcp, udp, BenchError, Options, Pattern};
use crate::net::{NetError, Transport, RECEIVE_BUFFER};

/// A flow's connection or socket, opened before the clock starts so that opening many does
/// not eat into the run.
pub(crate) enum Opened {
    /// TCP rr: its connection, or why it could not be made (the flow counts that and retries).
    Rr(io::Result<TcpStream>),
    /// TCP stream: likewise.
    Stream(io::Result<TcpStream>),
    /// TCP crr: a connection per request, made by the flow.
    Crr,
    /// UDP: its own socket.
    Udp(UdpSocket),
}

pub(crate) async fn open_flows(options: &Options, addr: SocketAddr) -> Result<Vec<Opened>, BenchError> {
    let n = options.conns;
    match (options.transport, options.pattern) {
        (Transport::Udp, _) => {
            let mut sockets = Vec::with_capacity(n);
            for _ in 0..n {
                let socket = udp::socket_for(addr)
                    .await
                    .map_err(|reason| BenchError::Setup { what: "cannot open a UDP socket", reason })?;
                sockets.push(Opened::Udp(socket));
            }
            Ok(sockets)
        }
        (Transport::Tcp, Pattern::Crr) => Ok((0..n).map(|_| Opened::Crr).collect()),
        (Transport::Tcp, pattern) => {
            let connecting: Vec<_> =
                (0..n).map(|_| tokio::spawn(tcp::connect(addr, options.timeout))).collect();
            let mut connections = Vec::with_capacity(n);
            for task in connecting {
                let connection = task.await.unwrap_or_else(|e| Err(io::Error::other(e)));
                connections.push(if pattern == Pattern::Stream {
                    Opened::Stream(connection)
                } else {
                    Opened::Rr(connection)
                });
            }
            Ok(connections)
        }
    }
}

/// The first address of the target that accepts a TCP connection.
pub(crate) async fn probe_tcp(addrs: &[SocketAddr], timeout: Duration) -> Result<SocketAddr, BenchError> {
    let mut first_failure = None;
    for &addr in addrs {
        match tcp::connect(addr, timeout).await {
            Ok(_) => return Ok(addr),
            Err(reason) => {
                first_failure.get_or_insert(NetError::Connect { addr, reason }.into());
            }
        }
    }
    Err(first_failure.unwrap_or_else(|| no_address(addrs)))
}

/// The first address of the target that answers a UDP request; else the first that did not
/// refuse it (a lossy server is measured, not rejected: its losses will show in the report).
pub(crate) async fn probe_udp(
    addrs: &[SocketAddr],
    payload: &Payload,
    timeout: Duration,
) -> Result<SocketAddr, BenchError> {
    /// A probe is sent again this often, so one lost datagram does not cost the whole timeout.
    const RESEND: Duration = Duration::from_millis(100);
    let mut silent = None;
    let mut buffer = vec![0; RECEIVE_BUFFER];
    for &addr in addrs {
        let socket = udp::socket_for(addr)
            .await
            .map_err(|reason| BenchError::Setup { what: "cannot open a UDP socket", reason })?;
        let give_up = Instant::now() + timeout;
        loop {
            let refused = |e: &io::Error| e.kind() == io::ErrorKind::ConnectionRefused;
            match socket.send(payload.request()).await {
                Err(e) if refused(&e) => break,
                Err(reason) => return Err(BenchError::Setup { what: "cannot send a UDP probe", reason }),
                Ok(_) => {}
            }
            let wait_until = give_up.min(Instant::now() + RESEND);
            match tokio::time::timeout_at(wait_until, socket.recv(&mut buffer)).await {
                Ok(Ok(_)) => return Ok(addr),
                Ok(Err(e)) if refused(&e) => break,
                Ok(Err(reason)) => {
                    return Err(BenchError::Setup { what: "cannot receive a UDP probe", reason })
                }
                Err(_) if Instant::now() >= give_up => {
                    silent.get_or_insert(addr);
                    break;
                }
                Err(_) => {}
            }
        }
    }
    match (silent, addrs.first()) {
        (Some(addr), _) => Ok(addr),
        (None, Some(&addr)) => Err(NetError::Unreachable { addr }.into()),
        (None, None) => Err(no_address(addrs)),
    }
}

fn no_address(addrs: &[SocketAddr]) -> BenchError {
    NetError::Resolve {
        spec: format!("{addrs:?}"),
        reason: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
    }
    .into()
}
