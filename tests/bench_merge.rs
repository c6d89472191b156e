//! `upcase bench merge`: runs made at the same time by separate bench processes (as the pods of
//! `deploy/kubernetes/bench-job.yaml` make them) combine into one report whose totals add up
//! exactly and whose percentiles are those of the merged histograms; runs that measured
//! different things are refused, saying what differs.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread;

use hdrhistogram::Histogram;
use serde_json::Value;
use support::bench::{bench, histogram, number, temp_file};
use support::{serve_upcase, upcase, PATIENCE};

/// Runs `upcase bench ARGS` once per element of `runs`, all at once; writes each report to a
/// file and returns the files and the reports.
fn at_once(runs: &[Vec<String>]) -> Vec<(PathBuf, Value)> {
    let reports: Vec<Value> = thread::scope(|scope| {
        let running: Vec<_> = runs
            .iter()
            .map(|args| {
                scope.spawn(move || {
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    let out = bench(&args);
                    assert!(out.status.code().is_some_and(|c| c <= 1), "{args:?}: {}", out.stderr);
                    serde_json::from_slice::<Value>(&out.stdout).unwrap()
                })
            })
            .collect();
        running.into_iter().map(|run| run.join().unwrap()).collect()
    });
    reports
        .into_iter()
        .enumerate()
        .map(|(i, report)| {
            let path = temp_file(&format!("run-{i}.json"));
            std::fs::write(&path, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
            (path, report)
        })
        .collect()
}

/// `upcase bench merge FILES --json`: the merged report.
fn merge(files: &[&Path], extra: &[&str]) -> Value {
    let args: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    let out = bench(&[&["merge", "--json"], &args[..], extra].concat());
    assert!(out.status.code().is_some_and(|c| c <= 1), "{}\n{}", out.text(), out.stderr);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The merged report's totals are the sums of the runs', its histogram their histograms'
/// sum, its percentiles that sum's, and its duration the time they all ran.
fn assert_merged_exactly(runs: &[(PathBuf, Value)], merged: &Value) {
    let sum = |path: &str| runs.iter().map(|(_, r)| number(r, path)).sum::<f64>();
    for path in ["/requests", "/errors/total", "/errors/wrong", "/bytes_sent", "/bytes_received", "/unsent"] {
        assert_eq!(number(merged, path), sum(path), "{path}: {merged:#}");
    }
    assert_eq!(number(merged, "/parameters/conns"), sum("/parameters/conns"));
    let mut total = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
    for (_, run) in runs {
        total.add(histogram(run)).unwrap();
    }
    assert_eq!(histogram(merged), total, "the merged histogram is the sum of the runs'");
    assert_eq!(total.len() as f64, number(merged, "/requests"));
    for (key, quantile) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
        let expected = total.value_at_quantile(quantile) as f64;
        assert_eq!(number(merged, &format!("/latency_us/{key}")), expected, "{key}: {merged:#}");
    }
    assert_eq!(number(merged, "/latency_us/max"), total.max() as f64);
    assert_eq!(number(merged, "/latency_us/min"), total.min() as f64);
    let overlap = number(merged, "/merged/overlap_s");
    let shortest = runs.iter().map(|(_, r)| number(r, "/parameters/duration_s")).fold(f64::MAX, f64::min);
    assert!(0.0 < overlap && overlap <= shortest + 1e-6, "{merged:#}");
    assert_eq!(number(merged, "/parameters/duration_s"), overlap);
    let rate = number(merged, "/requests") / overlap;
    assert!((number(merged, "/requests_per_s") - rate).abs() < 1e-6 * rate, "{merged:#}");
    assert_eq!(merged["merged"]["runs"].as_array().unwrap().len(), runs.len());
}

#[test]
fn three_runs_at_once_with_different_flows_merge_exactly() {
    let server = serve_upcase(&["--tcp"]);
    let to = server.tcp().to_string();
    let runs: Vec<Vec<String>> = (1..=3)
        .map(|conns| {
            ["--json", "--to", &to, "--conns", &conns.to_string(), "--duration", "400ms"]
                .map(str::to_owned)
                .to_vec()
        })
        .collect();
    let runs = at_once(&runs);
    let files: Vec<&Path> = runs.iter().map(|(path, _)| path.as_path()).collect();
    let merged = merge(&files, &[]);
    assert_merged_exactly(&runs, &merged);
    assert_eq!(merged["ok"], true, "{merged:#}");

    // The text form says what was merged; --percentiles recomputes from the histogram.
    let args: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    let out = bench(&[&["merge"], &args[..], &["--percentiles", "75,99.99"]].concat());
    out.assert_success("upcase bench merge");
    let text = out.text();
    assert!(text.contains("merged        3 runs, loading together for"), "{text}");
    assert!(text.contains("6 flows on 3 threads") && text.contains("p99.99"), "{text}");
    let p75 = histogram(&merged).value_at_quantile(0.75);
    let row = text.lines().find(|l| l.starts_with("latency (µs)")).unwrap();
    assert!(row.split_whitespace().any(|cell| cell.replace(',', "") == p75.to_string()), "p75 {p75}: {text}");
    for (path, _) in &runs {
        let _ = std::fs::remove_file(path);
    }
}

#[test]
fn the_kubernetes_job_runs_here_and_its_pods_reports_merge() {
    let Some(job) = kubernetes_job() else { return };
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["spec"]["completionMode"], "Indexed", "one pod per index");
    let pods = job["spec"]["completions"].as_u64().unwrap();
    assert_eq!(job["spec"]["parallelism"], job["spec"]["completions"], "all pods load at once");
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["env"][0]["name"], "TARGET");
    let command: Vec<String> =
        container["command"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
    assert_eq!(command[..3], ["upcase", "bench", "--json"], "{command:?}");

    // The pods' command, here: each pod a process, the target and the length made local.
    let server = serve_upcase(&["--tcp"]);
    let mut args: Vec<String> = command[2..].to_vec();
    let at = |flag: &str| args.iter().position(|a| a == flag).unwrap_or_else(|| panic!("no {flag}")) + 1;
    let (to, duration) = (at("--to"), at("--duration"));
    assert_eq!(args[to], "$(TARGET)");
    args[to] = server.tcp().to_string();
    args[duration] = "300ms".to_owned();
    let runs = at_once(&vec![args; pods as usize]);
    let files: Vec<&Path> = runs.iter().map(|(path, _)| path.as_path()).collect();
    let merged = merge(&files, &[]);
    assert_merged_exactly(&runs, &merged);
    for (path, _) in &runs {
        let _ = std::fs::remove_file(path);
    }
}

/// `deploy/kubernetes/bench-job.yaml`, read by a real YAML parser (Python's), as JSON; `None`
/// (with a note) when PyYAML is missing and not required.
fn kubernetes_job() -> Option<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/bench-job.yaml");
    let script = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))";
    let mut command = support::python3();
    command.args(["-c", script]).arg(&path).stdin(Stdio::null());
    let out = support::run("python3 yaml", command, b"", PATIENCE);
    if out.stderr.contains("No module named 'yaml'") {
        assert!(std::env::var_os("UPCASE_REQUIRE_TOOLS").is_none(), "PyYAML (python3-yaml) is required here");
        eprintln!("PyYAML is not installed; skipping (install python3-yaml, or set UPCASE_REQUIRE_TOOLS)");
        return None;
    }
    out.assert_success("reading the Job's YAML");
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn runs_that_measured_different_things_are_refused() {
    let server = serve_upcase(&["--tcp"]);
    let to = server.tcp().to_string();
    let stream = temp_file("stream.ndjson");
    let mut command = upcase();
    command.args(["bench", "--json-stream", "--to", &to, "--duration", "200ms"]);
    let out = support::run("upcase bench --json-stream", command, b"", PATIENCE);
    out.assert_success("upcase bench --json-stream");
    std::fs::write(&stream, &out.stdout).unwrap();
    let end: Value = serde_json::from_str(out.text().lines().last().unwrap()).unwrap();

    // A --json-stream file merges like a --json one: with itself, it doubles.
    let doubled = merge(&[&stream, &stream], &[]);
    assert_eq!(number(&doubled, "/requests"), 2.0 * number(&end, "/requests"));

    let changed = |what: &str, change: &dyn Fn(&mut Value)| {
        let mut other = end.clone();
        change(&mut other);
        let path = temp_file(&format!("changed-{}.json", what.replace(' ', "-")));
        std::fs::write(&path, serde_json::to_vec(&other).unwrap()).unwrap();
        let out = bench(&["merge", stream.to_str().unwrap(), path.to_str().unwrap()]);
        let _ = std::fs::remove_file(&path);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", out.stderr);
        assert!(out.stdout.is_empty() && out.stderr.lines().count() == 1, "{what}: {}", out.stderr);
        assert!(out.stderr.contains(what), "{what}: {}", out.stderr);
    };
    changed("another target", &|r| r["parameters"]["target"] = "10.0.0.1:12000".into());
    changed("another transport (udp, not tcp)", &|r| r["parameters"]["transport"] = "udp".into());
    changed("another pattern (crr, not rr)", &|r| r["parameters"]["pattern"] = "crr".into());
    changed("another request size (100 bytes, not 64 bytes)", &|r| r["parameters"]["size"] = 100.into());
    changed("another text (unicode, not ascii)", &|r| r["parameters"]["text"] = "unicode".into());
    changed("another encoding (latin1, not utf-8)", &|r| r["parameters"]["encoding"] = "latin1".into());
    changed("another client style", &|r| r["parameters"]["clients"] = "independent".into());
    changed("another loop (open loop, not closed loop)", &|r| r["parameters"]["rate"] = 100.0.into());
    changed("never loaded the server at the same time", &|r| {
        r["started_at"] = "2001-01-01T00:00:00Z".into();
        r["ended_at"] = "2001-01-01T00:00:01Z".into();
    });
    changed("no latency histogram", &|r| {
        r.as_object_mut().unwrap().remove("histogram");
    });
    changed("not a report of `upcase bench --json`", &|r| *r = Value::from("nonsense"));
    let _ = std::fs::remove_file(&stream);
}
