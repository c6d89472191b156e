//! Network facts and helpers that the server and the client share: how an address is resolved,
//! and how large a UDP datagram can be. No sockets are opened here.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// Largest UDP payload over IPv4: 65,535 − 20 (IP header) − 8 (UDP header).
pub const MAX_IPV4_PAYLOAD: usize = 65_507;
/// Largest UDP payload over IPv6 without jumbograms: 65,535 − 8 (UDP header).
pub const MAX_IPV6_PAYLOAD: usize = 65_527;
/// A receive buffer larger than any UDP payload, so the kernel never has to cut a datagram.
pub const RECEIVE_BUFFER: usize = 65_536;

/// Resolves `host:port` or `[v6]:port` to its addresses, IPv4 first, without repeats.
///
/// `localhost` always means both loopback addresses, 127.0.0.1 and ::1, whatever `/etc/hosts`
/// says (many systems list only one), so that the default server answers IPv4 and IPv6 clients.
/// IPv4 comes first because the lecture's programs (and most student servers) bind IPv4 only.
pub fn resolve(spec: &str) -> io::Result<Vec<SocketAddr>> {
    let mut addrs: Vec<SocketAddr> = match localhost_port(spec) {
        Some(port) => vec![(Ipv4Addr::LOCALHOST, port).into(), (Ipv6Addr::LOCALHOST, port).into()],
        None => spec.to_socket_addrs()?.collect(),
    };
    addrs.sort_by_key(|a| (a.is_ipv6(), *a));
    addrs.dedup();
    if addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no addresses"));
    }
    Ok(addrs)
}

/// The port of a `localhost:PORT` spec.
fn localhost_port(spec: &str) -> Option<u16> {
    let (host, port) = spec.rsplit_once(':')?;
    host.eq_ignore_ascii_case("localhost").then(|| port.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_is_both_loopbacks_ipv4_first() {
        let expected =
            vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 12000)), (Ipv6Addr::LOCALHOST, 12000).into()];
        assert_eq!(resolve("LocalHost:12000").ok(), Some(expected));
    }

    #[test]
    fn literal_addresses_and_errors() {
        assert_eq!(resolve("[::1]:7").ok(), Some(vec![SocketAddr::from((Ipv6Addr::LOCALHOST, 7))]));
        assert!(resolve("localhost:notaport").is_err());
        assert!(resolve("127.0.0.1").is_err());
    }
}
