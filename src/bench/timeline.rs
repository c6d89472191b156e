//! A figure of a run over time (requests/s, p99 latency) as an SVG step chart, drawn by hand like
//! [`super::plot`]: each interval a flat step from its start to its end, a gap where it had no
//! correct reply. For the HTML report.
//!
//! Pure: intervals in, a string out; it must never write files or change the report.

use std::fmt::Write as _;

use super::interval::Interval;
use super::plot::{ended_empty, escape, nice_ceiling};
use crate::format::thousands;

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 45.0;

/// One figure to chart: its title, the y axis label, and how to read it from an interval.
pub(crate) struct Series {
    pub(crate) title: &'static str,
    pub(crate) axis: &'static str,
    pub(crate) colour: &'static str,
    pub(crate) value: fn(&Interval) -> Option<f64>,
}

/// Correct replies per second, per interval.
pub(crate) const RATE: Series = Series {
    title: "requests/s over time",
    axis: "requests/s",
    colour: "#1f77b4",
    value: |interval| Some(interval.requests_per_s),
};

/// The 99th percentile latency, per interval.
pub(crate) const P99: Series = Series {
    title: "p99 latency over time",
    axis: "p99 (µs)",
    colour: "#d62728",
    value: |interval| interval.latency_us.as_ref().map(|latency| latency.p99 as f64),
};

/// The SVG chart of `series` over `intervals`.
pub(crate) fn svg(series: &Series, intervals: &[Interval]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(out, r#"<title>{}</title>"#, escape(series.title));
    let _ = writeln!(
        out,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
        WIDTH / 2.0,
        escape(series.title)
    );
    let (plot_width, plot_height) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let values: Vec<f64> = intervals.iter().filter_map(series.value).collect();
    let end = intervals.last().map_or(0.0, |last| last.end_s);
    if values.is_empty() || end <= 0.0 {
        return ended_empty(out, "no intervals to chart", (WIDTH / 2.0, TOP + plot_height / 2.0));
    }
    let top = nice_ceiling(values.iter().copied().fold(0.0, f64::max));
    let x = |seconds: f64| LEFT + seconds / end * plot_width;
    let y = |value: f64| TOP + plot_height - value / top * plot_height;
    for i in 0..=5 {
        let (seconds, value) = (end * f64::from(i) / 5.0, top * f64::from(i) / 5.0);
        let (px, py) = (x(seconds), y(value));
        let bottom = TOP + plot_height;
        let _ =
            writeln!(out, r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{bottom:.1}" stroke="#ddd"/>"##);
        let _ = writeln!(
            out,
            r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{seconds:.1}</text>"#,
            bottom + 16.0
        );
        let right = LEFT + plot_width;
        let _ =
            writeln!(out, r##"<line x1="{LEFT}" y1="{py:.1}" x2="{right:.1}" y2="{py:.1}" stroke="#ddd"/>"##);
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            py + 4.0,
            thousands(value.round() as u64)
        );
    }
    let _ = writeln!(
        out,
        r#"<rect x="{LEFT}" y="{TOP}" width="{plot_width}" height="{plot_height}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">seconds since the start</text>"#,
        LEFT + plot_width / 2.0,
        HEIGHT - 6.0
    );
    let _ = writeln!(
        out,
        r#"<text transform="translate(20 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + plot_height / 2.0,
        escape(series.axis)
    );
    // A step per interval; an interval without a value breaks the line.
    let mut steps: Vec<Vec<String>> = vec![Vec::new()];
    for interval in intervals {
        match (series.value)(interval) {
            Some(value) => {
                let (left, right, py) = (x(interval.start_s), x(interval.end_s), y(value));
                if let Some(line) = steps.last_mut() {
                    line.push(format!("{left:.1},{py:.1} {right:.1},{py:.1}"));
                }
            }
            None => steps.push(Vec::new()),
        }
    }
    for line in steps.iter().filter(|line| !line.is_empty()) {
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            series.colour,
            line.join(" ")
        );
    }
    out.push_str("</svg>\n");
    out
}
