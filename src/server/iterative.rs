//! The iterative model: one client at a time, the lecture's first servers.
//!
//! TCP: accept one connection, serve it to the end, then accept the next. Kept on purpose: it
//! shows why a server needs concurrency, since one silent client holds up everyone behind it
//! (until the idle timeout closes it); `upcase check` reports a server that behaves like this as
//! iterative. UDP: receive a datagram, answer it, receive the next; for UDP this is already a
//! reasonable design, since no client can hold the loop.

use std::net::{TcpListener, UdpSocket};

use super::blocking::{accept_loop, answer_datagrams, serve_connection, Buffers};
use super::connection::admit;
use super::connections::Socket;
use super::Context;

/// Serves `listener` until the server stops, one connection at a time.
pub(crate) fn serve_tcp(listener: TcpListener, context: &Context) {
    let mut buffers = Buffers::new(context, 0);
    accept_loop(&listener, context, |stream, peer| {
        let handle = || stream.try_clone().ok().map(Socket::Owned);
        if let Some(admission) = admit(context, handle, peer, context.config.max_connections) {
            serve_connection(stream, peer, admission, context, &mut buffers);
        }
    });
}

/// Answers datagrams on `socket` until the server stops.
pub(crate) fn serve_udp(socket: UdpSocket, context: &Context) {
    answer_datagrams(&socket, 0, context);
}
