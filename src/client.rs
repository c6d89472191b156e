//! The client side: the lecture's clients, made to fail clearly instead of hanging or cutting.
//!
//! - [`UdpClient`]: one datagram out, one back, with a timeout and retries, since UDP loses
//!   datagrams and the lecture's client would wait forever for a reply that never comes.
//! - [`tcp_request`]: the lecture's TCP exchange (connect, send, receive, close), except that it
//!   shuts down its sending side and reads until the server closes, so no reply is ever cut.
//! - [`tcp_stream`]: any amount of data through the server, sending and receiving at once so that
//!   neither side can fill its buffers and wait on the other.
//!
//! Plain blocking `std::net`: a client does one thing at a time, and this keeps it readable next
//! to the lecture's. It does no uppercasing and never changes a byte it sends or receives; what
//! the bytes mean is the caller's business. Every failure is a [`ClientError`] that says what
//! failed, where, and what to try.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::net::{self, is_timeout, NetError, MAX_IPV4_PAYLOAD, RECEIVE_BUFFER};

/// How long to wait and how often to try again.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// UDP: how long to wait for each reply. TCP: how long to wait to connect, and for the
    /// server's next byte once everything has been sent.
    pub timeout: Duration,
    /// UDP: how many times to send again after a reply did not come.
    pub retries: u32,
}

/// Why an exchange with the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached: the target does not resolve, nothing accepts a TCP
    /// connection, or the host says no program listens on the UDP port.
    #[error(transparent)]
    Net(#[from] NetError),
    /// UDP: every attempt timed out.
    #[error(
        "no reply from udp {addr} after {attempts} attempt(s), waiting {timeout:?} each: is a UDP server running \
         there? (raise --timeout or --retries for a slow or lossy network, and check firewalls)"
    )]
    NoReply {
        /// The address tried.
        addr: SocketAddr,
        /// How many datagrams were sent.
        attempts: u32,
        /// How long each wait was.
        timeout: Duration,
    },
    /// TCP: the server went silent before closing the connection.
    #[error(
        "tcp {addr}: no reply for {timeout:?} after everything was sent (the server may be waiting for more, \
         or hung; raise --timeout for a slow server)"
    )]
    Silent {
        /// The server.
        addr: SocketAddr,
        /// How long it was silent.
        timeout: Duration,
    },
    /// A message too large for one UDP datagram.
    #[error("a message of {len} bytes does not fit in one UDP datagram (at most {MAX_IPV4_PAYLOAD}); send it over TCP")]
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// The reply could not be written out (stdout closed, disk full).
    #[error("cannot write the reply out: {reason}")]
    Output {
        /// The operating system's reason.
        reason: io::Error,
    },
    /// A socket error during the exchange.
    #[error("{what} ({transport} {addr}): {reason}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// `tcp` or `udp`.
        transport: &'static str,
        /// The server.
        addr: SocketAddr,
        /// The operating system's reason.
        reason: io::Error,
    },
}

/// A UDP client: one socket, connected to the server so only its datagrams are accepted.
#[derive(Debug)]
pub struct UdpClient {
    socket: UdpSocket,
    addrs: Vec<SocketAddr>,
    current: usize,
    options: Options,
    buffer: Vec<u8>,
}

impl UdpClient {
    /// Prepares to talk to `target`; sends nothing yet.
    pub fn new(target: &str, options: Options) -> Result<Self, ClientError> {
        let addrs = net::resolve(target)?;
        let socket = connected_udp_socket(addrs.first().copied(), options.timeout)?;
        Ok(Self { socket, addrs, current: 0, options, buffer: vec![0; RECEIVE_BUFFER] })
    }

    /// The server address in use.
    pub fn server(&self) -> SocketAddr {
        self.addrs.get(self.current).copied().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Sends `message` as one datagram and returns the reply, retrying on timeout.
    ///
    /// If the host says the port is unreachable, the target's next address (IPv6 after IPv4) is
    /// tried before giving up.
    pub fn request(&mut self, message: &[u8]) -> Result<Vec<u8>, ClientError> {
        if message.len() > MAX_IPV4_PAYLOAD {
            return Err(ClientError::TooLarge { len: message.len() });
        }
        loop {
            match self.request_from_current(message) {
                Err(ClientError::Net(NetError::Unreachable { .. }))
                    if self.current + 1 < self.addrs.len() =>
                {
                    self.current += 1;
                    self.socket = connected_udp_socket(Some(self.server()), self.options.timeout)?;
                }
                result => return result,
            }
        }
    }

    fn request_from_current(&mut self, message: &[u8]) -> Result<Vec<u8>, ClientError> {
        let addr = self.server();
        let io_error = |what| move |reason| ClientError::Io { what, transport: "udp", addr, reason };
        self.discard_stale_replies();
        let attempts = self.options.retries.saturating_add(1);
        for _ in 0..attempts {
            match self.socket.send(message) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    return Err(NetError::Unreachable { addr }.into())
                }
                Err(e) => return Err(io_error("cannot send")(e)),
            }
            match self.socket.recv(&mut self.buffer) {
                Ok(n) => return Ok(self.buffer.get(..n).unwrap_or_default().to_vec()),
                Err(e) if is_timeout(&e) => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    return Err(NetError::Unreachable { addr }.into())
                }
                Err(e) => return Err(io_error("cannot receive")(e)),
            }
        }
        Err(ClientError::NoReply { addr, attempts, timeout: self.options.timeout })
    }

    /// Drops late replies to earlier requests, so they are not taken for the next one's.
    fn discard_stale_replies(&mut self) {
        if self.socket.set_nonblocking(true).is_err() {
            return;
        }
        // Bounded: a flood of unexpected datagrams cannot keep the client here.
        for _ in 0..1024 {
            match self.socket.recv(&mut self.buffer) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Ok(_) | Err(_) => {}
            }
        }
        let _ = self.socket.set_nonblocking(false);
    }
}

fn connected_udp_socket(addr: Option<SocketAddr>, timeout: Duration) -> Result<UdpSocket, ClientError> {
    let addr = addr.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
    let io_error = |what| move |reason| ClientError::Io { what, transport: "udp", addr, reason };
    let local: SocketAddr = if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = UdpSocket::bind(local).map_err(io_error("cannot open a UDP socket"))?;
    socket.connect(addr).map_err(io_error("cannot address"))?;
    socket
        .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
        .map_err(io_error("cannot set a timeout"))?;
    Ok(socket)
}

/// Connects over TCP to the first address of `target` that answers within `timeout`.
pub fn tcp_connect(target: &str, timeout: Duration) -> Result<(TcpStream, SocketAddr), ClientError> {
    Ok(net::connect_first(&net::resolve(target)?, timeout)?)
}

/// The lecture's TCP exchange, done right: send `message`, shut down the sending side, and read
/// the reply until the server closes.
pub fn tcp_request(target: &str, message: &[u8], options: Options) -> Result<Vec<u8>, ClientError> {
    let mut reply = Vec::new();
    tcp_stream(target, message, &mut reply, options)?;
    Ok(reply)
}

/// Byte counts of a finished [`tcp_stream`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// Bytes sent to the server.
    pub sent: u64,
    /// Bytes received from it.
    pub received: u64,
}

/// Streams `input` to the server and its reply to `output`, both at once, then half-closes.
///
/// Sending runs on a second thread: if one thread wrote everything before reading, a large input
/// would fill the server's buffers and both sides would wait on each other forever.
pub fn tcp_stream(
    target: &str,
    input: impl Read + Send,
    output: &mut impl Write,
    options: Options,
) -> Result<Transfer, ClientError> {
    let (stream, addr) = tcp_connect(target, options.timeout)?;
    let io_error = |what| move |reason| ClientError::Io { what, transport: "tcp", addr, reason };
    let sender = stream.try_clone().map_err(io_error("cannot share the connection"))?;
    // Reads wake up often enough to measure the server's silence to a tenth of the timeout.
    let tick = (options.timeout / 10).max(Duration::from_millis(10));
    stream.set_read_timeout(Some(tick)).map_err(io_error("cannot set a timeout"))?;
    let sent_everything = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let sending = scope.spawn(|| {
            let sent = send_all(input, &sender);
            sent_everything.store(true, Ordering::Release);
            sent
        });
        let received = receive_all(&stream, output, &sent_everything, options.timeout);
        let sent = sending.join().unwrap_or_else(|_| Err(io::Error::other("sending thread panicked")));
        match (sent, received) {
            (Ok(sent), Ok(received)) => Ok(Transfer { sent, received }),
            (_, Err(Received::Silent)) => Err(ClientError::Silent { addr, timeout: options.timeout }),
            (_, Err(Received::Output(reason))) => Err(ClientError::Output { reason }),
            // A reset is the cause; a failed send is only its echo on the other thread.
            (_, Err(Received::Socket(reason))) | (Err(reason), _) if is_reset(&reason) => {
                Err(io_error(CLOSED_EARLY)(reason))
            }
            (_, Err(Received::Socket(reason))) => Err(io_error("cannot receive")(reason)),
            (Err(reason), Ok(_)) => Err(io_error("cannot send")(reason)),
        }
    })
}

const CLOSED_EARLY: &str = "the server closed the connection before reading everything that was sent \
     (it may read only one buffer, as the lecture's server does)";

fn is_reset(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::NotConnected
    )
}

fn send_all(mut input: impl Read, mut socket: &TcpStream) -> io::Result<u64> {
    let sent = io::copy(&mut input, &mut socket)?;
    socket.shutdown(Shutdown::Write)?;
    Ok(sent)
}

enum Received {
    Silent,
    Socket(io::Error),
    Output(io::Error),
}

fn receive_all(
    mut socket: &TcpStream,
    output: &mut impl Write,
    sent_everything: &AtomicBool,
    timeout: Duration,
) -> Result<u64, Received> {
    let mut buffer = vec![0; 64 * 1024];
    let mut received = 0u64;
    // Silence only counts once everything is sent: before that the server may simply be waiting
    // for our next bytes (a person typing into a pipe, say).
    let mut silent_since: Option<Instant> = None;
    loop {
        match socket.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                output.write_all(buffer.get(..n).unwrap_or_default()).map_err(Received::Output)?;
                received += n as u64;
                silent_since = None;
            }
            Err(e) if is_timeout(&e) => {
                if !sent_everything.load(Ordering::Acquire) {
                    continue;
                }
                match silent_since {
                    Some(since) if since.elapsed() >= timeout => return Err(Received::Silent),
                    Some(_) => {}
                    None => silent_since = Some(Instant::now()),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Received::Socket(e)),
        }
    }
    output.flush().map_err(Received::Output)?;
    Ok(received)
}
