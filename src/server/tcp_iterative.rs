//! TCP, iterative: accept one connection, serve it to the end, then accept the next.
//!
//! The lecture's first TCP server, kept on purpose: it shows why a server needs concurrency,
//! since one silent client holds up everyone behind it (until the idle timeout closes it).
//! `upcase check` reports a server that behaves like this as iterative.

use std::io;
use std::net::TcpListener;

use socket2::SockRef;

use super::tcp::{accept_failed, serve_blocking, Buffers, STOP_POLL};
use super::Context;

/// Serves `listener` until the server stops, one connection at a time.
pub fn run(listener: TcpListener, context: &Context) {
    let mut buffers = Buffers::new(context.config.read_chunk);
    accept_loop(&listener, context, |stream, peer| serve_blocking(stream, peer, context, &mut buffers));
    context.blocking_connections.wait_until_empty();
}

/// The blocking accept loop shared by the iterative and threaded models: hands each accepted
/// connection to `serve` and returns once the server stops. It never ends on an accept error.
pub(crate) fn accept_loop(
    listener: &TcpListener,
    context: &Context,
    mut serve: impl FnMut(std::net::TcpStream, std::net::SocketAddr),
) {
    // Linux applies SO_RCVTIMEO to accept(), so the loop wakes to notice a stop.
    if let Err(e) = SockRef::from(listener).set_read_timeout(Some(STOP_POLL)) {
        tracing::warn!("cannot set a timeout on the listener, so stopping may hang: {e}");
    }
    let mut consecutive_errors = 0;
    while !context.shutdown.stop.is_cancelled() {
        match listener.accept() {
            Ok((stream, peer)) => {
                consecutive_errors = 0;
                serve(stream, peer);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                consecutive_errors += 1;
                std::thread::sleep(accept_failed(context, &e, consecutive_errors));
            }
        }
    }
}
