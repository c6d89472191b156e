//! `GET /status.json`, what the status page (`GET /`, `PAGE`) shows and refreshes every second:
//! the listening sockets, the open TCP connections with their 4-tuples, ages and bytes, and the
//! counters.
//!
//! A status is the one admin answer whose cost grows with the server's load, so it is bounded
//! twice: at most [`MAX_LISTED`] connections are listed (the oldest, with the total), and a status
//! is built at most once per `FRESH_FOR`, on a blocking-pool thread rather than the thread that
//! answers admin requests; requests in between
//! get the last one. This module must never list every connection, nor build a status per request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use serde::Serialize;

use crate::server::observe::Connections;
use crate::server::Observer;

/// The status page: one HTML file with its script and style inline, no outside assets.
pub(crate) const PAGE: &str = include_str!("page.html");

/// Most connections one status lists: the oldest, which are the ones an operator asks about.
pub const MAX_LISTED: usize = 500;

/// How long a status is served again before a new one is built: the page polls every second,
/// and a hundred pages polling cost no more than one.
pub(crate) const FRESH_FOR: Duration = Duration::from_millis(200);

#[derive(Serialize)]
struct Status {
    version: &'static str,
    model: &'static str,
    uptime_ms: u64,
    draining: bool,
    listening: Vec<Listening>,
    connection_limit: usize,
    listed_at_most: usize,
    connections: Connections,
    counters: Counters,
}

/// The counters as one JSON object, in the order the server declares them (the order a
/// `serde_json::Map` would lose).
struct Counters(Vec<(&'static str, u64)>);

impl Serialize for Counters {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().copied())
    }
}

/// A welcoming socket.
#[derive(Serialize)]
struct Listening {
    transport: crate::net::Transport,
    address: std::net::SocketAddr,
}

/// Builds a status now: the one pass over the connection set and a few system calls per listed
/// connection.
fn build(observer: &Observer) -> Bytes {
    let status = Status {
        version: env!("CARGO_PKG_VERSION"),
        model: observer.config().model.name(),
        uptime_ms: u64::try_from(observer.uptime().as_millis()).unwrap_or(u64::MAX),
        draining: observer.is_draining(),
        listening: observer
            .listening()
            .iter()
            .map(|&(transport, address)| Listening { transport, address })
            .collect(),
        connection_limit: observer.connection_limit(),
        listed_at_most: MAX_LISTED,
        connections: observer.connections(MAX_LISTED),
        counters: Counters(observer.stats().fields()),
    };
    // Serialising plain data to a Vec cannot fail; an empty object would tell the page nothing.
    Bytes::from(serde_json::to_vec(&status).unwrap_or_else(|_| b"{}".to_vec()))
}

/// The last status built, shared by every admin connection.
#[derive(Debug)]
pub(crate) struct StatusCache {
    observer: Observer,
    last: tokio::sync::Mutex<Option<(Instant, Bytes)>>,
}

impl StatusCache {
    pub(crate) fn new(observer: Observer) -> Self {
        Self { observer, last: tokio::sync::Mutex::new(None) }
    }

    /// A status at most `FRESH_FOR` old. Requests that arrive while one is being built wait
    /// for it rather than build their own.
    pub(crate) async fn get(self: &Arc<Self>) -> Bytes {
        let mut last = self.last.lock().await;
        if let Some((built, status)) = last.as_ref() {
            if built.elapsed() < FRESH_FOR {
                return status.clone();
            }
        }
        let observer = self.observer.clone();
        // Off the worker threads: listing connections makes system calls, and the workers serve.
        let status = tokio::task::spawn_blocking(move || build(&observer))
            .await
            .unwrap_or_else(|_| Bytes::from_static(b"{}"));
        *last = Some((Instant::now(), status.clone()));
        status
    }
}
