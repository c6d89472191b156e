//! What `upcase bench` hands over after a run: `--percentiles` in the table, the JSON and the
//! plot, and `--report FILE.html`, one self-contained page, rendered by a real headless browser
//! (Debian's `chromium`) and checked for the figures of the run, with a hostile server's reply
//! shown as text, never as markup.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread;

use serde_json::Value;
use support::bench::{bench, bench_json, histogram, number, temp_file};
use support::{dump_dom, has_chromium, serve_upcase};
use upcase::bench::percentile_label;
use upcase::format::thousands;

#[test]
fn percentiles_are_in_the_table_the_json_and_the_plot() {
    let server = serve_upcase(&["--tcp"]);
    let to = server.tcp().to_string();
    let plot = temp_file("percentiles.svg");
    let args =
        ["--to", &to, "--duration", "300ms", "--percentiles", "99.9,50,75", "--plot", plot.to_str().unwrap()];
    let (out, report) = bench_json(&args);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let svg = std::fs::read_to_string(&plot).unwrap();
    let _ = std::fs::remove_file(&plot);
    assert_eq!(report["parameters"]["percentiles"], serde_json::json!([50.0, 75.0, 99.9]), "sorted");
    let decoded = histogram(&report);
    let listed = report["latency_us"]["percentiles"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    for (entry, percentile) in listed.iter().zip([50.0, 75.0, 99.9]) {
        assert_eq!(number(entry, "/percentile"), percentile);
        let expected = decoded.value_at_quantile(percentile / 100.0);
        assert_eq!(number(entry, "/us"), expected as f64, "{entry:#}");
        // 300 ms of replies reach 99.9% when there are over 1,000 of them.
        if percentile < 99.0 || decoded.len() >= 1000 {
            let label = format!(">{} {} µs</text>", percentile_label(percentile), thousands(expected));
            assert!(svg.contains(&label), "{label} in the plot:\n{svg}");
        }
    }
    let out = bench(&["--to", &to, "--duration", "200ms", "--percentiles", "50,75"]);
    let text = out.text();
    let head = text.lines().find(|line| line.contains("p75")).unwrap_or_else(|| panic!("{text}"));
    assert!(head.contains("p50") && head.contains("max") && !head.contains("p99"), "{text}");
    for bad in ["50,101", "fifty", ""] {
        let out = bench(&["--to", &to, "--percentiles", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", out.stderr);
        assert!(out.stderr.contains("--percentiles"), "{bad}: {}", out.stderr);
    }
}

/// Runs a bench with `--report` and `--json`; returns the page and the JSON report.
fn report_page(args: &[&str]) -> (String, Value) {
    let page = temp_file(&format!("report-{}.html", args.len()));
    let (out, report) = bench_json(&[args, &["--report", page.to_str().unwrap()]].concat());
    assert!(out.status.code().is_some_and(|c| c != 2), "{}", out.stderr);
    let html = std::fs::read_to_string(&page).unwrap();
    let _ = std::fs::remove_file(&page);
    (html, report)
}

#[test]
fn the_html_report_is_one_self_contained_page_with_the_run_in_it() {
    let server = serve_upcase(&["--tcp"]);
    let to = server.tcp().to_string();
    let args = ["--to", &to, "--conns", "2", "--rate", "2000", "--duration", "500ms", "--interval", "100ms"];
    let (html, report) = report_page(&[&args[..], &["--fail-if", "rate<10"]].concat());
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    // Nothing is fetched: no link, no source, no stylesheet or font from elsewhere.
    for outside in ["src=", "href=", "url(", "@import", "https:"] {
        assert!(!html.contains(outside), "{outside} in the page");
    }
    assert_eq!(html.matches("http:").count(), html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count());
    assert_eq!(html.matches("<svg").count(), 3, "the distribution, requests/s and p99 over time");
    for figure in [
        thousands(number(&report, "/requests") as u64),
        thousands(number(&report, "/latency_us/p99") as u64),
        thousands(number(&report, "/uncorrected_latency_us/p99") as u64),
        "from each request's intended send time".to_owned(),
        "requests/s over time".to_owned(),
        "p99 latency over time".to_owned(),
        "rate&lt;10".to_owned(),
    ] {
        assert!(html.contains(&figure), "{figure:?} not in the page");
    }
    // The JSON report rides along, for scripts: the same as --json printed.
    let embedded =
        html.split("id=\"upcase-report\">").nth(1).and_then(|rest| rest.split("</script>").next()).unwrap();
    let embedded: Value = serde_json::from_str(embedded).unwrap();
    assert_eq!(embedded, report);
}

/// A TCP server whose every reply is markup, to see that a page shows it as text.
fn markup_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut buffer = [0; 4096];
                while let Ok(1..) = stream.read(&mut buffer) {
                    if stream.write_all(b"<script>document.title='pwned'</script>").is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn chromium_renders_the_report_with_the_figures_of_the_run() {
    if !has_chromium() {
        return;
    }
    let server = serve_upcase(&["--tcp"]);
    let to = server.tcp().to_string();
    let page = temp_file("rendered.html");
    let args =
        ["--to", &to, "--duration", "500ms", "--interval", "100ms", "--report", page.to_str().unwrap()];
    let (out, report) = bench_json(&args);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let dom = dump_dom(&format!("file://{}", page.display()));
    assert!(dom.contains("ok: every request got its correct reply"), "{dom}");
    for figure in [
        thousands(number(&report, "/requests") as u64),
        thousands(number(&report, "/requests_per_s").round() as u64),
        thousands(number(&report, "/latency_us/p50") as u64),
        thousands(number(&report, "/latency_us/p99") as u64),
    ] {
        assert!(dom.contains(&format!(">{figure}</td>")), "{figure} not in a cell of the rendered page");
    }
    assert_eq!(dom.matches("<svg").count(), 3, "{dom}");
    assert!(dom.matches("<polyline").count() >= 3, "{dom}");

    // A wrong server's reply is text on the page, never a script that runs.
    let to = markup_server().to_string();
    let (out, _) = bench_json(&["--to", &to, "--duration", "200ms", "--report", page.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let dom = dump_dom(&format!("file://{}", page.display()));
    let _ = std::fs::remove_file(&page);
    assert!(dom.contains("PROBLEM:") && dom.contains("wrong replies"), "{dom}");
    assert!(dom.contains("&lt;script&gt;document.title"), "{dom}");
    assert_eq!(dom.matches("<script").count(), 1, "only the JSON data block: {dom}");
    assert!(!dom.contains("<title>pwned"), "{dom}");
}
