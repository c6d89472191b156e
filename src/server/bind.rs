//! Opening the server's sockets, with the options a restartable, busy server needs.
//!
//! The caller binds and the serving loops only ever receive ready sockets, so tests can bind port
//! 0 and learn the real port before any loop starts. This module must never serve traffic.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

use super::ServerError;
use crate::net::Transport;

/// The sockets a server serves: what [`bind`] returns and [`super::Server::start`] takes.
#[derive(Debug, Default)]
pub struct Sockets {
    /// Listening TCP sockets.
    pub tcp: Vec<TcpListener>,
    /// Bound UDP sockets.
    pub udp: Vec<UdpSocket>,
}

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
    let mut sockets = Sockets::default();
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
        let tcp = if options.tcp { Some(tcp_listener(addr, options.backlog)?) } else { None };
        let udp_addr = match &tcp {
            Some(listener) => listener.local_addr().map_err(|e| bind_error(Transport::Tcp, addr, e))?,
            None => addr,
        };
        let udp = if options.udp {
            match udp_socket(udp_addr) {
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

/// A listening TCP socket with SO_REUSEADDR, so a restart does not wait out TIME_WAIT.
///
/// On Linux SO_REUSEADDR does not let two servers listen on one port; it only lets a new listener
/// bind while old connections of a previous one linger. IPv6 sockets are IPv6-only so that
/// `[::]:P` and `0.0.0.0:P` can both be bound, as the default of two loopbacks does.
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

/// A bound UDP socket.
///
/// No SO_REUSEADDR here: for UDP it would let a second server share the port and silently take
/// half the requests, and UDP has no TIME_WAIT to wait out.
pub fn udp_socket(addr: SocketAddr) -> Result<UdpSocket, ServerError> {
    let open = || -> io::Result<UdpSocket> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.bind(&addr.into())?;
        Ok(socket.into())
    };
    open().map_err(|e| bind_error(Transport::Udp, addr, e))
}
