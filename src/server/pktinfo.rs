//! Replies from the address their request was sent to, on a UDP socket bound to a wildcard
//! address (0.0.0.0, ::).
//!
//! Such a socket receives datagrams sent to any of the machine's addresses, and a plain `send_to`
//! leaves from the address the kernel's routes pick, which on a machine with several addresses
//! need not be the one the client wrote to: a client's connected socket, or a NAT or a firewall
//! tracking the flow, then drops the reply. So such a socket asks the kernel for each datagram's
//! destination (IP_PKTINFO, IPV6_RECVPKTINFO: `bind::ask_for_destinations`), which comes as a
//! control message beside the datagram ([`destination`]), and its reply names that address as its
//! source, in the same kind of control message ([`send`]). A dual-stack IPv6 socket (as systemd
//! may pass) learns an IPv4 client's destination as a v4-mapped address, and its reply names it
//! the same way.
//!
//! A socket bound to one address already answers from it: it never asks, and its loops pay
//! nothing for this (a plain `send_to`, no control buffer). Linux gives the destination with
//! every datagram once the socket has asked, even one queued before (on a socket systemd
//! passed); one that came without it all the same would be answered from the address the kernel
//! picks, and counted (`udp_destination_unknown`). Nothing here may panic on what the kernel
//! hands back.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::socket::{
    getsockopt, recvmsg, sendmsg, sockopt, ControlMessage, ControlMessageOwned, MsgFlags, RecvMsg,
    SockaddrStorage,
};

use super::stats::add;
use super::Context;

/// Whether replies on a UDP socket bound to `local` must name their source: it is bound to a
/// wildcard address.
pub(crate) fn wanted(local: SocketAddr) -> bool {
    local.ip().is_unspecified()
}

/// Whether `socket`, bound to `local`, asked for each datagram's destination
/// (`bind::ask_for_destinations`), so that its loop must read them: a socket that could not ask
/// is served as one bound to one address, rather than expecting what never comes.
pub(crate) fn asked(socket: &impl AsFd, local: SocketAddr) -> bool {
    wanted(local)
        && match local {
            SocketAddr::V4(_) => getsockopt(socket, sockopt::Ipv4PacketInfo),
            SocketAddr::V6(_) => getsockopt(socket, sockopt::Ipv6RecvPacketInfo),
        }
        .unwrap_or(false)
}

/// Room for the one control message each datagram brings on a socket of this family that asked
/// for destinations: `recvmsg`'s control buffer, or `recvmmsg`'s for each datagram.
pub(crate) fn control_buffer(v6: bool) -> Vec<u8> {
    if v6 {
        nix::cmsg_space!(libc::in6_pktinfo)
    } else {
        nix::cmsg_space!(libc::in_pktinfo)
    }
}

/// The local address a datagram was sent to, which its reply names as its source.
///
/// An address that cannot be a source (a multicast or broadcast destination) is kept as the
/// unspecified address of its kind (`0.0.0.0`, `::`, `::ffff:0.0.0.0`), which tells the kernel to
/// pick the source as for a plain `send_to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Source {
    /// On an IPv4 socket: the datagram's local address ([`Source::from_v4`]).
    V4(Ipv4Addr),
    /// On an IPv6 socket (v4-mapped for an IPv4 client of a dual-stack one), with the interface
    /// it came in on when the address is link-local, which means nothing without one (else 0).
    V6 {
        /// The destination (`ipi6_addr`).
        address: Ipv6Addr,
        /// The interface to send from, or 0 for the kernel's routes to choose.
        interface: u32,
    },
}

impl Source {
    /// `ipi_spec_dst`, the local address the kernel gives the datagram (the destination itself
    /// when that is one of the machine's; for a broadcast, the address of the interface it came
    /// in on); or, when it gives none (a datagram queued before the socket asked), the
    /// destination (`ipi_addr`).
    fn from_v4(info: &libc::in_pktinfo) -> Self {
        let [local, destination] =
            [info.ipi_spec_dst, info.ipi_addr].map(|a| Ipv4Addr::from(u32::from_be(a.s_addr)));
        let source = [local, destination].into_iter().find(|&a| can_be_source_v4(a));
        Self::V4(source.unwrap_or(Ipv4Addr::UNSPECIFIED))
    }

    fn from_v6(info: &libc::in6_pktinfo) -> Self {
        let address = Ipv6Addr::from(info.ipi6_addr.s6_addr);
        let (address, interface) = match address.to_ipv4_mapped() {
            Some(v4) if can_be_source_v4(v4) => (address, 0),
            Some(_) => (Ipv4Addr::UNSPECIFIED.to_ipv6_mapped(), 0),
            None if address.is_multicast() || address.is_unspecified() => (Ipv6Addr::UNSPECIFIED, 0),
            // fe80::/10: unicast link-local.
            None if address.segments().first().is_some_and(|s| s & 0xffc0 == 0xfe80) => {
                (address, info.ipi6_ifindex)
            }
            None => (address, 0),
        };
        Self::V6 { address, interface }
    }

    /// The control message's payload that names this source for `sendmsg` and `sendmmsg`.
    pub(crate) fn info(self) -> Info {
        match self {
            Self::V4(address) => Info::V4(libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr { s_addr: u32::from(address).to_be() },
                ipi_addr: libc::in_addr { s_addr: 0 },
            }),
            Self::V6 { address, interface } => Info::V6(libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr { s6_addr: address.octets() },
                ipi6_ifindex: interface,
            }),
        }
    }
}

fn can_be_source_v4(address: Ipv4Addr) -> bool {
    !(address.is_unspecified() || address.is_multicast() || address.is_broadcast())
}

/// What a reply's control message carries ([`Source::info`]); it must outlive the send.
#[derive(Debug)]
pub(crate) enum Info {
    /// IP_PKTINFO, on an IPv4 socket.
    V4(libc::in_pktinfo),
    /// IPV6_PKTINFO, on an IPv6 socket.
    V6(libc::in6_pktinfo),
}

impl Info {
    /// The control message itself.
    pub(crate) fn control(&self) -> ControlMessage<'_> {
        match self {
            Self::V4(info) => ControlMessage::Ipv4PacketInfo(info),
            Self::V6(info) => ControlMessage::Ipv6PacketInfo(info),
        }
    }
}

/// Where a reply goes and, on a socket bound to a wildcard address, the address it leaves from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    /// The client: the request's source.
    pub(crate) to: SocketAddr,
    /// The request's destination; `None` on a socket bound to one address (or when the kernel
    /// did not say), for a plain `send_to`.
    pub(crate) from: Option<Source>,
}

/// The destination of a datagram received on a socket that asked for destinations, from its
/// control messages; `None` when none came (counted, and logged at most once a second), or when
/// the control messages were cut short.
pub(crate) fn destination<S>(message: &RecvMsg<'_, '_, S>, context: &Context) -> Option<Source> {
    let found = message.cmsgs().ok().and_then(|mut cmsgs| {
        cmsgs.find_map(|cmsg| match cmsg {
            ControlMessageOwned::Ipv4PacketInfo(info) => Some(Source::from_v4(&info)),
            ControlMessageOwned::Ipv6PacketInfo(info) => Some(Source::from_v6(&info)),
            _ => None,
        })
    });
    if found.is_none() {
        add(&context.stats.udp_destination_unknown, 1);
        if let Some(held_back) = context.udp_log.allow() {
            tracing::warn!(
                held_back,
                "a datagram came without the address it was sent to; its reply leaves from the address the kernel picks"
            );
        }
    }
    found
}

/// One datagram received into `buffer` on a socket that asked for destinations, with room for
/// its control message in `control`: its length, its sender (`None` if not an IP address) and
/// its destination. A blocking socket's timeout applies, as to `recv_from`.
pub(crate) fn recv_from(
    socket: &impl AsRawFd,
    buffer: &mut [u8],
    control: &mut [u8],
    context: &Context,
) -> io::Result<(usize, Option<SocketAddr>, Option<Source>)> {
    let mut slices = [IoSliceMut::new(buffer)];
    let message =
        recvmsg::<SockaddrStorage>(socket.as_raw_fd(), &mut slices, Some(control), MsgFlags::empty())?;
    let sender = message.address.as_ref().and_then(socket_addr);
    Ok((message.bytes, sender, destination(&message, context)))
}

/// A UDP socket that can `send_to`: the standard library's (the blocking models) and `mio`'s
/// (the async model).
pub(crate) trait SendTo: AsRawFd {
    /// The socket's own `send_to`.
    fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize>;
}

impl SendTo for std::net::UdpSocket {
    fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        Self::send_to(self, buf, to)
    }
}

impl SendTo for mio::net::UdpSocket {
    fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        Self::send_to(self, buf, to)
    }
}

/// Sends one `reply` along `route`: from its source when it has one (`sendmsg` with the control
/// message, for which nix allocates a small buffer each time: the blocking models and replies
/// through faults only, the async model's batches allocate nothing), else with the socket's plain
/// `send_to`.
pub(crate) fn send(socket: &impl SendTo, reply: &[u8], route: Route) -> io::Result<usize> {
    let Some(from) = route.from else { return socket.send_to(reply, route.to) };
    let info = from.info();
    let to = SockaddrStorage::from(route.to);
    let sent =
        sendmsg(socket.as_raw_fd(), &[IoSlice::new(reply)], &[info.control()], MsgFlags::empty(), Some(&to))?;
    Ok(sent)
}

/// A sender's address as the standard library writes it.
pub(crate) fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::new(v4.ip(), v4.port())));
    }
    let v6 = address.as_sockaddr_in6()?;
    Some(SocketAddr::V6(SocketAddrV6::new(v6.ip(), v6.port(), v6.flowinfo(), v6.scope_id())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn addresses_of_both_families_are_read_back() {
        for addr in ["127.0.0.1:12000", "[::1]:7"] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(socket_addr(&SockaddrStorage::from(addr)), Some(addr));
        }
    }

    /// An IPv4 destination as the kernel gives it: the local address, and the destination.
    fn v4(local: &str, destination: &str) -> Source {
        let [local, destination] = [local, destination].map(|a| a.parse::<Ipv4Addr>().unwrap());
        let info = libc::in_pktinfo {
            ipi_ifindex: 3,
            ipi_spec_dst: libc::in_addr { s_addr: u32::from(local).to_be() },
            ipi_addr: libc::in_addr { s_addr: u32::from(destination).to_be() },
        };
        Source::from_v4(&info)
    }

    fn v6(address: &str) -> Source {
        let address: Ipv6Addr = address.parse().unwrap();
        Source::from_v6(&libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr { s6_addr: address.octets() },
            ipi6_ifindex: 3,
        })
    }

    /// A destination is the reply's source as it came, in network byte order and back; one that
    /// cannot be a source leaves the choice to the kernel, in the same family.
    #[test]
    fn destinations_become_sources_or_leave_the_choice_to_the_kernel() {
        assert_eq!(v4("127.0.0.2", "127.0.0.2"), Source::V4(Ipv4Addr::new(127, 0, 0, 2)));
        let broadcast = v4("192.168.1.7", "255.255.255.255");
        assert_eq!(broadcast, Source::V4(Ipv4Addr::new(192, 168, 1, 7)), "the interface's address");
        let queued_before = v4("0.0.0.0", "127.0.0.3");
        assert_eq!(queued_before, Source::V4(Ipv4Addr::new(127, 0, 0, 3)), "the destination");
        assert_eq!(v4("0.0.0.0", "224.0.0.1"), Source::V4(Ipv4Addr::UNSPECIFIED));
        let Info::V4(info) = v4("10.1.2.3", "10.1.2.3").info() else { panic!("an IPv4 source") };
        assert_eq!((info.ipi_spec_dst.s_addr, info.ipi_ifindex), (u32::from_ne_bytes([10, 1, 2, 3]), 0));

        let plain = |address: &str, interface| Source::V6 { address: address.parse().unwrap(), interface };
        assert_eq!(v6("2001:db8::1"), plain("2001:db8::1", 0));
        assert_eq!(v6("fe80::1"), plain("fe80::1", 3), "link-local keeps its interface");
        assert_eq!(v6("ff02::1"), plain("::", 0));
        assert_eq!(v6("::ffff:127.0.0.2"), plain("::ffff:127.0.0.2", 0));
        assert_eq!(v6("::ffff:255.255.255.255"), plain("::ffff:0.0.0.0", 0), "still v4-mapped");
        let Info::V6(info) = v6("fe80::1").info() else { panic!("an IPv6 source") };
        assert_eq!(
            (Ipv6Addr::from(info.ipi6_addr.s6_addr), info.ipi6_ifindex),
            ("fe80::1".parse().unwrap(), 3)
        );
    }
}
