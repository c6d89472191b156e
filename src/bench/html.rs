//! `--report FILE.html`: a run as one self-contained web page to attach to a ticket or keep with
//! a CI job: the parameters, the summary, the latency distribution, requests/s and p99 over
//! time, what went wrong and any warning, with the JSON report embedded for scripts.
//!
//! One file and nothing outside it: inline CSS and SVG, no script to run, no font, image or
//! stylesheet fetched, so it shows the same offline and in ten years. Pure: a report in, a string
//! out; every text from the report (a server's wrong reply included) is escaped.

use std::fmt::Write as _;
use std::time::SystemTime;

use super::latency::{percentile_label, Latency};
use super::plot::{escape, svg};
use super::report::Report;
use super::timeline::{self, P99, RATE};
use crate::format::thousands;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222;padding:0 1em}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse}td,th{padding:.2em .8em;text-align:left;border-bottom:1px solid #eee}\
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
.ok{color:#1a7f37;font-weight:bold}.problem,.breached{color:#c62828;font-weight:bold}\
.warning{background:#fff4e5;border-left:4px solid #f0a020;padding:.5em 1em}\
pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em}svg{max-width:100%;height:auto;display:block;margin:1em 0}";

/// The HTML page of `report`.
pub fn html(report: &Report) -> String {
    let p = &report.parameters;
    let title = format!("upcase bench: {}", report.title());
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let result = match report.problems() {
        None => r#"<p class="ok" id="result">ok: every request got its correct reply</p>"#.to_owned(),
        Some(problems) => format!(r#"<p class="problem" id="result">PROBLEM: {}</p>"#, escape(&problems)),
    };
    out.push_str(&result);
    out.push('\n');
    for warning in &report.warnings {
        let _ = writeln!(out, r#"<p class="warning">warning: {}</p>"#, escape(warning));
    }
    if report.breached() {
        out.push_str("<p class=\"breached\">a --fail-if threshold was breached (see Thresholds)</p>\n");
    }

    out.push_str("<h2>Parameters</h2>\n<table id=\"parameters\">\n");
    let time = |at: Option<SystemTime>| {
        at.map_or_else(|| "-".to_owned(), |t| humantime::format_rfc3339_millis(t).to_string())
    };
    let mode = p.rate.map_or_else(
        || "closed loop".to_owned(),
        |rate| format!("open loop at {}/s", thousands(rate.round() as u64)),
    );
    let rows = [
        (
            "target",
            if p.target == report.address.to_string() {
                p.target.clone()
            } else {
                format!("{} ({})", p.target, report.address)
            },
        ),
        ("transport and pattern", format!("{} {}", p.transport.name(), p.pattern.name())),
        (
            "clients",
            format!(
                "{} flows, {}, on {} thread{}",
                p.conns,
                p.clients.name(),
                p.threads,
                if p.threads == 1 { "" } else { "s" }
            ),
        ),
        ("load", format!("{:.1} s, {mode}", p.duration_s)),
        ("requests", format!("{} bytes of {} text in {}", p.size, p.text.name(), p.encoding)),
        ("timeout", format!("{} s", p.timeout_s)),
        ("started", time(report.started_at)),
        ("ended", time(report.ended_at)),
    ];
    for (label, value) in rows {
        let _ = writeln!(out, "<tr><th>{label}</th><td>{}</td></tr>", escape(&value));
    }
    if let Some(merged) = &report.merged {
        let runs = format!(
            "{} runs together for {:.2} s: {}",
            merged.runs.len(),
            merged.overlap_s,
            merged.runs.join(", ")
        );
        let _ = writeln!(out, "<tr><th>merged</th><td>{}</td></tr>", escape(&runs));
    }
    out.push_str("</table>\n");

    out.push_str("<h2>Summary</h2>\n<table id=\"summary\">\n");
    let mut summary = vec![
        ("correct replies", thousands(report.requests)),
        ("requests/s", thousands(report.requests_per_s.round() as u64)),
        ("errors", thousands(report.errors.total)),
        ("wrong replies", thousands(report.errors.wrong)),
        ("timed out or lost", thousands(report.errors.timeouts)),
        ("connection errors", thousands(report.errors.connection)),
        ("MB/s sent, received", format!("{:.2}, {:.2}", report.sent_mb_per_s, report.received_mb_per_s)),
    ];
    if report.late_replies > 0 {
        summary.push(("late replies", thousands(report.late_replies)));
    }
    if p.rate.is_some() {
        summary.push(("due but never sent", thousands(report.unsent)));
        summary.push(("sent behind schedule", thousands(report.sends_behind_schedule)));
    }
    for (label, cpu) in [("server CPU", &report.server_cpu), ("bench CPU", &report.bench_cpu)] {
        if let Some(cpu) = cpu {
            let per = cpu.us_per_request.map_or_else(|| "-".to_owned(), |us| format!("{us:.2}"));
            summary.push((label, format!("{per} µs/request, {:.0}% of a core", cpu.percent_of_a_core)));
        }
    }
    for (label, value) in summary {
        let _ = writeln!(out, "<tr><th>{label}</th><td class=\"n\">{}</td></tr>", escape(&value));
    }
    out.push_str("</table>\n");

    out.push_str("<h2>Latency</h2>\n");
    match &report.latency_us {
        None => out.push_str("<p>No correct reply: no latency to show.</p>\n"),
        Some(latency) => latency_table(&mut out, latency, report.uncorrected_latency_us.as_ref()),
    }
    out.push_str(&svg(report));

    out.push_str("<h2>Over time</h2>\n");
    if report.intervals.is_empty() {
        out.push_str("<p>No figures per interval (a merged report has none: each run has its own).</p>\n");
    } else {
        out.push_str(&timeline::svg(&RATE, &report.intervals));
        out.push_str(&timeline::svg(&P99, &report.intervals));
        interval_table(&mut out, report);
    }

    out.push_str("<h2>Errors</h2>\n");
    let errors = report.problems().filter(|_| report.errors.total > 0).unwrap_or_else(|| "none".to_owned());
    let _ = writeln!(out, "<p id=\"errors\">{}</p>", escape(&errors));
    if let Some(first) = &report.first_problem {
        let _ = writeln!(out, "<p>The first:</p>\n<pre id=\"first-problem\">{}</pre>", escape(first));
    }
    if !report.thresholds.is_empty() {
        out.push_str("<h2>Thresholds</h2>\n<table id=\"thresholds\">\n");
        for verdict in &report.thresholds {
            let (class, state) = if verdict.breached { ("breached", "breached") } else { ("ok", "met") };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"{class}\">{state}</td><td>{}</td></tr>",
                escape(&verdict.threshold),
                escape(&verdict.measured)
            );
        }
        out.push_str("</table>\n");
    }
    // The report as `--json` prints it, for scripts; `<` is escaped so nothing in it can end the
    // script element.
    let json = serde_json::to_string(report).unwrap_or_default().replace('<', "\\u003c");
    let _ = write!(
        out,
        "<script type=\"application/json\" id=\"upcase-report\">{json}</script>\n</body>\n</html>\n"
    );
    out
}

/// The latency percentiles as a table: corrected and uncorrected in an open loop.
fn latency_table(out: &mut String, latency: &Latency, uncorrected: Option<&Latency>) {
    out.push_str("<table id=\"latency\">\n<tr><th>µs</th>");
    for percentile in &latency.percentiles {
        let _ = write!(out, "<th class=\"n\">{}</th>", percentile_label(percentile.percentile));
    }
    out.push_str("<th class=\"n\">max</th><th class=\"n\">mean</th></tr>\n");
    let rows = match uncorrected {
        None => vec![("latency", latency)],
        Some(uncorrected) => vec![
            ("corrected: from each request's intended send time", latency),
            ("uncorrected: from its actual send time", uncorrected),
        ],
    };
    for (label, row) in rows {
        let _ = write!(out, "<tr><th>{label}</th>");
        for percentile in &row.percentiles {
            let _ = write!(out, "<td class=\"n\">{}</td>", thousands(percentile.us));
        }
        let _ = writeln!(
            out,
            "<td class=\"n\">{}</td><td class=\"n\">{:.1}</td></tr>",
            thousands(row.max),
            row.mean
        );
    }
    out.push_str("</table>\n");
}

/// Every interval, in a table folded away under the charts.
fn interval_table(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "<details><summary>{} intervals of {} s</summary>\n<table id=\"intervals\">\n<tr><th>seconds</th>\
         <th class=\"n\">requests/s</th><th class=\"n\">errors</th><th class=\"n\">p50 µs</th><th class=\"n\">p99 µs</th>\
         <th class=\"n\">max µs</th></tr>",
        report.intervals.len(),
        report.parameters.interval_s
    );
    for interval in &report.intervals {
        let [p50, p99, max] = interval.latency_us.as_ref().map_or_else(
            || ["-".to_owned(), "-".to_owned(), "-".to_owned()],
            |l| [thousands(l.p50), thousands(l.p99), thousands(l.max)],
        );
        let _ = writeln!(
            out,
            "<tr><td>{:.1}–{:.1}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{p50}</td>\
             <td class=\"n\">{p99}</td><td class=\"n\">{max}</td></tr>",
            interval.start_s,
            interval.end_s,
            thousands(interval.requests_per_s.round() as u64),
            thousands(interval.errors)
        );
    }
    out.push_str("</table>\n</details>\n");
}
