//! Shared by the `upcase bench` tests for engineers (`bench_live`, `bench_merge`,
//! `bench_report`, `bench_thresholds`, `bench_independent`): running the bench as a child
//! process, reading its JSON, and the wrong and slow servers it is tested against ([`peers`]).
//! Every run is bounded by the support module's patience.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub(crate) mod peers;

use std::io::Cursor;
use std::path::PathBuf;

use base64::Engine as _;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use serde_json::Value;

use crate::support::{run, upcase, Output, PATIENCE};

/// Runs `upcase bench ARGS...`, bounded.
pub(crate) fn bench(args: &[&str]) -> Output {
    let mut command = upcase();
    command.arg("bench").args(args);
    run("upcase bench", command, b"", PATIENCE)
}

/// Runs `upcase bench --json ARGS...` and parses its one JSON object.
pub(crate) fn bench_json(args: &[&str]) -> (Output, Value) {
    let out = bench(&[&["--json"], args].concat());
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {:?}; stderr:\n{}", out.text(), out.stderr));
    (out, report)
}

/// The number at `path` (a JSON pointer) of `report`.
pub(crate) fn number(report: &Value, path: &str) -> f64 {
    report
        .pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {path} in {report:#}"))
}

/// Exit 0, correct replies, no error of any kind.
pub(crate) fn assert_clean(out: &Output, report: &Value) {
    assert_eq!(out.status.code(), Some(0), "{report:#}\nstderr:\n{}", out.stderr);
    assert_eq!(report["ok"], true, "{report:#}");
    assert!(number(report, "/requests") > 0.0, "{report:#}");
    assert_eq!(number(report, "/errors/total"), 0.0, "{report:#}");
}

/// A path in the temporary directory, unique to this test process and `name`; removed by the
/// caller.
pub(crate) fn temp_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("upcase-{}-{name}", std::process::id()))
}

/// The latency histogram a report carries, decoded here, independently of upcase.
pub(crate) fn histogram(report: &Value) -> Histogram<u64> {
    let text = report["histogram"].as_str().unwrap_or_else(|| panic!("no histogram in {report:#}"));
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).unwrap();
    Deserializer::new().deserialize(&mut Cursor::new(bytes)).unwrap()
}
