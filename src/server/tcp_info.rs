//! What the kernel knows about one open TCP connection: its two addresses (the 4-tuple), its
//! state, its round-trip time, and the bytes it has received and had acknowledged (`TCP_INFO`).
//!
//! The status page asks this of the connections it lists, when it asks: a connection records none
//! of it, so it costs nothing per request or per connection. This module must never be called on
//! the request path, nor keep a descriptor beyond the call.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use socket2::SockRef;

/// One TCP connection's socket, as the kernel sees it now. A field is `None` when the kernel did
/// not say (a socket already reset, an older kernel).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SocketView {
    /// The client's end: its address and port.
    pub client: Option<SocketAddr>,
    /// The server's end: the address the client reached (the real one, even on a wildcard
    /// listener) and the port.
    pub server: Option<SocketAddr>,
    /// The TCP state, as `ss` names it (`ESTAB`, `CLOSE-WAIT`...).
    pub state: Option<&'static str>,
    /// Bytes received from the client, as the kernel counts them (its FIN adds one).
    pub bytes_received: Option<u64>,
    /// Bytes sent to the client that it has acknowledged (the server's FIN adds one).
    pub bytes_acked: Option<u64>,
    /// The kernel's smoothed round-trip time, in microseconds.
    pub rtt_us: Option<u32>,
    /// Milliseconds since the client last sent data.
    pub idle_ms: Option<u32>,
}

/// Asks the kernel about the TCP socket `fd`: three system calls.
pub(crate) fn view(fd: BorrowedFd<'_>) -> SocketView {
    let socket = SockRef::from(&fd);
    let info = tcp_info(fd).ok();
    SocketView {
        client: socket.peer_addr().ok().and_then(|a| a.as_socket()),
        server: socket.local_addr().ok().and_then(|a| a.as_socket()),
        state: info.as_ref().and_then(|i| state_name(i.u8_at(STATE))),
        bytes_received: info.as_ref().and_then(|i| i.u64_at(BYTES_RECEIVED)),
        bytes_acked: info.as_ref().and_then(|i| i.u64_at(BYTES_ACKED)),
        rtt_us: info.as_ref().and_then(|i| i.u32_at(RTT)),
        idle_ms: info.as_ref().and_then(|i| i.u32_at(LAST_DATA_RECV)),
    }
}

// Offsets in Linux's `struct tcp_info` (include/uapi/linux/tcp.h): eight one-byte fields, 24
// four-byte ones, then eight-byte ones. The layout only grows at the end, so these hold on every
// kernel that reports that far; the kernel says how far it wrote.
const STATE: usize = 0;
const LAST_DATA_RECV: usize = 52;
const RTT: usize = 68;
const BYTES_ACKED: usize = 120;
const BYTES_RECEIVED: usize = 128;
/// Enough of the structure for every field read here.
const INFO_LEN: usize = 136;

/// The bytes of `struct tcp_info` the kernel wrote.
struct TcpInfo {
    bytes: [u8; INFO_LEN],
    written: usize,
}

impl TcpInfo {
    fn field<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        let end = offset.checked_add(N).filter(|&end| end <= self.written)?;
        self.bytes.get(offset..end)?.try_into().ok()
    }

    fn u8_at(&self, offset: usize) -> u8 {
        self.field::<1>(offset).map_or(0, |[b]| b)
    }

    fn u32_at(&self, offset: usize) -> Option<u32> {
        self.field(offset).map(u32::from_ne_bytes)
    }

    fn u64_at(&self, offset: usize) -> Option<u64> {
        self.field(offset).map(u64::from_ne_bytes)
    }
}

/// `getsockopt(TCP_INFO)`: neither socket2 nor the standard library asks for it, and libc's
/// own `tcp_info` for glibc stops before the byte counts, hence the raw call.
fn tcp_info(fd: BorrowedFd<'_>) -> io::Result<TcpInfo> {
    let mut bytes = [0u8; INFO_LEN];
    let mut len = INFO_LEN as libc::socklen_t;
    // SAFETY: `bytes` is valid for writes of `len` bytes, and the kernel writes at most `len`
    // bytes and stores how many in `len`; `fd` is a descriptor borrowed for this call.
    let result = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            bytes.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpInfo { bytes, written: (len as usize).min(INFO_LEN) })
}

/// The kernel's TCP states (include/net/tcp_states.h), named as `ss` prints them.
fn state_name(state: u8) -> Option<&'static str> {
    Some(match state {
        1 => "ESTAB",
        2 => "SYN-SENT",
        3 => "SYN-RECV",
        4 => "FIN-WAIT-1",
        5 => "FIN-WAIT-2",
        6 => "TIME-WAIT",
        7 => "UNCONN",
        8 => "CLOSE-WAIT",
        9 => "LAST-ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    use super::*;

    /// The offsets read the fields they name: a connection that received 5 bytes and had 3
    /// acknowledged says so, with both ends' addresses and its state.
    #[test]
    fn the_kernel_reports_both_ends_and_the_bytes_each_way() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(b"hello").unwrap();
        let mut received = [0; 5];
        server.read_exact(&mut received).unwrap();
        server.write_all(b"abc").unwrap();
        let mut reply = [0; 3];
        client.read_exact(&mut reply).unwrap();
        // The client's ACK of the reply may trail its arrival by a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut seen = view(server.as_fd());
        while seen.bytes_acked != Some(3) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
            seen = view(server.as_fd());
        }
        assert_eq!(seen.client, Some(client.local_addr().unwrap()));
        assert_eq!(seen.server, Some(listener.local_addr().unwrap()));
        assert_eq!(seen.state, Some("ESTAB"));
        assert_eq!(seen.bytes_received, Some(5));
        assert_eq!(seen.bytes_acked, Some(3));
        assert!(seen.rtt_us.is_some() && seen.idle_ms.is_some());

        drop(client);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while view(server.as_fd()).state != Some("CLOSE-WAIT") {
            assert!(std::time::Instant::now() < deadline, "{:?}", view(server.as_fd()));
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(view(server.as_fd()).bytes_received, Some(6), "the client's FIN counts one");
    }
}
