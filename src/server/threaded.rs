//! The threaded model: the lecture's multithreaded server, with a cap; and a pool for UDP.
//!
//! TCP: each accepted connection gets its own OS thread, as on the lecture's last slide. Threads
//! are not free (a stack each, a context switch per wake-up), so their number is capped at the
//! lower of [`Config::max_threads`](super::Config::max_threads) and
//! [`Config::max_connections`](super::Config::max_connections); a connection beyond the cap is
//! closed at once rather than left waiting.
//!
//! UDP has no connections to give a thread each, so "thread per client" becomes "several threads
//! per socket": [`Config::workers`](super::Config::workers) threads run the iterative
//! loop on the same socket, the kernel hands each waiting thread the next datagram, and answering
//! goes on in parallel on every core.

use std::net::{TcpListener, UdpSocket};

use super::blocking::{accept_loop, answer_datagrams, serve_connection, Buffers};
use super::connection::{admit, withdraw};
use super::connections::Socket;
use super::Context;

/// Stack size of connection threads: the handler needs little, and the default 2 MiB of address
/// space per thread adds up at thousands of connections.
const CONNECTION_STACK: usize = 256 * 1024;

/// Serves `listener` until the server stops, a thread per connection; returns when the last
/// connection thread has finished.
pub(crate) fn serve_tcp(listener: TcpListener, context: &Context) {
    let limit = context.config.max_threads.min(context.config.max_connections);
    std::thread::scope(|scope| {
        let listener = listener;
        accept_loop(&listener, context, |stream, peer| {
            let handle = || stream.try_clone().ok().map(Socket::Owned);
            let Some(admission) = admit(context, handle, peer, limit) else { return };
            let spawned = std::thread::Builder::new()
                .name(format!("upcase-tcp-{peer}"))
                .stack_size(CONNECTION_STACK)
                .spawn_scoped(scope, move || {
                    let mut buffers = Buffers::new(context, admission.key);
                    serve_connection(stream, peer, admission, context, &mut buffers);
                });
            if let Err(e) = spawned {
                // The closure, and the stream in it, is dropped: the connection is closed.
                tracing::warn!("cannot start a thread for {peer}: {e}; closing the connection");
                withdraw(context, admission);
            }
        });
        // Closed now, not when the last connection thread is done: a connection the kernel
        // completed meanwhile would only be reset at the end of the grace.
        drop(listener);
    });
}

/// Answers datagrams on `socket` with [`Config::workers`](super::Config::workers)
/// threads until the server stops.
pub(crate) fn serve_udp(socket: UdpSocket, context: &Context) {
    let threads = context.config.workers.max(1);
    std::thread::scope(|scope| {
        for worker in 1..threads {
            match socket.try_clone() {
                Ok(clone) => {
                    scope.spawn(move || answer_datagrams(&clone, worker as u64, context));
                }
                Err(e) => {
                    tracing::warn!("cannot start UDP worker {worker} of {threads}: {e}; serving with fewer");
                    break;
                }
            }
        }
        answer_datagrams(&socket, 0, context);
    });
}
