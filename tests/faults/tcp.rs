//! TCP clients that misbehave: one that resets the connection in the middle of a stream, and a
//! slowloris that keeps a connection alive one byte at a time.

use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use upcase::server::Model;

use crate::stop;
use crate::support::*;

for_each_model!(rst_in_mid_stream, slowloris_is_closed_at_max_connection_time);

/// Must hold: a client that sends 1 MiB and then resets the connection (SO_LINGER 0) without
/// reading the rest of its reply costs the server that connection only. What it did read was
/// exact; the server stays alive, counts the reset as one error (`tcp_errors=1`), and serves the
/// next client's 1 MiB byte for byte (nothing lost, nothing cut).
fn rst_in_mid_stream(model: Model) {
    let mut server = serve_upcase_model(model, &[]);
    let addr = server.tcp();
    let (message, expected) = long_message(1 << 20);
    let stream = connect(addr);
    let mut writer = stream.try_clone().unwrap();
    let to_send = message.clone();
    let sending = thread::spawn(move || writer.write_all(&to_send));
    // Read while sending (so neither side can block the other), and stop as soon as all is sent:
    // the rest of the reply is still in flight when the reset goes out.
    stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut received = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    let deadline = Instant::now() + PATIENCE;
    while !sending.is_finished() {
        assert!(Instant::now() < deadline, "sending 1 MiB took longer than {PATIENCE:?}");
        match (&stream).read(&mut chunk) {
            Ok(0) => panic!("{model}: server closed before the client finished"),
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(e) => panic!("{model}: read: {e}"),
        }
    }
    sending.join().unwrap().expect("send 1 MiB");
    assert_eq!(received, expected[..received.len()], "{model}: the part of the reply read is exact");
    socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)).unwrap();
    drop(stream); // RST
    eprintln!("{model}: reset after reading {} of {} reply bytes", received.len(), expected.len());

    assert!(server.guard.is_running(), "{model}: server died after a reset");
    let (reply, error) = tcp_reply_and_error(addr, &message);
    assert!(error.is_none(), "{model}: next client failed: {error:?}");
    assert!(reply == expected, "{model}: next client's reply differs ({} bytes)", reply.len());

    let summary = stop(&mut server);
    assert_eq!(summary.get("tcp_accepted"), 2, "{model}: {}", summary.line);
    // The server sees the reset as ECONNRESET on its next read or write: one error, no other
    // ending.
    assert_eq!(summary.get("tcp_errors"), 1, "{model}: {}", summary.line);
    assert_eq!(summary.get("tcp_write_timeouts") + summary.get("tcp_idle_timeouts"), 0, "{}", summary.line);
}

/// Must hold: with `--idle-timeout 10s --max-connection-time 2s`, a client that sends one byte
/// every 400 ms (never idle long enough for the idle timeout) is served while it lasts and closed
/// 2 to 5 s after it connected (`tcp_lifetime_exceeded=1`, no idle timeout). Meanwhile other
/// clients are served normally (threaded, async); the iterative server, held by the slow client,
/// serves the waiting client as soon as the slow one is closed.
fn slowloris_is_closed_at_max_connection_time(model: Model) {
    let mut server = serve_upcase_model(model, &["--idle-timeout", "10s", "--max-connection-time", "2s"]);
    let addr = server.tcp();
    let (served, first_echo) = mpsc::channel();
    let slow = thread::spawn(move || -> (Duration, usize) {
        let mut stream = connect(addr);
        let opened = Instant::now();
        let mut echoed = 0;
        let mut buffer = [0; 16];
        for _ in 0..25 {
            // 25 × 400 ms: 10 s at most
            if stream.write_all(b"s").is_err() {
                return (opened.elapsed(), echoed);
            }
            // Waits out the 400 ms reading: the echo, then the close when it comes.
            let next = Instant::now() + Duration::from_millis(400);
            loop {
                let left = next.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                stream.set_read_timeout(Some(left)).unwrap();
                match stream.read(&mut buffer) {
                    Ok(0) => return (opened.elapsed(), echoed),
                    Ok(n) => {
                        assert!(buffer[..n].iter().all(|&b| b == b'S'), "echo {:?}", &buffer[..n]);
                        echoed += n;
                        let _ = served.send(());
                    }
                    Err(e) if is_timeout(&e) => break,
                    Err(_) => return (opened.elapsed(), echoed),
                }
            }
        }
        panic!("slow client still open after 10 s");
    });
    first_echo.recv_timeout(PATIENCE).expect("the slow client is served");

    if model == Model::Iterative {
        // One client at a time: this one waits in the backlog until the slow one is closed.
        let waiting = Instant::now();
        assert_tcp_uppercases(addr, SENTENCE);
        eprintln!("{model}: waiting client answered after {:.2?}", waiting.elapsed());
    } else {
        let mut exchanges = 0;
        for _ in 0..100 {
            if slow.is_finished() {
                break;
            }
            let started = Instant::now();
            assert_tcp_uppercases(addr, SENTENCE);
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{model}: exchange took {:?}",
                started.elapsed()
            );
            exchanges += 1;
            thread::sleep(Duration::from_millis(100));
        }
        assert!(exchanges >= 5, "{model}: only {exchanges} exchanges beside the slow client");
    }
    let (closed_after, echoed) = slow.join().unwrap();
    eprintln!("{model}: slow client closed {closed_after:.2?} after connecting, {echoed} bytes echoed");
    // The server's clock starts at accept, a moment after the client's connect returned.
    assert!(closed_after >= Duration::from_millis(1950), "{model}: closed too early: {closed_after:?}");
    assert!(closed_after <= Duration::from_secs(5), "{model}: closed too late: {closed_after:?}");
    assert!(echoed >= 3, "{model}: the slow client was served while it lasted ({echoed} echoed)");

    let summary = stop(&mut server);
    assert_eq!(summary.get("tcp_lifetime_exceeded"), 1, "{model}: {}", summary.line);
    assert_eq!(summary.get("tcp_idle_timeouts"), 0, "{model}: {}", summary.line);
}
