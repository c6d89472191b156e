//! A network namespace of its own for a program under test and the check that probes it: its
//! own loopback, so that every submission of a class can have port 12000 at once, nothing else
//! on the machine holds that port, and a connection one run left in TIME_WAIT never delays the
//! next (a restart moves to a fresh namespace instead of waiting a minute).
//!
//! Linux only, and only with CAP_SYS_ADMIN (as root). A namespace belongs to the thread that
//! enters it and to what that thread starts from then on (processes, threads, sockets); the rest
//! of the process stays where it was. The new loopback is brought up with `ip link set lo up`
//! (iproute2): the alternative, an `ioctl` on an interface request, would be this crate's only
//! `unsafe` code. Nothing here starts a program under test or probes anything.

use std::io;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::Command;
use std::thread;

use nix::errno::Errno;
use nix::sched::{unshare, CloneFlags};

/// Why a thread could not get a network namespace of its own.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The kernel refused to create one.
    #[error("{}", unshare_refused(*.0))]
    Unshare(Errno),
    /// `ip` (iproute2), which brings the new loopback up, is not installed.
    #[error("`ip` is not installed, and a new network namespace's loopback is down until `ip link set lo up` (Debian: apt-get install iproute2)")]
    NoIp,
    /// The loopback could not be brought up, or does not carry a connection.
    #[error("the loopback of a new network namespace does not work: {0}")]
    Loopback(String),
}

fn unshare_refused(errno: Errno) -> String {
    let why = match errno {
        Errno::EPERM => "it takes root, or the CAP_SYS_ADMIN capability, which this process lacks",
        Errno::EINVAL => "this kernel has no network namespaces (CONFIG_NET_NS)",
        Errno::ENOSPC => "the limit on network namespaces (user.max_net_namespaces) is reached",
        Errno::ENOMEM => "the kernel is out of memory",
        _ => "the kernel refused",
    };
    format!("cannot create a network namespace: {why} (unshare: {})", errno.desc())
}

/// Moves the calling thread into a new network namespace, with its loopback up (127.0.0.1 and
/// ::1). What the thread starts from now on is in it too; a thread already in one of its own
/// leaves that one (it ends once nothing in it is left).
///
/// # Errors
/// [`NetnsError`] when the kernel refuses, `ip` is missing, or the loopback does not work; the
/// thread may then be in a namespace without a working loopback, so give up on it.
pub fn enter_fresh() -> Result<(), NetnsError> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(NetnsError::Unshare)?;
    let output = match Command::new("ip").args(["link", "set", "lo", "up"]).output() {
        Ok(output) => output,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(NetnsError::NoIp),
        Err(e) => return Err(NetnsError::Loopback(format!("cannot run `ip link set lo up`: {e}"))),
    };
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(NetnsError::Loopback(format!("`ip link set lo up` failed: {said}")));
    }
    loopback_works().map_err(|e| NetnsError::Loopback(format!("a connection to 127.0.0.1 failed: {e}")))
}

/// Whether this process can give a thread a network namespace of its own: tried on a thread
/// that ends at once, so the caller's stays as it is.
///
/// # Errors
/// Why not, as [`enter_fresh`] says.
pub fn available() -> Result<(), NetnsError> {
    thread::spawn(enter_fresh)
        .join()
        .unwrap_or_else(|_| Err(NetnsError::Loopback("the trial thread panicked".to_owned())))
}

fn loopback_works() -> io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    TcpStream::connect(listener.local_addr()?)?;
    listener.accept().map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_namespace_has_its_own_ports() {
        if let Err(why) = available() {
            eprintln!("skipped: {why}");
            return;
        }
        let outside = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap_or_else(|e| panic!("{e}"));
        let port = outside.local_addr().map(|a| a.port()).unwrap_or_default();
        let inside = thread::spawn(move || {
            enter_fresh().map_err(|e| e.to_string())?;
            // The same port is free in here, and what listens outside cannot be reached.
            let again = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|e| e.to_string())?;
            drop(again);
            Ok::<bool, String>(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err())
        });
        assert_eq!(inside.join().ok(), Some(Ok(true)));
    }
}
