//! Many datagrams per system call for the async UDP model: `recvmmsg` and `sendmmsg` (Linux).
//!
//! With many clients in flight, a wake-up finds several datagrams waiting. Reading them one
//! `recvfrom` at a time and answering each with its own `sendto` costs two system calls per
//! request; reading up to [`BATCH`] at once and sending their replies at once costs two per
//! batch. This is where the async server saves CPU over the lecture's loop (see
//! docs/BENCHMARKS.md); the blocking models keep the lecture's one-datagram calls on purpose.
//!
//! This module is the crate's only `unsafe` code: it fills in the C structures the two calls
//! take. Each `unsafe` block says why it is sound. It must never cut a datagram (every receive
//! slot is larger than any UDP payload, and a cut one would be dropped, never answered) and never
//! keep a pointer past the call it was made for: the headers are rebuilt for every call, so what
//! is kept between calls holds no pointers and the batch can move between threads.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::net::RECEIVE_BUFFER;

/// The most datagrams one call reads or sends: enough for the 32 flows of the benchmark's rr
/// workload to be answered in one wake-up, and 2 MiB of receive slots (only the pages that
/// datagrams touch become resident).
pub(crate) const BATCH: usize = 32;

/// Receive slots for up to [`BATCH`] datagrams, and what the last [`Self::receive`] put in them.
#[derive(Debug)]
pub(crate) struct Received {
    slots: Vec<u8>,
    /// Per datagram: its length and its source; `None` for a source that is not IPv4 or IPv6,
    /// or a datagram the kernel had to cut (neither can happen on a UDP socket with these
    /// slots, and neither is answered).
    datagrams: Vec<(usize, Option<SocketAddr>)>,
}

impl Received {
    pub(crate) fn new() -> Self {
        Self { slots: vec![0; BATCH * RECEIVE_BUFFER], datagrams: Vec::with_capacity(BATCH) }
    }

    /// Reads what datagrams are waiting, up to [`BATCH`], without blocking; returns how many.
    /// `WouldBlock` when there are none.
    pub(crate) fn receive(&mut self, socket: BorrowedFd<'_>) -> io::Result<usize> {
        self.datagrams.clear();
        // SAFETY: all-zero bytes are a valid sockaddr_storage and a valid (empty) mmsghdr.
        let mut sources: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
        // SAFETY: as above, and all-zero is a valid (empty) iovec.
        let (mut iovecs, mut headers): ([libc::iovec; BATCH], [libc::mmsghdr; BATCH]) = unsafe { zeroed() };
        for (iovec, slot) in iovecs.iter_mut().zip(self.slots.chunks_exact_mut(RECEIVE_BUFFER)) {
            *iovec = libc::iovec { iov_base: slot.as_mut_ptr().cast(), iov_len: slot.len() };
        }
        for ((header, iovec), source) in headers.iter_mut().zip(&mut iovecs).zip(&mut sources) {
            header.msg_hdr.msg_iov = iovec;
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_name = std::ptr::from_mut(source).cast();
            header.msg_hdr.msg_namelen = socklen(size_of::<libc::sockaddr_storage>());
        }
        // SAFETY: every header points at one live, writable slot of the stated length and at a
        // live sockaddr_storage; `headers`, `iovecs`, `sources` and `self.slots` all outlive the
        // call, and the kernel writes no more than BATCH headers.
        let count = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        let count = usize::try_from(count).map_err(|_| io::Error::last_os_error())?;
        for (header, source) in headers.iter().zip(&sources).take(count) {
            let cut = header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            let source = if cut { None } else { socket_addr(source) };
            self.datagrams.push((header.msg_len as usize, source));
        }
        Ok(count)
    }

    /// The datagrams of the last receive, in order: their bytes and their source.
    pub(crate) fn datagrams(&self) -> impl Iterator<Item = (&[u8], Option<SocketAddr>)> {
        self.slots
            .chunks_exact(RECEIVE_BUFFER)
            .zip(&self.datagrams)
            .map(|(slot, &(len, source))| (slot.get(..len).unwrap_or_default(), source))
    }
}

/// Sends each reply (a range of `bytes`) to its client in as few calls as the kernel allows;
/// returns how many of `replies`, from the first, it sent. `WouldBlock` when the socket's
/// buffer is full before the first; another error belongs to the first reply alone.
pub(crate) fn send(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    replies: &[(Range<usize>, SocketAddr)],
) -> io::Result<usize> {
    let replies = replies.get(..BATCH.min(replies.len())).unwrap_or_default();
    // SAFETY: all-zero bytes are a valid sockaddr_storage and a valid (empty) mmsghdr.
    let mut targets: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
    // SAFETY: as above, and all-zero is a valid (empty) iovec.
    let (mut iovecs, mut headers): ([libc::iovec; BATCH], [libc::mmsghdr; BATCH]) = unsafe { zeroed() };
    let slots = headers.iter_mut().zip(&mut iovecs).zip(&mut targets);
    for (((header, iovec), target), (range, to)) in slots.zip(replies) {
        let reply = bytes.get(range.clone()).unwrap_or_default();
        // The kernel only reads through this pointer (sendmmsg), though iovec's field is `*mut`.
        *iovec = libc::iovec { iov_base: reply.as_ptr().cast_mut().cast(), iov_len: reply.len() };
        header.msg_hdr.msg_namelen = fill_sockaddr(*to, target);
        header.msg_hdr.msg_iov = iovec;
        header.msg_hdr.msg_iovlen = 1;
        header.msg_hdr.msg_name = std::ptr::from_mut(target).cast();
    }
    // SAFETY: the first `replies.len()` headers each point at a live reply of the stated length
    // and a live, filled-in address; all of them outlive the call.
    let count = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr(),
            replies.len() as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    usize::try_from(count).map_err(|_| io::Error::last_os_error())
}

fn socklen(len: usize) -> libc::socklen_t {
    libc::socklen_t::try_from(len).unwrap_or(libc::socklen_t::MAX)
}

/// The address the kernel wrote into `storage`, if it is IPv4 or IPv6.
fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large and
            // aligned enough for.
            let v4 = unsafe { &*std::ptr::from_ref(storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(v4.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let v6 = unsafe { &*std::ptr::from_ref(storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(v6.sin6_addr.s6_addr);
            let port = u16::from_be(v6.sin6_port);
            Some(SocketAddr::V6(SocketAddrV6::new(ip, port, v6.sin6_flowinfo, v6.sin6_scope_id)))
        }
        _ => None,
    }
}

/// Writes `addr` into `storage` as the kernel expects it; returns its length.
fn fill_sockaddr(addr: SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(addr) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in, and any
            // bytes are a valid sockaddr_in.
            let v4 = unsafe { &mut *std::ptr::from_mut(storage).cast::<libc::sockaddr_in>() };
            v4.sin_family = libc::AF_INET as libc::sa_family_t;
            v4.sin_port = addr.port().to_be();
            v4.sin_addr = libc::in_addr { s_addr: u32::from(*addr.ip()).to_be() };
            socklen(size_of::<libc::sockaddr_in>())
        }
        SocketAddr::V6(addr) => {
            // SAFETY: as above, for sockaddr_in6.
            let v6 = unsafe { &mut *std::ptr::from_mut(storage).cast::<libc::sockaddr_in6>() };
            v6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            v6.sin6_port = addr.port().to_be();
            v6.sin6_flowinfo = addr.flowinfo();
            v6.sin6_addr = libc::in6_addr { s6_addr: addr.ip().octets() };
            v6.sin6_scope_id = addr.scope_id();
            socklen(size_of::<libc::sockaddr_in6>())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use std::os::fd::AsFd;

    /// Addresses survive the trip through the kernel's structures, both families.
    #[test]
    fn addresses_round_trip_through_sockaddr_storage() {
        for addr in ["127.0.0.1:12000", "[::1]:12000", "[fe80::1%2]:7", "0.0.0.0:0"] {
            let addr: SocketAddr = addr.parse().unwrap();
            // SAFETY: all-zero bytes are a valid sockaddr_storage.
            let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
            fill_sockaddr(addr, &mut storage);
            assert_eq!(socket_addr(&storage), Some(addr));
        }
    }

    /// A batch read gets every waiting datagram whole, with its source, and a batch send
    /// delivers each reply to its own client.
    #[test]
    fn datagrams_in_a_batch_keep_their_bytes_and_sources() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let clients: Vec<_> = (0..3).map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
        let sizes = [0, 1_000, 65_507];
        for (client, size) in clients.iter().zip(sizes) {
            client.send_to(&vec![b'a'; size], server.local_addr().unwrap()).unwrap();
        }
        let mut received = Received::new();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(received.receive(server.as_fd()).unwrap(), 3);
        let got: Vec<_> = received.datagrams().map(|(bytes, from)| (bytes.len(), from.unwrap())).collect();
        let expected: Vec<_> = clients.iter().zip(sizes).map(|(c, s)| (s, c.local_addr().unwrap())).collect();
        assert_eq!(got, expected);
        assert_eq!(received.receive(server.as_fd()).unwrap_err().kind(), io::ErrorKind::WouldBlock);

        let bytes = b"ONETWO".to_vec();
        let replies = [(0..3, expected[0].1), (3..6, expected[1].1)];
        assert_eq!(send(server.as_fd(), &bytes, &replies).unwrap(), 2);
        let mut buffer = [0; 16];
        for (client, want) in clients.iter().zip([&b"ONE"[..], b"TWO"]) {
            let (n, from) = client.recv_from(&mut buffer).unwrap();
            assert_eq!((&buffer[..n], from), (want, server.local_addr().unwrap()));
        }
    }
}
