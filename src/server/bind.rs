//! Opening the server's sockets, with the options a restartable, busy server needs.
//!
//! The caller binds and the serving loops only ever receive ready sockets, so tests can bind port
//! 0 and learn the real port before any loop starts. This module must never serve traffic. A UDP
//! socket on a wildcard address also asks here for each datagram's destination, so that its
//! replies leave from the address the client wrote to (`ask_for_destinations`).
//!
//! # Sharing a port
//!
//! A port is shared by processes only on purpose: with `--reuseport` ([`BindOptions::reuse_port`])
//! every socket has SO_REUSEPORT before it binds, so such servers join one group and the kernel
//! spreads clients over them. Without it, a socket is bound without SO_REUSEPORT first, which
//! fails with "address in use" if anything holds the port (a `--reuseport` group included), and
//! only then given SO_REUSEPORT for the async model's workers to join (`join`).
//!
//! That last step would let a `--reuseport` server join a server started without it, because
//! Linux checks the flag of the sockets already bound, whenever it was set. So a server without
//! `--reuseport` also claims its address in the abstract Unix socket namespace (of the same
//! network namespace as its ports), and a `--reuseport` server that finds the claim taken
//! refuses to join ([`Claim`]).

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::UnixDatagram;

use nix::sys::socket::{setsockopt, sockopt};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use super::ServerError;
use crate::net::Transport;

/// The sockets a server serves: what [`bind`] returns and [`super::Server::start`] takes.
#[derive(Debug)]
pub struct Sockets {
    /// Listening TCP sockets.
    pub tcp: Vec<TcpListener>,
    /// Bound UDP sockets.
    pub udp: Vec<UdpSocket>,
    /// The listen backlog, for the listeners the async model's workers add to each group.
    pub backlog: i32,
    /// The claims on addresses bound without `--reuseport`, held as long as the sockets are.
    pub claims: Vec<Claim>,
}

impl Default for Sockets {
    fn default() -> Self {
        Self { tcp: Vec::new(), udp: Vec::new(), backlog: DEFAULT_BACKLOG, claims: Vec::new() }
    }
}

/// The listen backlog unless told otherwise: 2,000 clients connecting at the same instant all get
/// in (Python's default is 128).
pub const DEFAULT_BACKLOG: i32 = 4096;

impl Sockets {
    /// `(transport, local address)` of every socket, TCP first, for "listening on" lines.
    pub fn local_addrs(&self) -> Vec<(Transport, SocketAddr)> {
        let tcp = self.tcp.iter().filter_map(|l| l.local_addr().ok()).map(|a| (Transport::Tcp, a));
        let udp = self.udp.iter().filter_map(|s| s.local_addr().ok()).map(|a| (Transport::Udp, a));
        tcp.chain(udp).collect()
    }
}

/// What to bind: addresses, transports and the TCP listen backlog.
#[derive(Debug, Clone)]
pub struct BindOptions {
    /// `host:port` or `[v6]:port` strings; a host name binds every address it resolves to.
    pub listen: Vec<String>,
    /// Serve TCP.
    pub tcp: bool,
    /// Serve UDP.
    pub udp: bool,
    /// Length of the queue of connections the kernel completes before `accept` takes them.
    pub backlog: i32,
    /// Share the port with other servers that also say so (`--reuseport`); see the module's
    /// documentation.
    pub reuse_port: bool,
}

/// How many times to look for a port that is free for both TCP and UDP when binding port 0.
const SHARED_PORT_ATTEMPTS: usize = 16;

/// Binds every address in `options`, TCP and UDP on the same port.
///
/// With port 0 the kernel picks the TCP port and UDP is bound to the same number, so a test or
/// a user needs to know one port only. An address that resolves to several (`localhost` to
/// 127.0.0.1 and ::1) binds each; of those, one that the machine does not have (no IPv6) is
/// skipped with a warning as long as another one bound.
pub fn bind(options: &BindOptions) -> Result<Sockets, ServerError> {
    let mut sockets = Sockets { backlog: options.backlog, ..Sockets::default() };
    for spec in &options.listen {
        let addrs = resolve(spec)?;
        let mut bound_any = false;
        let mut unavailable = None;
        for addr in addrs {
            match bind_one(addr, options, &mut sockets) {
                Ok(()) => bound_any = true,
                Err(e) if is_address_unavailable(&e) => {
                    tracing::warn!(address = %addr, error = %e, "skipping an address this machine does not have");
                    unavailable = Some((addr, e));
                }
                Err(e) => return Err(e),
            }
        }
        if let (false, Some((_, e))) = (bound_any, unavailable) {
            return Err(e);
        }
    }
    Ok(sockets)
}

fn resolve(spec: &str) -> Result<Vec<SocketAddr>, ServerError> {
    Ok(crate::net::resolve(spec)?)
}

fn bind_one(addr: SocketAddr, options: &BindOptions, sockets: &mut Sockets) -> Result<(), ServerError> {
    let both = options.tcp && options.udp;
    let attempts = if both && addr.port() == 0 { SHARED_PORT_ATTEMPTS } else { 1 };
    for attempt in 1..=attempts {
        let tcp = if options.tcp {
            Some(tcp_listener_shared(addr, options.backlog, options.reuse_port, &mut sockets.claims)?)
        } else {
            None
        };
        let udp_addr = match &tcp {
            Some(listener) => listener.local_addr().map_err(|e| bind_error(Transport::Tcp, addr, e))?,
            None => addr,
        };
        let udp = if options.udp {
            match udp_socket_shared(udp_addr, options.reuse_port, &mut sockets.claims) {
                Ok(socket) => Some(socket),
                // Port 0: the port the kernel gave TCP is taken for UDP; ask for another.
                Err(ServerError::Bind { reason, .. })
                    if attempt < attempts && reason.kind() == io::ErrorKind::AddrInUse =>
                {
                    continue
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        sockets.tcp.extend(tcp);
        sockets.udp.extend(udp);
        return Ok(());
    }
    Err(bind_error(Transport::Udp, addr, io::Error::from(io::ErrorKind::AddrInUse)))
}

fn is_address_unavailable(error: &ServerError) -> bool {
    match error {
        ServerError::Bind { reason, .. } => {
            reason.kind() == io::ErrorKind::AddrNotAvailable
                || matches!(reason.raw_os_error(), Some(code) if code == 97 /* EAFNOSUPPORT */)
        }
        _ => false,
    }
}

fn bind_error(transport: Transport, addr: SocketAddr, reason: io::Error) -> ServerError {
    ServerError::Bind { transport, addr, reason }
}

/// A listening TCP socket for one server alone, as the admin endpoint's: SO_REUSEADDR, so that
/// a restart is not held up by the connections of the previous server, and never SO_REUSEPORT.
pub fn tcp_listener(addr: SocketAddr, backlog: i32) -> Result<TcpListener, ServerError> {
    let open = || -> io::Result<TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.bind(&addr.into())?;
        socket.listen(backlog)?;
        Ok(socket.into())
    };
    open().map_err(|e| bind_error(Transport::Tcp, addr, e))
}

/// A listening TCP socket with SO_REUSEADDR, founding a port group the async model's workers
/// join (`join`), which no other server can join; or with `reuse_port`, one that joins (or
/// founds) a group of servers sharing the port on purpose.
///
/// On Linux SO_REUSEADDR does not let two servers listen on one port; it only lets a new listener
/// bind while old connections of a previous one linger. IPv6 sockets are IPv6-only so that
/// `[::]:P` and `0.0.0.0:P` can both be bound, as the default of two loopbacks does.
///
/// SO_REUSEPORT, which lets each worker have a socket of its own on the port, would also let a
/// second server started on the same port join the group silently and take part of its clients
/// (the reason nginx makes `reuseport` opt-in). So the socket is bound without it, which fails
/// with "address in use" if anything at all holds the port, and only then given SO_REUSEPORT for
/// the workers to join; its address is claimed so that a `--reuseport` upcase does not join
/// either (the module's documentation). Only a program that sets SO_REUSEPORT itself, as the same
/// user, could still join (docs/OPERATIONS.md).
fn tcp_listener_shared(
    addr: SocketAddr,
    backlog: i32,
    reuse_port: bool,
    claims: &mut Vec<Claim>,
) -> Result<TcpListener, ServerError> {
    let mut open = || -> io::Result<TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        bind_sharing(&socket, addr, Transport::Tcp, reuse_port, claims)?;
        socket.listen(backlog)?;
        Ok(socket.into())
    };
    open().map_err(|e| bind_error(Transport::Tcp, addr, e))
}

/// A bound UDP socket, founding a port group as [`tcp_listener_shared`] does, or with `reuse_port`
/// joining a group of servers sharing the port on purpose.
///
/// No SO_REUSEADDR here: for UDP it would let a second server share the port and silently take
/// half the requests, and UDP has no TIME_WAIT to wait out.
fn udp_socket_shared(
    addr: SocketAddr,
    reuse_port: bool,
    claims: &mut Vec<Claim>,
) -> Result<UdpSocket, ServerError> {
    let mut open = || -> io::Result<UdpSocket> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        ask_for_destinations(&socket, addr);
        bind_sharing(&socket, addr, Transport::Udp, reuse_port, claims)?;
        Ok(socket.into())
    };
    open().map_err(|e| bind_error(Transport::Udp, addr, e))
}

/// On a UDP socket bound (or about to be bound) to a wildcard address, asks the kernel for each
/// datagram's destination, so that its reply can leave from there (`super::pktinfo`): IP_PKTINFO
/// on an IPv4 socket, IPV6_RECVPKTINFO on an IPv6 one (which covers the IPv4 clients of a
/// dual-stack socket too). Set before binding where upcase binds, so that no datagram arrives
/// without it. A socket bound to one address is left as it is: it answers from that address
/// anyway. A socket that refuses is served all the same, its replies from the address the kernel
/// picks, with a warning.
pub(crate) fn ask_for_destinations(socket: &impl AsFd, addr: SocketAddr) {
    if !super::pktinfo::wanted(addr) {
        return;
    }
    let asked = match addr {
        SocketAddr::V4(_) => setsockopt(socket, sockopt::Ipv4PacketInfo, &true),
        SocketAddr::V6(_) => setsockopt(socket, sockopt::Ipv6RecvPacketInfo, &true),
    };
    if let Err(e) = asked {
        tracing::warn!(
            "udp {addr}: cannot ask for the address each datagram is sent to ({e}); replies leave from the address the kernel picks, which on a machine with several addresses may not be the one the client wrote to"
        );
    }
}

/// Binds `socket` to `addr` with SO_REUSEPORT from the start (`reuse_port`: unless a server
/// without it holds the address), or without it and then with it, claiming the address.
fn bind_sharing(
    socket: &Socket,
    addr: SocketAddr,
    transport: Transport,
    reuse_port: bool,
    claims: &mut Vec<Claim>,
) -> io::Result<()> {
    if reuse_port {
        Claim::check_free(transport, addr)?;
        socket.set_reuse_port(true)?;
        return socket.bind(&addr.into());
    }
    socket.bind(&addr.into())?;
    let bound = socket.local_addr()?.as_socket().unwrap_or(addr);
    claims.extend(Claim::take(transport, bound));
    socket.set_reuse_port(true)
}

/// A server's claim on one of its addresses, which a `--reuseport` server must not join: a Unix
/// datagram socket bound to a name in the abstract namespace, which the kernel lets only one
/// socket hold, and frees when the process ends however it ends.
#[derive(Debug)]
pub struct Claim {
    _socket: UnixDatagram,
}

impl Claim {
    fn name(transport: Transport, addr: SocketAddr) -> String {
        format!("upcase/{transport}/{addr}")
    }

    /// Claims `addr`; `None` (logged) when Unix sockets are not allowed here, in which case only
    /// a `--reuseport` server could still join.
    fn take(transport: Transport, addr: SocketAddr) -> Option<Self> {
        let name = Self::name(transport, addr);
        let claimed = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|name| UnixDatagram::bind_addr(&name));
        match claimed {
            Ok(socket) => Some(Self { _socket: socket }),
            Err(e) => {
                tracing::debug!("cannot claim {name} against --reuseport servers: {e}");
                None
            }
        }
    }

    /// Fails with "address in use" when a server without `--reuseport` holds `addr`, or the
    /// wildcard address of its family on its port, which also takes `addr`'s clients.
    fn check_free(transport: Transport, addr: SocketAddr) -> io::Result<()> {
        if addr.port() == 0 {
            return Ok(()); // a port of its own, which no one holds
        }
        let wildcard = SocketAddr::new(
            match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
            },
            addr.port(),
        );
        for held in [addr, wildcard] {
            if Self::is_held(transport, held) {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("Address already in use: {transport} {held} is served by an upcase without --reuseport, which does not share its port"),
                ));
            }
        }
        Ok(())
    }

    fn is_held(transport: Transport, addr: SocketAddr) -> bool {
        let name = Self::name(transport, addr);
        let taken = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|name| UnixDatagram::bind_addr(&name));
        matches!(taken, Err(e) if e.kind() == io::ErrorKind::AddrInUse)
    }
}

/// Another socket on the port of `founder` (a socket from `tcp_listener_shared` or
/// `udp_socket_shared`, or one systemd passed), for one more worker: the kernel then spreads connections and datagrams over the group. When the
/// port cannot be shared (a socket handed over by systemd and owned by another user, say), a
/// second handle on the founder itself, which the worker then shares.
pub(crate) fn join(founder: &impl AsFd, transport: Transport, backlog: i32) -> io::Result<Socket> {
    let founder = SockRef::from(founder);
    let joined = || -> io::Result<Socket> {
        let addr = founder.local_addr()?;
        let (kind, protocol) = match transport {
            Transport::Tcp => (Type::STREAM, Protocol::TCP),
            Transport::Udp => (Type::DGRAM, Protocol::UDP),
        };
        let socket = Socket::new(addr.domain(), kind, Some(protocol))?;
        if transport == Transport::Tcp {
            socket.set_reuse_address(true)?;
        }
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        if let (Transport::Udp, Some(local)) = (transport, addr.as_socket()) {
            ask_for_destinations(&socket, local);
        }
        socket.set_reuse_port(true)?;
        socket.bind(&addr)?;
        if transport == Transport::Tcp {
            super::connection::ready_listener(&socket);
            socket.listen(backlog)?;
        }
        Ok(socket)
    };
    joined().or_else(|e| {
        tracing::debug!("cannot add a {transport} socket to the port group ({e}); sharing the first one");
        founder.try_clone()
    })
}
