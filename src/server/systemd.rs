//! Running under systemd: the sockets it opened and handed over (socket activation), and the
//! notifications a `Type=notify` service sends it (`READY=1`, `STOPPING=1`, `WATCHDOG=1`).
//!
//! Activation is detected, never asked for: `LISTEN_PID` names this process and `LISTEN_FDS`
//! says how many sockets follow descriptor 3. Each one's type, asked of the kernel (`SO_TYPE`),
//! tells TCP from UDP; a name in `LISTEN_FDNAMES` that says `tcp` or `udp` must agree with it.
//! Anything else (no sockets, a file, a Unix socket, a connected TCP socket from `Accept=yes`) is
//! an error that says what to change in the socket unit. Without `NOTIFY_SOCKET` every
//! notification is a no-op, so the same binary runs the same way outside systemd.
//!
//! This module must never bind a socket, nor take a descriptor that was not passed to this
//! process.

use std::io;
use std::net::{TcpListener, UdpSocket};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use sd_notify::NotifyState;
use socket2::{Domain, SockRef, Type};
use tokio_util::sync::CancellationToken;

use super::Sockets;

/// Why the sockets systemd passed cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// `LISTEN_FDS`, `LISTEN_PID` or `LISTEN_FDNAMES` could not be read.
    #[error("systemd's LISTEN_FDS, LISTEN_PID or LISTEN_FDNAMES is malformed ({0}); run upcase from a socket unit, or unset them")]
    Environment(io::Error),
    /// `LISTEN_FDS` is 0.
    #[error("systemd passed no sockets (LISTEN_FDS=0): give the socket unit ListenStream= and ListenDatagram= lines")]
    NoSockets,
    /// A descriptor is not an Internet socket of a type upcase serves.
    #[error("descriptor {fd} ({name}) passed by systemd is {what}: upcase serves TCP (ListenStream=) and UDP (ListenDatagram=) on IP addresses only")]
    Unusable {
        /// The descriptor.
        fd: RawFd,
        /// Its name in `LISTEN_FDNAMES`.
        name: String,
        /// What it is instead.
        what: String,
    },
    /// A TCP socket that is connected rather than listening.
    #[error("descriptor {fd} ({name}) passed by systemd is a connected TCP socket, not a listening one: remove Accept=yes from the socket unit")]
    NotListening {
        /// The descriptor.
        fd: RawFd,
        /// Its name in `LISTEN_FDNAMES`.
        name: String,
    },
    /// A descriptor named `tcp` or `udp` is a socket of the other type.
    #[error("descriptor {fd} is named {name:?} in LISTEN_FDNAMES but is a {actual} socket: fix FileDescriptorName= in the socket unit")]
    NameMismatch {
        /// The descriptor.
        fd: RawFd,
        /// Its name.
        name: String,
        /// What its socket type says it is.
        actual: &'static str,
    },
}

/// The sockets systemd passed to this process, if it passed any; `None` when the process was not
/// socket-activated (no `LISTEN_PID`, or one naming another process).
///
/// Call it once, before any thread is started: it takes the descriptors and unsets the variables
/// (so that no child process takes them too), and changing the environment is safe only while
/// this is the one thread.
pub fn activated_sockets() -> Result<Option<Sockets>, ActivationError> {
    let for_this_process = std::env::var("LISTEN_PID").ok().and_then(|pid| pid.trim().parse::<u32>().ok())
        == Some(std::process::id());
    // Variables meant for another process (a parent that forked this one) are none of ours.
    if !for_this_process {
        return Ok(None);
    }
    let said_none = std::env::var("LISTEN_FDS").is_ok_and(|n| n.trim() == "0");
    let passed: Vec<(RawFd, String)> =
        sd_notify::listen_fds_with_names(true).map_err(ActivationError::Environment)?.collect();
    if passed.is_empty() {
        return Err(if said_none {
            ActivationError::NoSockets
        } else {
            ActivationError::Environment(io::ErrorKind::InvalidInput.into())
        });
    }
    let mut sockets = Sockets::default();
    let mut owned = Vec::with_capacity(passed.len());
    for (fd, _) in &passed {
        // SAFETY: systemd passed these descriptors to this process (LISTEN_PID is ours), and
        // `listen_fds_with_names(true)` unset the variables, so nothing else takes them.
        owned.push(unsafe { OwnedFd::from_raw_fd(*fd) });
    }
    for ((fd, name), socket) in passed.into_iter().zip(owned) {
        match classify(fd, &name, &socket)? {
            Type::STREAM => sockets.tcp.push(TcpListener::from(socket)),
            _ => {
                // A wildcard address (`ListenDatagram=12000`) answers from the address written to.
                if let Some(local) = SockRef::from(&socket).local_addr().ok().and_then(|a| a.as_socket()) {
                    super::bind::ask_for_destinations(&socket, local);
                }
                sockets.udp.push(UdpSocket::from(socket));
            }
        }
    }
    Ok(Some(sockets))
}

/// The socket type of a passed descriptor, checked to be one upcase can serve: a listening TCP or
/// a UDP socket on an Internet address, in blocking mode (the async model sets its own).
fn classify(fd: RawFd, name: &str, socket: &OwnedFd) -> Result<Type, ActivationError> {
    let unusable = |what: String| ActivationError::Unusable { fd, name: name.to_owned(), what };
    let socket = SockRef::from(socket);
    let kind = socket.r#type().map_err(|e| unusable(format!("not a socket ({e})")))?;
    match socket.domain() {
        Ok(Domain::IPV4 | Domain::IPV6) => {}
        Ok(domain) => return Err(unusable(format!("a socket of domain {domain:?}"))),
        Err(e) => return Err(unusable(format!("a socket whose domain cannot be read ({e})"))),
    }
    let actual = match kind {
        Type::STREAM => "tcp",
        Type::DGRAM => "udp",
        other => return Err(unusable(format!("a socket of type {other:?}"))),
    };
    if matches!(name, "tcp" | "udp") && name != actual {
        return Err(ActivationError::NameMismatch { fd, name: name.to_owned(), actual });
    }
    if kind == Type::STREAM && !socket.is_listener().unwrap_or(false) {
        return Err(ActivationError::NotListening { fd, name: name.to_owned() });
    }
    socket
        .set_nonblocking(false)
        .map_err(|e| unusable(format!("a socket that cannot be set to blocking ({e})")))?;
    Ok(kind)
}

/// Tells systemd the server is ready (`READY=1`, with `status` as its status line), then keeps
/// it informed from tasks on the current runtime: `STOPPING=1` as soon as `stop` is cancelled,
/// and `WATCHDOG=1` at half the interval `WATCHDOG_USEC` asks for, for as long as the runtime
/// runs and no worker of `observer`'s server is stuck in one turn for longer than that half
/// interval: a stuck worker stops the pings, so systemd restarts the service. Does nothing
/// without `NOTIFY_SOCKET`.
///
/// # Errors
/// When the notification socket cannot be reached; systemd then restarts or fails the service
/// when its start timeout runs out.
pub fn notify_ready(
    status: &str,
    stop: CancellationToken,
    observer: super::observe::Observer,
) -> io::Result<()> {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return Ok(());
    }
    sd_notify::notify(false, &[NotifyState::Ready, NotifyState::Status(status)])?;
    tokio::spawn(async move {
        stop.cancelled().await;
        if let Err(e) = sd_notify::notify(false, &[NotifyState::Stopping, NotifyState::Status("draining")]) {
            tracing::warn!(error = %e, "cannot tell systemd the server is stopping");
        }
    });
    if let Some(period) = watchdog_period() {
        tracing::debug!(period_ms = period.as_millis() as u64, "pinging systemd's watchdog");
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            loop {
                ticks.tick().await;
                if let Some((worker, busy)) = observer.stuck_worker(period) {
                    let busy_ms = busy.as_millis() as u64;
                    tracing::error!(
                        worker,
                        busy_ms,
                        "a worker is stuck in one turn: not pinging systemd's watchdog"
                    );
                    continue;
                }
                if let Err(e) = sd_notify::notify(false, &[NotifyState::Watchdog]) {
                    tracing::warn!(error = %e, "cannot ping systemd's watchdog");
                }
            }
        });
    }
    Ok(())
}

/// Half the watchdog interval systemd set for this process, as `sd_watchdog_enabled(3)` advises;
/// `None` when it set none.
fn watchdog_period() -> Option<Duration> {
    let mut usec = 0;
    (sd_notify::watchdog_enabled(false, &mut usec) && usec > 0).then(|| Duration::from_micros(usec / 2))
}
