//! `GET /metrics`: the server's counters, gauges and histograms in the Prometheus text format
//! (version 0.0.4), through the official `prometheus-client` crate.
//!
//! Nothing is counted here: a scrape reads the server's own counters and histograms, and this
//! process's CPU time, memory and descriptors from `/proc`, at the moment it is asked, so the
//! exporter adds no work to serving. Names follow Prometheus' conventions: the `upcase_` prefix,
//! base units in the name (`_bytes`, `_seconds`), `_total` on counters. Every counter of
//! [`upcase::server::Stats`](crate::server::Stats) is exported under the name [`metric_name`]
//! gives it; a new counter appears without a change here.

use std::fmt::{self, Write};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::bench::process::{cpu_time, open_descriptors, resident_kib, threads, Process};
use crate::server::histogram::HistogramSnapshot;
use crate::server::Observer;

/// The `Content-Type` of what [`Exporter::render`] writes.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The registry of one server's metrics, built once.
#[derive(Debug)]
pub(crate) struct Exporter {
    registry: Registry,
}

impl Exporter {
    pub(crate) fn new(observer: Observer) -> Self {
        let mut registry = Registry::default();
        registry.register(
            "upcase_build",
            "The version of upcase serving",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register_collector(Box::new(ServerCollector { observer }));
        registry.register_collector(Box::new(ProcessCollector));
        Self { registry }
    }

    /// Every metric, read now, as Prometheus text.
    pub(crate) fn render(&self) -> Result<String, fmt::Error> {
        let mut text = String::with_capacity(8 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The exported name of counter `field` (before the `_total` suffix) and its unit: byte counts
/// say which way the bytes went.
pub fn metric_name(field: &str) -> (String, Option<Unit>) {
    let bytes = |base: &str| (format!("upcase_{base}"), Some(Unit::Bytes));
    match field {
        "tcp_bytes_in" => bytes("tcp_received"),
        "tcp_bytes_out" => bytes("tcp_sent"),
        "udp_bytes_in" => bytes("udp_received"),
        "udp_bytes_out" => bytes("udp_sent"),
        "invalid_bytes" => bytes("invalid"),
        other => (format!("upcase_{other}"), None),
    }
}

/// The counter that is really a gauge: it goes down when connections close.
const OPEN_CONNECTIONS_FIELD: &str = "tcp_open";

/// Reads the server's counters, gauges and histograms at each scrape.
#[derive(Debug)]
struct ServerCollector {
    observer: Observer,
}

impl Collector for ServerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let stats = self.observer.stats();
        for (field, help, value) in stats.described() {
            if field == OPEN_CONNECTIONS_FIELD {
                continue;
            }
            let (name, unit) = metric_name(field);
            encode(&mut encoder, &name, &one_line(help), unit, ConstCounter::new(value))?;
        }
        let gauge = |value: u64| ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
        let open = gauge(stats.tcp_open);
        encode(&mut encoder, "upcase_tcp_connections_open", "TCP connections open now", None, open)?;
        let limit = gauge(self.observer.connection_limit() as u64);
        let limit_help =
            "Most TCP connections open at once (--max-connections, or the threaded model's --max-threads)";
        encode(&mut encoder, "upcase_tcp_connections_limit", limit_help, None, limit)?;
        let draining = gauge(u64::from(self.observer.is_draining()));
        let draining_help = "1 from the moment a drain starts (SIGTERM): /health answers 503";
        encode(&mut encoder, "upcase_draining", draining_help, None, draining)?;
        let uptime = ConstGauge::new(self.observer.uptime().as_secs_f64());
        encode(&mut encoder, "upcase_uptime", "Time since the server started", Some(Unit::Seconds), uptime)?;

        let histograms = self.observer.histograms();
        let mut duration = encoder.encode_descriptor(
            "upcase_tcp_connection_duration",
            "How long TCP connections were open, recorded when they end (only with --admin)",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        encode_histogram(&mut duration, &histograms.tcp_duration_ms.snapshot(), 1e-3)?;
        let mut size = encoder.encode_descriptor(
            "upcase_request_size",
            "Request sizes: each UDP datagram; all a TCP client sent on its connection, recorded when it ends (only with --admin)",
            Some(&Unit::Bytes),
            MetricType::Histogram,
        )?;
        for (transport, histogram) in
            [("udp", &histograms.udp_request_bytes), ("tcp", &histograms.tcp_request_bytes)]
        {
            let labels = [("transport", transport)];
            encode_histogram(&mut size.encode_family(&labels)?, &histogram.snapshot(), 1.0)?;
        }
        Ok(())
    }
}

/// What this process costs, read from `/proc` at each scrape, under the names Prometheus' own
/// client libraries use; a figure `/proc` does not give is left out.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let me = Process::Myself;
        if let Ok(cpu) = cpu_time(me) {
            let help = "User and system CPU time spent";
            encode(
                &mut encoder,
                "process_cpu",
                help,
                Some(Unit::Seconds),
                ConstCounter::new(cpu.as_secs_f64()),
            )?;
        }
        if let Ok(kib) = resident_kib(me) {
            let bytes = ConstGauge::new(i64::try_from(kib.saturating_mul(1024)).unwrap_or(i64::MAX));
            encode(
                &mut encoder,
                "process_resident_memory",
                "Resident memory size",
                Some(Unit::Bytes),
                bytes,
            )?;
        }
        if let Ok(fds) = open_descriptors(me) {
            let fds = ConstGauge::new(i64::try_from(fds).unwrap_or(i64::MAX));
            encode(
                &mut encoder,
                "process_open_fds",
                "Open file descriptors (each TCP connection is one)",
                None,
                fds,
            )?;
        }
        if let Ok(count) = threads(me) {
            let count = ConstGauge::new(i64::try_from(count).unwrap_or(i64::MAX));
            encode(&mut encoder, "process_threads", "Threads of the process", None, count)?;
        }
        Ok(())
    }
}

fn encode(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    metric: impl EncodeMetric,
) -> fmt::Result {
    metric.encode(encoder.encode_descriptor(name, help, unit.as_ref(), metric.metric_type())?)
}

/// Writes a histogram whose bounds and sum are in units `scale` times the exported base unit.
fn encode_histogram(
    encoder: &mut prometheus_client::encoding::MetricEncoder,
    histogram: &HistogramSnapshot,
    scale: f64,
) -> fmt::Result {
    let bounds = histogram.bounds.iter().map(|&bound| bound as f64 * scale).chain([f64::INFINITY]);
    let buckets: Vec<(f64, u64)> = bounds.zip(histogram.counts.iter().copied()).collect();
    encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
        histogram.sum as f64 * scale,
        histogram.count(),
        &buckets,
        None,
    )
}

/// A counter's documentation as one line of help, without its final full stop.
fn one_line(doc: &str) -> String {
    let mut line = String::with_capacity(doc.len());
    for (i, word) in doc.split_whitespace().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        let _ = line.write_str(word);
    }
    line.trim_end_matches('.').to_owned()
}
