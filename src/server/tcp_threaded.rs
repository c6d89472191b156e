//! TCP, thread per connection: the lecture's multithreaded server, with a cap.
//!
//! Each accepted connection gets its own OS thread, as on the lecture's last slide. Threads are
//! not free (a stack each, a context switch per wake-up), so their number is capped at the lower of
//! [`Config::max_threads`](super::Config::max_threads) and
//! [`Config::max_connections`](super::Config::max_connections); a connection beyond the cap is
//! closed at once rather than left waiting.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::tcp::{reject_over_limit, serve_blocking, Buffers};
use super::tcp_iterative::accept_loop;
use super::Context;

/// Stack size of connection threads: the handler needs little, and the default 2 MiB of address
/// space per thread adds up at thousands of connections.
const CONNECTION_STACK: usize = 256 * 1024;

/// Serves `listener` until the server stops, a thread per connection; returns when the last
/// connection thread has finished.
pub fn run(listener: TcpListener, context: &Context) {
    let limit = context.config.max_threads.min(context.config.max_connections);
    let threads = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        accept_loop(&listener, context, |stream, peer| {
            if threads.load(Ordering::Acquire) >= limit {
                reject_over_limit(context, peer, limit);
                return;
            }
            threads.fetch_add(1, Ordering::AcqRel);
            let threads = &threads;
            let spawned = std::thread::Builder::new()
                .name(format!("upcase-tcp-{peer}"))
                .stack_size(CONNECTION_STACK)
                .spawn_scoped(scope, move || {
                    serve_blocking(stream, peer, context, &mut Buffers::new(context.config.read_chunk));
                    threads.fetch_sub(1, Ordering::AcqRel);
                });
            if let Err(e) = spawned {
                threads.fetch_sub(1, Ordering::AcqRel);
                reject_over_limit(context, peer, limit);
                tracing::warn!("cannot start a thread for {peer}: {e}");
            }
        });
    });
}
