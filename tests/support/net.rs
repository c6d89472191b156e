//! Talking to a server over loopback the way the tests do: one bound ([`PATIENCE`]) on every wait,
//! connections with read and write timeouts, and whole exchanges over TCP and UDP. Nothing here
//! starts a server; nothing here waits without a bound.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::thread;
use std::time::Duration;

/// Bound on any single wait for a socket or a child (they take milliseconds normally), so a
/// broken server fails a test instead of hanging it.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// Connects with [`PATIENCE`] as the connect, read and write timeouts.
pub(crate) fn connect(addr: SocketAddr) -> TcpStream {
    let stream =
        TcpStream::connect_timeout(&addr, PATIENCE).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Whether an error is a read or write timeout running out (which one depends on the socket's
/// blocking mode).
pub(crate) fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// A port of 127.0.0.1 that was free a moment ago: nothing listens on it, over TCP or UDP.
pub(crate) fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One TCP exchange that must succeed: sends `message`, half-closes, and returns the whole reply
/// once the server has closed cleanly.
pub(crate) fn tcp_reply(addr: SocketAddr, message: &[u8]) -> Vec<u8> {
    let (reply, error) = tcp_reply_and_error(addr, message);
    if let Some(error) = error {
        panic!("TCP exchange with {addr} failed after {} bytes of reply: {error}", reply.len());
    }
    reply
}

/// One TCP exchange that must succeed, and be the uppercase of `message`.
pub(crate) fn assert_tcp_uppercases(addr: SocketAddr, message: &str) {
    let reply = tcp_reply(addr, message.as_bytes());
    assert_eq!(String::from_utf8_lossy(&reply), message.to_uppercase(), "reply to {message:?}");
}

/// One TCP exchange that never panics: returns what came back and the error that ended it, if
/// any. A server that closes without reading everything makes the connection end with a reset,
/// after part of a reply or none; a connection refused is an error with no reply.
pub(crate) fn tcp_reply_and_error(addr: SocketAddr, message: &[u8]) -> (Vec<u8>, Option<io::Error>) {
    tcp_reply_and_error_within(addr, message, PATIENCE)
}

/// [`tcp_reply_and_error`] with `wait` as the bound on connecting and on each read and write.
pub(crate) fn tcp_reply_and_error_within(
    addr: SocketAddr,
    message: &[u8],
    wait: Duration,
) -> (Vec<u8>, Option<io::Error>) {
    let connected = TcpStream::connect_timeout(&addr, wait).and_then(|stream| {
        stream.set_read_timeout(Some(wait))?;
        stream.set_write_timeout(Some(wait))?;
        let writer = stream.try_clone()?;
        Ok((stream, writer))
    });
    let (stream, mut writer) = match connected {
        Ok(pair) => pair,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let message = message.to_vec();
    // Sending on its own thread, so a server that answers as it reads cannot deadlock with us.
    let sending = thread::spawn(move || {
        writer.write_all(&message)?;
        writer.shutdown(Shutdown::Write)
    });
    let mut reply = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    let mut error = None;
    loop {
        match (&stream).read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let sent = sending.join().unwrap();
    (reply, error.or(sent.err()))
}

/// Reads exactly `len` bytes: the reply to what was sent so far on a persistent connection.
pub(crate) fn read_exactly(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut reply = vec![0; len];
    stream.read_exact(&mut reply).expect("read reply");
    reply
}

/// A UDP socket on the loopback of `addr`'s family, connected to `addr`, waiting at most `timeout`
/// for a reply.
pub(crate) fn udp_socket(addr: SocketAddr, timeout: Duration) -> UdpSocket {
    let local: SocketAddr = if addr.is_ipv4() { "127.0.0.1:0" } else { "[::1]:0" }.parse().unwrap();
    let socket = UdpSocket::bind(local).unwrap();
    socket.connect(addr).unwrap();
    socket.set_read_timeout(Some(timeout)).unwrap();
    socket
}

/// One datagram out from a fresh socket, its reply back; `None` if none came within `timeout`.
pub(crate) fn udp_reply_within(addr: SocketAddr, message: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let socket = udp_socket(addr, timeout);
    socket.send(message).unwrap();
    let mut buffer = vec![0; 70_000];
    match socket.recv(&mut buffer) {
        Ok(n) => Some(buffer[..n].to_vec()),
        Err(e) if is_timeout(&e) => None,
        Err(e) => panic!("udp receive: {e}"),
    }
}

/// One datagram out, its reply back; loopback does not lose datagrams, so a missing reply fails.
pub(crate) fn udp_reply(addr: SocketAddr, message: &[u8]) -> Vec<u8> {
    udp_reply_within(addr, message, PATIENCE).expect("no UDP reply")
}

/// The next datagram `socket` receives, as text, and where it came from.
pub(crate) fn recv_text_from(socket: &UdpSocket) -> (String, SocketAddr) {
    let mut buffer = [0; 2048];
    let (n, from) = socket.recv_from(&mut buffer).expect("a datagram");
    (String::from_utf8(buffer[..n].to_vec()).expect("UTF-8"), from)
}

/// One TCP exchange with `message` written in two pieces, cut at byte `cut` (inside a character,
/// say), with a pause between so the server reads them separately; returns the whole reply.
pub(crate) fn tcp_reply_written_in_two(addr: SocketAddr, message: &[u8], cut: usize) -> Vec<u8> {
    let mut stream = connect(addr);
    stream.set_nodelay(true).unwrap();
    stream.write_all(&message[..cut]).unwrap();
    thread::sleep(Duration::from_millis(30));
    stream.write_all(&message[cut..]).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    reply
}
