//! Round-trip time of one request against an in-process server, for each concurrency model:
//! UDP request/response, TCP request/response on a kept-open connection, and the lecture's TCP
//! pattern of a new connection per request. One client, loopback, a short ASCII sentence.
//! Run with `cargo bench --bench round_trip`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use upcase::server::{self, BindOptions, Config, Model, Server};

const SENTENCE: &[u8] = b"input lowercase sentence";

fn start(runtime: &tokio::runtime::Runtime, model: Model) -> (Server, SocketAddr) {
    let options = BindOptions {
        listen: vec!["127.0.0.1:0".into()],
        tcp: true,
        udp: true,
        backlog: 4096,
        reuse_port: false,
    };
    let sockets = server::bind(&options).unwrap();
    let _entered = runtime.enter();
    let server = Server::start(sockets, Config { model, ..Config::default() }).unwrap();
    let addr = server.local_addrs()[0].1;
    (server, addr)
}

fn round_trips(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut group = c.benchmark_group("round_trip");
    let mut reply = [0u8; 64];
    for model in Model::ALL {
        let (server, addr) = start(&runtime, model);

        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.connect(addr).unwrap();
        group.bench_function(BenchmarkId::new("udp_rr", model), |b| {
            b.iter(|| {
                udp.send(SENTENCE).unwrap();
                udp.recv(&mut reply).unwrap()
            })
        });

        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.set_nodelay(true).unwrap();
        group.bench_function(BenchmarkId::new("tcp_rr", model), |b| {
            b.iter(|| {
                tcp.write_all(SENTENCE).unwrap();
                tcp.read_exact(&mut reply[..SENTENCE.len()]).unwrap();
            })
        });
        drop(tcp);

        group.bench_function(BenchmarkId::new("tcp_crr", model), |b| {
            b.iter(|| {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.write_all(SENTENCE).unwrap();
                stream.shutdown(Shutdown::Write).unwrap();
                let mut all = Vec::with_capacity(SENTENCE.len());
                stream.read_to_end(&mut all).unwrap();
                all
            })
        });
        runtime.block_on(server.shutdown());
    }
    group.finish();
}

criterion_group!(benches, round_trips);
criterion_main!(benches);
