//! UDP, async: one Tokio task per socket, receiving and answering without blocking a thread.
//!
//! The task answers every datagram already queued before it waits again: a waiting receive costs
//! a registration with the runtime (and, with the stop signal beside it, two more), an immediate
//! one only the system call. It hands the thread back to the runtime every [`BATCH`] datagrams,
//! so a flood cannot starve the TCP connections that share its worker.

use std::io;
use std::sync::Arc;

use tokio::net::UdpSocket;

use super::udp::{answer, failed, sent, RECEIVE_ERROR_PAUSE};
use super::{Context, ServerError, Transport};
use crate::net::RECEIVE_BUFFER;

/// Datagrams answered in a row before the task yields to the runtime (and checks for a stop).
const BATCH: usize = 64;

/// Hands a bound UDP socket to the Tokio runtime.
pub fn register(socket: std::net::UdpSocket) -> Result<UdpSocket, ServerError> {
    let addr = socket.local_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let runtime_error =
        |reason| ServerError::Runtime { transport: Transport::Udp, addr: addr.clone(), reason };
    socket.set_nonblocking(true).map_err(runtime_error)?;
    UdpSocket::from_std(socket).map_err(runtime_error)
}

/// Answers datagrams on `socket` until the server stops.
pub async fn run(socket: UdpSocket, context: Arc<Context>) {
    let mut request = vec![0; RECEIVE_BUFFER];
    let mut reply = Vec::new();
    let local_port = socket.local_addr().map_or(0, |a| a.port());
    let mut answered_in_a_row = 0;
    while !context.shutdown.stop.is_cancelled() {
        match socket.try_recv_from(&mut request) {
            Ok((n, peer)) => {
                if answer(request.get(..n).unwrap_or_default(), peer, local_port, &context, &mut reply) {
                    let result = match socket.try_send_to(&reply, peer) {
                        // The send buffer is full: wait for room rather than drop the reply.
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket.send_to(&reply, peer).await,
                        result => result,
                    };
                    sent(&context, peer, result);
                }
                answered_in_a_row += 1;
                if answered_in_a_row == BATCH {
                    answered_in_a_row = 0;
                    tokio::task::yield_now().await;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                answered_in_a_row = 0;
                let ready = tokio::select! {
                    biased;
                    () = context.shutdown.stop.cancelled() => break,
                    ready = socket.readable() => ready,
                };
                if let Err(e) = ready {
                    failed(&context, format_args!("cannot wait for datagrams: {e}"));
                    tokio::time::sleep(RECEIVE_ERROR_PAUSE).await;
                }
            }
            Err(e) => {
                failed(&context, format_args!("cannot receive: {e}"));
                // An error that repeats at once (a broken socket) must not spin a core.
                tokio::time::sleep(RECEIVE_ERROR_PAUSE).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::sync::atomic::Ordering;

    /// With more than [`BATCH`] datagrams queued, the task answers [`BATCH`] of them and then lets
    /// the runtime run something else (here, on one thread, the test itself) before the rest.
    #[test]
    fn a_full_queue_is_answered_in_batches_that_let_other_tasks_run() {
        const QUEUED: u64 = 3 * BATCH as u64;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(server.local_addr().unwrap()).unwrap();
        // On loopback each send is in the server's queue when it returns; nothing has run yet.
        for i in 0..QUEUED {
            client.send(format!("request {i}").as_bytes()).unwrap();
        }
        let context = Arc::new(Context::new(crate::server::Config::default()));
        let replies = |context: &Context| context.stats.udp_replies.load(Ordering::Relaxed);
        let seen_between = runtime.block_on(async {
            let socket = register(server).unwrap();
            let task = tokio::spawn(run(socket, Arc::clone(&context)));
            let mut seen = Vec::new();
            while replies(&context) < QUEUED && seen.len() < 100 {
                tokio::task::yield_now().await;
                seen.push(replies(&context));
            }
            context.shutdown.stop.cancel();
            task.await.unwrap();
            seen
        });
        // Before the task first runs, the test may look once and see nothing answered yet.
        let answered: Vec<u64> = seen_between.into_iter().skip_while(|&n| n == 0).collect();
        let batch = BATCH as u64;
        assert_eq!(answered, [batch, 2 * batch, 3 * batch]);
        let mut reply = [0; 64];
        let n = client.recv(&mut reply).unwrap();
        assert_eq!(reply.get(..n), Some(&b"REQUEST 0"[..]));
    }
}
