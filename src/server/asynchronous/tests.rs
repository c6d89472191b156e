//! The async model's own mechanisms, each tested where a regression would not show in the
//! integration tests: the read that saves a system call, the size of an idle connection, and the
//! UDP task's fairness.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::*;

/// A short read marks the socket not ready without a second read; the next bytes to arrive
/// make it ready again. A read that fills the buffer leaves it ready: more may be waiting.
#[test]
fn a_short_read_waits_for_more_without_reading_again() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let ready_now = |stream: &tokio::net::TcpStream| {
            matches!(
                stream.poll_read_ready(&mut std::task::Context::from_waker(Waker::noop())),
                Poll::Ready(_)
            )
        };
        let patience = Duration::from_secs(10);
        let mut buffer = [0; 8];

        client.write_all(b"abc").await.unwrap();
        tokio::time::timeout(patience, server.readable()).await.unwrap().unwrap();
        assert_eq!(read_draining(&server, &mut buffer).unwrap(), 3);
        assert_eq!(&buffer[..3], b"abc");
        assert!(!ready_now(&server), "a short read must leave the socket waiting");

        client.write_all(b"defghijklm").await.unwrap();
        tokio::time::timeout(patience, server.readable()).await.unwrap().unwrap();
        assert_eq!(read_draining(&server, &mut buffer).unwrap(), 8);
        assert_eq!(&buffer, b"defghijk");
        assert!(ready_now(&server), "a full buffer may have more behind it");
        assert_eq!(read_draining(&server, &mut buffer).unwrap(), 2);
        assert_eq!(&buffer[..2], b"lm");
    });
}

/// Tokio allocates a task's cell in steps of 128 bytes; about 104 of them are its own header
/// and trailer, and the tracker wraps the future with 8 more. At most 152 bytes here keeps
/// each idle connection's task at 256 bytes; one byte more costs 128 bytes per connection.
#[test]
fn a_connection_fits_a_256_byte_task() {
    let size = std::mem::size_of::<Connection>() + 8;
    assert!(size <= 152, "connection future is {size} bytes");
}

/// With more than [`UDP_BATCH`] datagrams queued, the task answers [`UDP_BATCH`] of them and then lets
/// the runtime run something else (here, on one thread, the test itself) before the rest.
#[test]
fn a_full_queue_is_answered_in_batches_that_let_other_tasks_run() {
    const QUEUED: u64 = 3 * UDP_BATCH as u64;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(server.local_addr().unwrap()).unwrap();
    // On loopback each send is in the server's queue when it returns; nothing has run yet.
    for i in 0..QUEUED {
        client.send(format!("request {i}").as_bytes()).unwrap();
    }
    let context = Arc::new(Context::new(Config::default()));
    let replies = |context: &Context| context.stats.udp_replies.load(Ordering::Relaxed);
    let seen_between = runtime.block_on(async {
        let socket = register(server, Transport::Udp, UdpSocket::from_std).unwrap();
        let task = tokio::spawn(answer_datagrams(socket, Arc::clone(&context)));
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
    let batch = UDP_BATCH as u64;
    assert_eq!(answered, [batch, 2 * batch, 3 * batch]);
    let mut reply = [0; 64];
    let n = client.recv(&mut reply).unwrap();
    assert_eq!(reply.get(..n), Some(&b"REQUEST 0"[..]));
}
