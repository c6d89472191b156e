//! The admin endpoint's HTTP/1.1 server (hyper, HTTP/1 only) and its four routes.
//!
//! Everything a client controls is bounded by [`AdminConfig`]: how many connections are open
//! (one more is closed as soon as it is accepted), how large the request head may be (431), how
//! long the head may take to arrive (a slowloris client is closed), how many requests one
//! connection may make and how long it may stay open. Request bodies are never read: a request
//! with one is answered and the connection closed. Malformed requests get hyper's 400 and a
//! close. This module must never read a request body, answer anything but GET and HEAD, or make
//! a request wait for the service.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Body, Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::metrics::{self, Exporter};
use super::status::{StatusCache, PAGE};
use super::AdminConfig;
use crate::server::stats::LogThrottle;
use crate::server::Observer;

/// What every admin connection shares.
#[derive(Debug)]
struct Shared {
    config: AdminConfig,
    observer: Observer,
    exporter: Exporter,
    status: Arc<StatusCache>,
    refused_log: LogThrottle,
    error_log: LogThrottle,
}

/// Accepts admin connections until the runtime shuts down, each on its own task.
pub(super) async fn serve(listener: TcpListener, observer: Observer, config: AdminConfig) {
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let shared = Arc::new(Shared {
        exporter: Exporter::new(observer.clone()),
        status: Arc::new(StatusCache::new(observer.clone())),
        observer,
        config,
        refused_log: LogThrottle::default(),
        error_log: LogThrottle::default(),
    });
    let mut consecutive_errors: u32 = 0;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => {
                consecutive_errors = 0;
                accepted
            }
            Err(e) => {
                // Out of descriptors, say: wait for some to close, as the service's listeners do.
                consecutive_errors = consecutive_errors.saturating_add(1);
                if let Some(held_back) = shared.error_log.allow() {
                    tracing::warn!(error = %e, held_back, "admin endpoint: accept failed; retrying");
                }
                let pause = 10u64.saturating_mul(1 << consecutive_errors.min(7)).min(1000);
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            if let Some(held_back) = shared.refused_log.allow() {
                let limit = shared.config.max_connections;
                tracing::warn!(client = %peer, limit, held_back, "admin endpoint: connection limit reached, closing a new connection");
            }
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            serve_connection(stream, &shared).await;
            drop(permit);
        });
    }
}

/// Serves one admin connection within its limits.
async fn serve_connection(stream: TcpStream, shared: &Arc<Shared>) {
    let config = &shared.config;
    let served = AtomicU32::new(0);
    let service = hyper::service::service_fn(|request: Request<Incoming>| {
        let last =
            served.fetch_add(1, Ordering::Relaxed).saturating_add(1) >= config.max_requests_per_connection;
        let shared = Arc::clone(shared);
        async move { Ok::<_, Infallible>(respond(&request, &shared, last).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_header_size(config.max_head_bytes)
        .max_buf_size(config.max_head_bytes.max(MINIMUM_BUFFER))
        .max_headers(config.max_headers)
        .serve_connection(TokioIo::new(stream), service);
    // A connection past its time is dropped, closing it; its errors (a client gone, a malformed
    // request already answered 400) are the client's business.
    if let Ok(Err(e)) = tokio::time::timeout(config.max_connection_time, connection).await {
        tracing::debug!(error = %e, "admin connection ended");
    }
}

/// hyper's smallest allowed read buffer.
const MINIMUM_BUFFER: usize = 8192;

/// The answer to one request; `last`: close the connection after it.
async fn respond(request: &Request<Incoming>, shared: &Arc<Shared>, last: bool) -> Response<Full<Bytes>> {
    let mut response = if request.method() == Method::GET || request.method() == Method::HEAD {
        route(request.uri().path(), shared).await
    } else {
        let mut refused = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        refused.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        refused
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // A body is never read; closing is how it is not read.
    if last || !request.body().is_end_stream() {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn route(path: &str, shared: &Arc<Shared>) -> Response<Full<Bytes>> {
    match path {
        "/" => {
            let mut page =
                body(StatusCode::OK, "text/html; charset=utf-8", Bytes::from_static(PAGE.as_bytes()));
            page.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
                ),
            );
            page
        }
        "/status.json" => body(StatusCode::OK, "application/json", shared.status.get().await),
        "/metrics" => match shared.exporter.render() {
            Ok(text) => body(StatusCode::OK, metrics::CONTENT_TYPE, Bytes::from(text)),
            Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the metrics\n"),
        },
        "/health" if shared.observer.is_draining() => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        "/health" => match shared.observer.stuck_worker(shared.config.stuck_after) {
            Some((worker, busy)) => {
                let message = format!("worker {worker} stuck in one turn for {} ms\n", busy.as_millis());
                body(StatusCode::SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", Bytes::from(message))
            }
            None => text(StatusCode::OK, "serving\n"),
        },
        _ => text(StatusCode::NOT_FOUND, "not found: try /, /metrics, /health or /status.json\n"),
    }
}

fn text(status: StatusCode, message: &'static str) -> Response<Full<Bytes>> {
    body(status, "text/plain; charset=utf-8", Bytes::from_static(message.as_bytes()))
}

fn body(status: StatusCode, content_type: &'static str, bytes: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
