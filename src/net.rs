//! Network facts and helpers that the server and the client share: how an address is resolved,
//! and how large a UDP datagram can be. No sockets are opened here.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// Largest UDP payload over IPv4: 65,535 − 20 (IP header) − 8 (UDP header).
pub const MAX_IPV4_PAYLOAD: usize = 65_507;
/// Largest UDP payload over IPv6 without jumbograms: 65,535 − 8 (UDP header).
pub const MAX_IPV6_PAYLOAD: usize = 65_527;
/// A receive buffer larger than any UDP payload, so the kernel never has to cut a datagram.
pub const RECEIVE_BUFFER: usize = 65_536;

/// Resolves `host:port` or `[v6]:port` to its addresses, IPv4 first, without repeats.
///
/// IPv4 first because the lecture's programs (and most student servers) bind IPv4 only, so that is
/// where `localhost` most likely answers.
pub fn resolve(spec: &str) -> io::Result<Vec<SocketAddr>> {
    let mut addrs: Vec<SocketAddr> = spec.to_socket_addrs()?.collect();
    addrs.sort_by_key(|a| (a.is_ipv6(), *a));
    addrs.dedup();
    if addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no addresses"));
    }
    Ok(addrs)
}
