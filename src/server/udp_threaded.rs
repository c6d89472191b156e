//! UDP, threaded: a fixed pool of threads, each running the iterative loop on the same socket.
//!
//! UDP has no connections to give a thread each, so "thread per client" becomes "several
//! threads per socket": the kernel hands each waiting thread the next datagram, and answering
//! goes on in parallel on every core.

use std::net::UdpSocket;

use super::udp::serve_blocking;
use super::Context;

/// Answers datagrams on `socket` with [`Config::udp_threads`](super::Config::udp_threads)
/// threads until the server stops.
pub fn run(socket: UdpSocket, context: &Context) {
    let threads = context.config.udp_threads.max(1);
    std::thread::scope(|scope| {
        for worker in 1..threads {
            match socket.try_clone() {
                Ok(clone) => {
                    scope.spawn(move || serve_blocking(&clone, context));
                }
                Err(e) => {
                    tracing::warn!("cannot start UDP worker {worker} of {threads}: {e}; serving with fewer");
                    break;
                }
            }
        }
        serve_blocking(&socket, context);
    });
}
