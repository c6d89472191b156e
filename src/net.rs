//! The network vocabulary every part of upcase shares: the two transports, how an address is
//! resolved, how large a UDP datagram can be, and the one error for failing to reach a server,
//! with one set of hints. Server, client, bench and check all speak it; none defines its own.
//!
//! No sockets are opened here, and nothing here decides what a failure means for its caller.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Largest UDP payload over IPv4: 65,535 − 20 (IP header) − 8 (UDP header).
pub const MAX_IPV4_PAYLOAD: usize = 65_507;
/// Largest UDP payload over IPv6 without jumbograms: 65,535 − 8 (UDP header).
pub const MAX_IPV6_PAYLOAD: usize = 65_527;
/// A receive buffer larger than any UDP payload, so the kernel never has to cut a datagram.
pub const RECEIVE_BUFFER: usize = 65_536;

/// UDP or TCP: the lecture's two ways of carrying a sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Datagrams: one request, one reply.
    Udp,
    /// A byte stream, uppercased as it arrives.
    #[default]
    Tcp,
}

impl Transport {
    /// `udp` or `tcp`, as in messages, flags and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a server could not be reached, or an address not resolved: the failures every client of
/// the network meets, worded once. Each component's own error wraps this one.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The address is not a resolvable `host:port`.
    #[error("cannot resolve {spec:?}: {reason} (give HOST:PORT, e.g. localhost:12000 or [::1]:12000)")]
    Resolve {
        /// The address as given.
        spec: String,
        /// Why it did not resolve.
        reason: io::Error,
    },
    /// No TCP connection could be made.
    #[error("cannot connect to tcp {addr}: {}{}", describe_io(reason), connect_hint(reason))]
    Connect {
        /// The address tried (the first that failed, when there were several).
        addr: SocketAddr,
        /// The operating system's reason.
        reason: io::Error,
    },
    /// The host said that nothing listens on that UDP port (ICMP port unreachable).
    #[error("no server on udp {addr}: port unreachable (nothing is listening there: start `upcase serve`, or check the port)")]
    Unreachable {
        /// The address tried.
        addr: SocketAddr,
    },
}

/// The hint after a failed connect: what to try.
fn connect_hint(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => {
            " (nothing is listening there: start `upcase serve`, or check the port)"
        }
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            " (no answer: check the host, the port and firewalls, or raise --timeout)"
        }
        _ => "",
    }
}

/// An I/O error in a few plain words (the operating system's own words, without its error code,
/// for the common ones).
pub fn describe_io(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset by the server".to_owned(),
        io::ErrorKind::BrokenPipe => "the server closed the connection while we were sending".to_owned(),
        io::ErrorKind::AddrNotAvailable => {
            "no local port left (too many connections in TIME_WAIT: fewer at once, or a shorter run)"
                .to_owned()
        }
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "no answer in time".to_owned(),
        _ => error.to_string(),
    }
}

/// Whether a socket call failed because its timeout expired: SO_RCVTIMEO and SO_SNDTIMEO report
/// expiry as EAGAIN (`WouldBlock`), `connect_timeout` as `TimedOut`.
pub fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// Resolves `host:port` or `[v6]:port` to its addresses, IPv4 first, without repeats.
///
/// `localhost` always means both loopback addresses, 127.0.0.1 and ::1, whatever `/etc/hosts`
/// says (many systems list only one), so that the default server answers IPv4 and IPv6 clients.
/// IPv4 comes first because the lecture's programs (and most student servers) bind IPv4 only.
pub fn resolve(spec: &str) -> Result<Vec<SocketAddr>, NetError> {
    let failed = |reason| NetError::Resolve { spec: spec.to_owned(), reason };
    let mut addrs: Vec<SocketAddr> = match localhost_port(spec) {
        Some(port) => vec![(Ipv4Addr::LOCALHOST, port).into(), (Ipv6Addr::LOCALHOST, port).into()],
        None => spec.to_socket_addrs().map_err(failed)?.collect(),
    };
    addrs.sort_by_key(|a| (a.is_ipv6(), *a));
    addrs.dedup();
    if addrs.is_empty() {
        return Err(failed(io::Error::new(io::ErrorKind::NotFound, "no addresses")));
    }
    Ok(addrs)
}

/// The port of a `localhost:PORT` spec.
fn localhost_port(spec: &str) -> Option<u16> {
    let (host, port) = spec.rsplit_once(':')?;
    host.eq_ignore_ascii_case("localhost").then(|| port.parse().ok()).flatten()
}

/// Connects over TCP to the first of `addrs` that answers within `timeout`; the error names the
/// first address that failed (IPv4 before IPv6, as resolved).
pub fn connect_first(
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<(std::net::TcpStream, SocketAddr), NetError> {
    let mut first_failure = None;
    for &addr in addrs {
        match std::net::TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok((stream, addr)),
            Err(reason) => {
                first_failure.get_or_insert(NetError::Connect { addr, reason });
            }
        }
    }
    Err(first_failure.unwrap_or_else(|| NetError::Resolve {
        spec: format!("{addrs:?}"),
        reason: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
    }))
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
        let error = resolve("127.0.0.1").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.starts_with("cannot resolve \"127.0.0.1\": "), "{error}");
        assert!(error.ends_with("(give HOST:PORT, e.g. localhost:12000 or [::1]:12000)"), "{error}");
    }

    #[test]
    fn a_refused_connection_is_worded_once_with_its_hint() {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
        let refused = NetError::Connect { addr, reason: io::ErrorKind::ConnectionRefused.into() };
        assert_eq!(
            refused.to_string(),
            "cannot connect to tcp 127.0.0.1:1: connection refused (nothing is listening there: start \
             `upcase serve`, or check the port)"
        );
    }
}
