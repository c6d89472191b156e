//! UDP, iterative: one loop that receives a datagram, answers it, and receives the next.
//!
//! The lecture's UDP server. For UDP this is already a reasonable design, since no client can hold
//! the loop: each request is one datagram, answered at once.

use std::net::UdpSocket;

use super::udp::serve_blocking;
use super::Context;

/// Answers datagrams on `socket` until the server stops.
pub fn run(socket: UdpSocket, context: &Context) {
    serve_blocking(&socket, context);
}
