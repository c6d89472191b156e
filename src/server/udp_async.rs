//! UDP, async: one Tokio task per socket, receiving and answering without blocking a thread.

use std::sync::Arc;

use tokio::net::UdpSocket;

use super::udp::{answer, failed, sent, RECEIVE_ERROR_PAUSE};
use super::{Context, ServerError, Transport};
use crate::net::RECEIVE_BUFFER;

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
    loop {
        let received = tokio::select! {
            biased;
            () = context.shutdown.stop.cancelled() => break,
            received = socket.recv_from(&mut request) => received,
        };
        match received {
            Ok((n, peer)) => {
                if answer(request.get(..n).unwrap_or_default(), peer, local_port, &context, &mut reply) {
                    sent(&context, peer, socket.send_to(&reply, peer).await);
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
