//! UDP, async: one Tokio task per socket, receiving and answering without blocking a thread.
//!
//! Each wake-up reads every datagram waiting (up to [`BATCH`] per system call) and sends their
//! replies together ([`super::udp_batch`]); the rule for each datagram is the shared one
//! ([`answer`]).

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::AsFd;
use std::sync::Arc;

use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::udp::{answer, failed, sent, RECEIVE_ERROR_PAUSE};
use super::udp_batch::{self, Received, BATCH};
use super::{Context, ServerError, Transport};
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
    let mut received = Received::new();
    let mut replies = Replies::default();
    let local_port = socket.local_addr().map_or(0, |a| a.port());
    loop {
        let ready = tokio::select! {
            biased;
            () = context.shutdown.stop.cancelled() => break,
            ready = socket.readable() => ready,
        };
        let count =
            ready.and_then(|()| socket.try_io(Interest::READABLE, || received.receive(socket.as_fd())));
        match count {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                failed(&context, format_args!("cannot receive: {e}"));
                // An error that repeats at once (a broken socket) must not spin a core.
                tokio::time::sleep(RECEIVE_ERROR_PAUSE).await;
                continue;
            }
        }
        replies.clear();
        for (request, peer) in received.datagrams() {
            let Some(peer) = peer else {
                failed(&context, format_args!("dropped a datagram from an address that is not IP"));
                continue;
            };
            let start = replies.bytes.len();
            if answer(request, peer, local_port, &context, &mut replies.bytes) {
                replies.to.push((start..replies.bytes.len(), peer));
            }
        }
        replies.send(&socket, &context).await;
    }
}

/// The replies to one batch of datagrams: their bytes end to end, and each one's range and client.
#[derive(Debug, Default)]
struct Replies {
    bytes: Vec<u8>,
    to: Vec<(Range<usize>, SocketAddr)>,
}

impl Replies {
    fn clear(&mut self) {
        self.bytes.clear();
        self.to.clear();
    }

    /// Sends every reply, waiting while the socket's buffer is full. A reply the kernel refuses
    /// is counted and logged, and the rest still go.
    async fn send(&self, socket: &UdpSocket, context: &Context) {
        let mut next = 0;
        while let Some(rest) = self.to.get(next..).filter(|rest| !rest.is_empty()) {
            let sent_now =
                socket.try_io(Interest::WRITABLE, || udp_batch::send(socket.as_fd(), &self.bytes, rest));
            match sent_now {
                Ok(count) if count > 0 => {
                    for (range, peer) in rest.iter().take(count) {
                        sent(context, *peer, Ok(range.len()));
                    }
                    next += count.min(BATCH);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = socket.writable().await {
                        failed(context, format_args!("cannot wait to send: {e}"));
                        return;
                    }
                }
                // An error is the first reply's alone; the others are tried again.
                failure => {
                    let error = failure.err().unwrap_or_else(|| io::ErrorKind::WriteZero.into());
                    if let Some((_, peer)) = rest.first() {
                        sent(context, *peer, Err(error));
                    }
                    next += 1;
                }
            }
        }
    }
}
