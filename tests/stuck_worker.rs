//! A worker of the async model stuck inside one turn of its loop (a bug that loops or blocks,
//! played here by the test-only `stall_on` trigger, which holds the worker's thread) is seen: the
//! server's observer names it, and the admin endpoint's `/health` answers 503 until it turns
//! again. (systemd's watchdog asks the same observer and skips its ping: `src/server/systemd.rs`.)
//! An idle worker, waiting for as long as nobody writes, is never stuck.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use support::admin::get;
use support::submissions::eventually;
use support::*;
use upcase::admin::AdminConfig;
use upcase::server::{Config, Model};

const STALL: Duration = Duration::from_millis(1_500);
const STUCK_AFTER: Duration = Duration::from_millis(300);

#[test]
fn a_worker_stuck_in_one_turn_fails_health_until_it_turns_again() {
    let config = Config {
        model: Model::Async,
        workers: 1,
        stall_on: Some((b"STALL".to_vec(), STALL)),
        ..Config::default()
    };
    let server = TestServer::start(config);
    let admin = server.start_admin(AdminConfig { stuck_after: STUCK_AFTER, ..AdminConfig::default() });
    let observer = server.observer();

    // Idle for longer than the limit: waiting is not being stuck.
    thread::sleep(STUCK_AFTER * 2);
    assert_eq!(observer.stuck_worker(STUCK_AFTER), None);
    let health = get(admin, "/health");
    assert_eq!((health.status, health.body.as_str()), (200, "serving\n"));

    let addr = server.addr;
    let client = thread::spawn(move || {
        let mut stream = TcpStream::connect_timeout(&addr, PATIENCE).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.write_all(b"please STALL now").unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).unwrap();
        reply
    });

    assert!(eventually(|| observer.stuck_worker(STUCK_AFTER).is_some()), "the stalled worker was never seen");
    let (worker, busy) = observer.stuck_worker(STUCK_AFTER).unwrap();
    assert_eq!(worker, 0);
    assert!(busy > STUCK_AFTER && busy < STALL + PATIENCE, "{busy:?}");
    let health = get(admin, "/health");
    assert_eq!(health.status, 503, "{}", health.body);
    assert!(health.body.starts_with("worker 0 stuck in one turn for "), "{}", health.body);

    // The turn ends: the reply goes out, and the worker is healthy again.
    assert_eq!(client.join().unwrap(), b"PLEASE STALL NOW");
    assert!(eventually(|| observer.stuck_worker(STUCK_AFTER).is_none()), "still stuck after the stall");
    assert_eq!(get(admin, "/health").status, 200);
}

#[test]
fn the_blocking_models_are_not_watched() {
    for model in [Model::Iterative, Model::Threaded] {
        let config = Config { model, stall_on: Some((b"STALL".to_vec(), STALL)), ..Config::default() };
        let server = TestServer::start(config);
        let mut stream = TcpStream::connect_timeout(&server.addr, PATIENCE).unwrap();
        stream.write_all(b"STALL").unwrap();
        thread::sleep(STUCK_AFTER * 2);
        // Busy with one client for as long as it takes is what these models do.
        assert_eq!(server.observer().stuck_worker(STUCK_AFTER), None, "{model:?}");
    }
}
