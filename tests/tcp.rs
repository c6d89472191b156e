//! The TCP service over real loopback sockets, the same checks for every concurrency model.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};

use support::*;
use upcase::server::{Config, Model};

for_each_model!(
    lecture_client_send_once_receive_once,
    unicode_round_trips,
    persistent_connection_answers_as_data_arrives,
    character_split_across_two_writes,
    invalid_utf8_comes_back_byte_for_byte,
    ascii_encoding_is_binary_safe,
    stream_of_100_mib,
    two_hundred_concurrent_clients,
    two_thousand_connections_at_once,
    restart_on_same_port_after_a_burst,
    idle_connection_is_closed,
    shutdown_lets_a_stream_in_flight_finish,
    shutdown_closes_idle_connections_after_grace,
    silent_client_blocks_only_the_iterative_model,
    connections_over_the_limit_are_closed_and_the_rest_still_served: [threaded, asynchronous],
);

/// The lecture's client: send once, receive once, close, without shutting down its side first.
fn lecture_client_send_once_receive_once(model: Model) {
    let server = TestServer::start_model(model);
    let mut stream = connect(server.addr);
    stream.write_all(b"input lowercase sentence").unwrap();
    assert_eq!(read_exactly(&mut stream, 24), b"INPUT LOWERCASE SENTENCE");
    drop(stream);
    // The server noticed the close and serves the next client.
    assert_eq!(tcp_reply(server.addr, b"next"), b"NEXT");
}

fn unicode_round_trips(model: Model) {
    let server = TestServer::start_model(model);
    for (sentence, expected) in SENTENCES {
        assert_eq!(tcp_reply(server.addr, sentence.as_bytes()), expected.as_bytes(), "{sentence:?}");
    }
}

/// `nc`-style use: the reply to each line comes back before the client sends the next.
fn persistent_connection_answers_as_data_arrives(model: Model) {
    let server = TestServer::start_model(model);
    let mut stream = connect(server.addr);
    for line in ["first line\n", "second, ß\n", "third\n"] {
        stream.write_all(line.as_bytes()).unwrap();
        let expected = line.to_uppercase();
        assert_eq!(read_exactly(&mut stream, expected.len()), expected.as_bytes());
    }
    stream.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing after the last reply, then a clean close");
}

fn character_split_across_two_writes(model: Model) {
    let server = TestServer::start_model(model);
    // On a persistent connection, the held-back bytes come out as soon as they are complete.
    let mut stream = connect(server.addr);
    stream.set_nodelay(true).unwrap();
    stream.write_all(&[0xC3]).unwrap();
    thread::sleep(Duration::from_millis(30));
    stream.write_all(&[0xA9, b'x']).unwrap();
    assert_eq!(read_exactly(&mut stream, 3), "ÉX".as_bytes());
    drop(stream);
    let text = "aß€😀".as_bytes(); // ß, € and 😀 are 2, 3 and 4 bytes
    for cut in [2, 4, 7, 9] {
        assert_eq!(
            tcp_reply_written_in_two(server.addr, text, cut),
            "ASS€😀".as_bytes(),
            "cut at byte {cut}"
        );
    }
}

fn invalid_utf8_comes_back_byte_for_byte(model: Model) {
    let server = TestServer::start_model(model);
    let input: &[u8] = b"ab\xFF\xC0\xAF cd \xED\xA0\x80 \x80 ef \xE2\x82";
    assert_eq!(tcp_reply(server.addr, input), b"AB\xFF\xC0\xAF CD \xED\xA0\x80 \x80 EF \xE2\x82");
    assert_eq!(tcp_reply(server.addr, b"still here"), b"STILL HERE");
    server.stats_eventually("9 invalid bytes", |s| s.invalid_bytes == 9);
}

fn ascii_encoding_is_binary_safe(model: Model) {
    let server = TestServer::start(Config {
        model,
        encoding: upcase::transform::Encoding::Ascii,
        ..Config::default()
    });
    let input: Vec<u8> = (0..=255).collect();
    let expected: Vec<u8> = input.iter().map(u8::to_ascii_uppercase).collect();
    assert_eq!(tcp_reply(server.addr, &input), expected);
}

/// 100 MiB through the server while reading the reply at the same time; memory stays bounded
/// because the server reads only as fast as we read.
fn stream_of_100_mib(model: Model) {
    const TOTAL: usize = 100 << 20;
    let units = TOTAL / UNIT.len();
    let server = TestServer::start_model(model);
    let stream = connect(server.addr);
    let writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || send_units(writer, units));
    let mut reader = stream;
    let mut checker = ReplyChecker::default();
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let n = reader.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        checker.check(&buffer[..n]);
    }
    sender.join().unwrap().unwrap();
    assert_eq!(checker.received, units * UNIT_UPPER.len());
}

fn two_hundred_concurrent_clients(model: Model) {
    let server = TestServer::start_model(model);
    let addr = server.addr;
    let clients: Vec<_> = (0..200)
        .map(|i| {
            thread::spawn(move || {
                assert_tcp_uppercases(addr, &format!("client number {i}, straße"));
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    server.stats_eventually("200 connections", |s| s.tcp_accepted == 200);
}

/// 2,000 clients connect at the same instant (the lecture's backlog of 128 would make most of
/// them retry their SYN for seconds); each must be answered.
fn two_thousand_connections_at_once(model: Model) {
    let server = TestServer::start(Config { model, ..Config::default() });
    let addr = server.addr;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let started = Instant::now();
    let answered = runtime.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tasks: Vec<_> = (0..2000)
            .map(|i| {
                tokio::spawn(async move {
                    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                    let message = format!("connection {i}");
                    stream.write_all(message.as_bytes()).await.unwrap();
                    stream.shutdown().await.unwrap();
                    let mut reply = Vec::new();
                    stream.read_to_end(&mut reply).await.unwrap();
                    assert_eq!(reply, message.to_uppercase().as_bytes());
                })
            })
            .collect();
        let mut answered = 0;
        for task in tasks {
            tokio::time::timeout(PATIENCE, task).await.expect("a client waited too long").unwrap();
            answered += 1;
        }
        answered
    });
    assert_eq!(answered, 2000);
    // Not a timing test, but SYN retries start at 1 s: a backlog that is too short shows up here.
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
}

/// The server closes first at shutdown, leaving its side of each connection in TIME_WAIT; a
/// restart on the same port must still bind at once (SO_REUSEADDR).
fn restart_on_same_port_after_a_burst(model: Model) {
    let config = Config { model, grace: Duration::from_millis(100), ..Config::default() };
    let server = TestServer::start(config.clone());
    let addr = server.addr;
    let mut open = Vec::new();
    for i in 0..50 {
        let mut stream = connect(addr);
        stream.write_all(format!("burst {i}").as_bytes()).unwrap();
        let expected = format!("BURST {i}");
        assert_eq!(read_exactly(&mut stream, expected.len()), expected.as_bytes());
        if model != Model::Iterative {
            open.push(stream);
        }
    }
    let stats = server.shutdown();
    assert_eq!(stats.tcp_accepted, 50);
    let restarted = TestServer::start_on(&addr.to_string(), config);
    assert_eq!(restarted.addr, addr);
    assert_eq!(tcp_reply(addr, b"back again"), b"BACK AGAIN");
    drop(open);
}

fn idle_connection_is_closed(model: Model) {
    let config = Config { model, idle_timeout: Some(Duration::from_millis(300)), ..Config::default() };
    let server = TestServer::start(config);
    let mut silent = connect(server.addr);
    let started = Instant::now();
    let mut buffer = [0; 16];
    assert_eq!(silent.read(&mut buffer).unwrap(), 0, "server closes the idle connection");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(tcp_reply(server.addr, b"after"), b"AFTER");
    server.stats_eventually("one idle timeout", |s| s.tcp_idle_timeouts == 1);
}

fn shutdown_lets_a_stream_in_flight_finish(model: Model) {
    let config = Config { model, grace: Duration::from_secs(10), ..Config::default() };
    let server = TestServer::start(config);
    let mut stream = connect(server.addr);
    stream.write_all(b"before the signal ").unwrap();
    assert_eq!(read_exactly(&mut stream, 18), b"BEFORE THE SIGNAL ");
    let finisher = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        stream.write_all(b"and after it").unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).unwrap();
        rest
    });
    let started = Instant::now();
    let stats = server.shutdown();
    assert_eq!(finisher.join().unwrap(), b"AND AFTER IT");
    assert!(started.elapsed() < Duration::from_secs(10), "shutdown waited for the stream, not the grace");
    assert_eq!(stats.tcp_closed_at_shutdown, 0);
}

fn shutdown_closes_idle_connections_after_grace(model: Model) {
    let config = Config { model, grace: Duration::from_millis(200), ..Config::default() };
    let server = TestServer::start(config);
    let mut idle = connect(server.addr);
    idle.write_all(b"x").unwrap();
    assert_eq!(read_exactly(&mut idle, 1), b"X");
    let started = Instant::now();
    let stats = server.shutdown();
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert_eq!(stats.tcp_closed_at_shutdown, 1);
    let mut buffer = [0; 4];
    assert!(matches!(idle.read(&mut buffer), Ok(0) | Err(_)), "connection closed");
}

/// A silent first client blocks an iterative server but not the concurrent ones.
fn silent_client_blocks_only_the_iterative_model(model: Model) {
    let server = TestServer::start_model(model);
    let silent = connect(server.addr);
    let mut second = connect(server.addr);
    second.write_all(b"second").unwrap();
    second.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut reply = [0; 6];
    let answered = second.read_exact(&mut reply).is_ok();
    assert_eq!(answered, model != Model::Iterative, "{model}");
    drop(silent);
    if model == Model::Iterative {
        second.set_read_timeout(Some(PATIENCE)).unwrap();
        second.read_exact(&mut reply).unwrap();
    }
    assert_eq!(&reply, b"SECOND", "{model}");
}

/// The iterative model holds one connection at a time, so it has no limit to pass.
fn connections_over_the_limit_are_closed_and_the_rest_still_served(model: Model) {
    let server = TestServer::start(Config { model, max_connections: 5, ..Config::default() });
    let mut held: Vec<_> = (0..5).map(|_| connect(server.addr)).collect();
    // Make sure the five are accepted before the sixth arrives.
    for stream in &mut held {
        stream.write_all(b"a").unwrap();
        assert_eq!(read_exactly(stream, 1), b"A");
    }
    let mut extra = connect(server.addr);
    let mut buffer = [0; 1];
    let _ = extra.write_all(b"b");
    assert!(matches!(extra.read(&mut buffer), Ok(0) | Err(_)), "{model}: sixth connection closed");
    for stream in &mut held {
        stream.write_all(b"c").unwrap();
        assert_eq!(read_exactly(stream, 1), b"C", "{model}");
    }
    server.stats_eventually("one rejected connection", |s| s.tcp_rejected_over_limit == 1);
}
