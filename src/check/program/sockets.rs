//! Which sockets are bound to a port, read from the kernel's tables (`net/tcp`, `tcp6`, `udp`,
//! `udp6`) and from the descriptors of a program's processes. A program's sockets are looked up
//! in the tables of its own network namespace (`/proc/PID/net`), a port's state in the caller's
//! (`/proc/thread-self/net`): a grader may run each program in a namespace of its own.
//!
//! Passive on purpose: telling that a server listens by connecting to it would open an empty
//! connection, which some student servers die of or spend their only `accept()` on. Reads only;
//! never opens, binds or connects a socket.

use std::io;

use crate::net::Transport;

/// TCP state numbers of `include/net/tcp_states.h`, as the tables print them.
const TCP_LISTEN: u8 = 0x0A;
const TCP_TIME_WAIT: u8 = 0x06;

/// One row of a socket table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    port: u16,
    state: u8,
    inode: u64,
}

/// Whether one of `pids` holds a socket of `transport` bound to local `port` that can take
/// requests: a TCP socket listening, or any UDP socket.
pub(super) fn serves_port(pids: &[u32], transport: Transport, port: u16) -> bool {
    served(pids, transport).contains(&port)
}

/// The local ports on which one of `pids` holds a socket of `transport` that can take requests
/// (TCP: listening), in order: what a program that never answered on its port serves instead.
pub(super) fn served(pids: &[u32], transport: Transport) -> Vec<u16> {
    let Some(&first) = pids.first() else { return Vec::new() };
    let Ok(entries) = table(&format!("/proc/{first}/net"), transport) else { return Vec::new() };
    let inodes: Vec<u64> = pids.iter().flat_map(|&pid| socket_inodes(pid)).collect();
    let mut ports: Vec<u16> = entries
        .iter()
        .filter(|e| transport == Transport::Udp || e.state == TCP_LISTEN)
        .filter(|e| inodes.contains(&e.inode))
        .map(|e| e.port)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// A process of this machine's that holds a socket of `transport` on local `port` that can
/// take requests (TCP: listening), seen from the caller's network namespace: its id and name.
/// `Some((None, ..))` when the socket is there but its process cannot be told (another user's,
/// or another namespace's).
pub fn port_holder(transport: Transport, port: u16) -> Option<(Option<u32>, String)> {
    let entries = table("/proc/thread-self/net", transport).ok()?;
    let entry =
        entries.iter().find(|e| e.port == port && (transport == Transport::Udp || e.state == TCP_LISTEN))?;
    let pids =
        std::fs::read_dir("/proc").ok()?.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok());
    for pid in pids {
        if socket_inodes(pid).contains(&entry.inode) {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            return Some((Some(pid), name.trim().to_owned()));
        }
    }
    Some((None, String::new()))
}

/// Whether a TCP connection on local `port` is in TIME_WAIT: the side that closed first keeps it
/// for a minute, and until then a program that binds `port` without `SO_REUSEADDR` gets
/// "Address already in use".
pub fn tcp_port_in_time_wait(port: u16) -> bool {
    table("/proc/thread-self/net", Transport::Tcp)
        .is_ok_and(|entries| entries.iter().any(|e| e.port == port && e.state == TCP_TIME_WAIT))
}

/// The rows of both tables (IPv4 and IPv6) of `transport` in the directory `net` of a process.
fn table(net: &str, transport: Transport) -> io::Result<Vec<Entry>> {
    let files: [&str; 2] = match transport {
        Transport::Tcp => ["tcp", "tcp6"],
        Transport::Udp => ["udp", "udp6"],
    };
    let mut entries = Vec::new();
    for file in files {
        match std::fs::read_to_string(format!("{net}/{file}")) {
            Ok(text) => entries.extend(text.lines().skip(1).filter_map(parse_entry)),
            // A kernel without IPv6 has no tcp6/udp6.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(entries)
}

/// `  0: 0100007F:2EE0 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0  0 4242 ...`:
/// slot, local address:port (hex), remote, state (hex), queues, timer, retransmits, uid, timeout,
/// inode.
fn parse_entry(line: &str) -> Option<Entry> {
    let fields: Vec<&str> = line.split_whitespace().take(10).collect();
    let (_, port) = fields.get(1)?.rsplit_once(':')?;
    Some(Entry {
        port: u16::from_str_radix(port, 16).ok()?,
        state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
        inode: fields.get(9)?.parse().ok()?,
    })
}

/// The inodes of the sockets process `pid` holds open (`/proc/PID/fd/N -> socket:[INODE]`).
fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(descriptors) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    descriptors
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            target.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_port_state_and_inode_of_a_row() {
        let line =
            "   3: 0100007F:2EE0 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 \
                    987654 1 0000000000000000 100 0 0 10 0";
        assert_eq!(parse_entry(line), Some(Entry { port: 12000, state: TCP_LISTEN, inode: 987_654 }));
        assert_eq!(parse_entry("  sl  local_address rem_address   st tx_queue"), None);
    }

    #[test]
    fn sees_this_process_listen_and_bind() {
        let me = [std::process::id()];
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (tcp_port, udp_port) = (tcp.local_addr().unwrap().port(), udp.local_addr().unwrap().port());
        assert!(serves_port(&me, Transport::Tcp, tcp_port));
        assert!(serves_port(&me, Transport::Udp, udp_port));
        drop(tcp);
        assert!(!serves_port(&me, Transport::Tcp, tcp_port));
        assert!(
            !serves_port(&[], Transport::Udp, udp_port),
            "held by this process, not by the ones asked about"
        );
    }
}
