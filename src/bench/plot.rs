//! The latency distribution of a run as an SVG picture, drawn by hand (no plotting crate).
//!
//! The curve is the HdrHistogram percentile plot: latency against percentile on a log scale of
//! 1 / (1 − quantile), so that 90%, 99%, 99.9% … are evenly spaced and the tail, where the
//! trouble is, gets as much room as the median. Pure: a report in, a string out; it must never
//! write files (the caller does) or change the report.

use std::fmt::Write as _;

use super::latency::{percentile_label, quantile};
use super::report::Report;
use crate::format::thousands;

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 480.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 60.0;
/// What the x axis shows.
const X_LABEL: &str = "percentile (log scale of 1 / (1 − quantile))";
/// Points per decade of 1 / (1 − quantile).
const STEPS: u32 = 20;
/// The plot goes at most to the 99.9999th percentile.
const MAX_DECADES: u32 = 6;

/// Ends the SVG document begun in `out` with `message` at `centre` where the figure would be.
pub(super) fn ended_empty(mut out: String, message: &str, centre: (f64, f64)) -> String {
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        centre.0,
        centre.1,
        escape(message)
    );
    out.push_str("</svg>\n");
    out
}

/// The SVG document for `report`'s latency distribution.
pub fn svg(report: &Report) -> String {
    let histogram = &report.histogram;
    let mut out = String::new();
    let _ = writeln!(out, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" "#,);
    let _ = writeln!(out, r#"  viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#);
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let title = format!("upcase bench: {} latency", report.title());
    let _ = writeln!(out, r#"<title>{}</title>"#, escape(&title));
    let _ = writeln!(
        out,
        r#"<text x="{}" y="24" font-size="16" text-anchor="middle">{}</text>"#,
        WIDTH / 2.0,
        escape(&title)
    );
    let _ = writeln!(
        out,
        r##"<text x="{}" y="44" text-anchor="middle" fill="#555">{}</text>"##,
        WIDTH / 2.0,
        escape(&subtitle(report))
    );
    let (plot_width, plot_height) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    if histogram.is_empty() {
        return ended_empty(
            out,
            "no correct replies: nothing to plot",
            (WIDTH / 2.0, TOP + plot_height / 2.0),
        );
    }
    // As far into the tail as there are replies to show it: 1,000 replies reach 99.9%.
    let decades = (histogram.len() as f64).log10().floor().clamp(1.0, f64::from(MAX_DECADES)) as u32;
    let top = nice_ceiling(histogram.max() as f64);
    let x = |decade: f64| LEFT + decade / f64::from(decades) * plot_width;
    let y = |micros: f64| TOP + plot_height - micros / top * plot_height;

    // Grid, ticks and their labels.
    for d in 0..=decades {
        let px = x(f64::from(d));
        let _ = writeln!(
            out,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/>"##,
            TOP + plot_height
        );
        let _ = writeln!(
            out,
            r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + plot_height + 18.0,
            decade_label(d)
        );
    }
    let step = top / 5.0;
    for i in 0..=5 {
        let value = step * f64::from(i);
        let py = y(value);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/>"##,
            LEFT + plot_width
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            py + 4.0,
            thousands(value.round() as u64)
        );
    }
    let _ = writeln!(out, r#"<rect x="{LEFT}" y="{TOP}" width="{plot_width}" height="{plot_height}" "#,);
    let _ = writeln!(out, r#"  fill="none" stroke="black"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{X_LABEL}</text>"#,
        LEFT + plot_width / 2.0,
        HEIGHT - 14.0,
    );
    let _ = writeln!(
        out,
        r#"<text transform="translate(22 {:.1}) rotate(-90)" text-anchor="middle">latency (µs)</text>"#,
        TOP + plot_height / 2.0
    );

    // The curve.
    let points: Vec<String> = (0..=decades * STEPS)
        .map(|i| {
            let decade = f64::from(i) / f64::from(STEPS);
            let quantile = 1.0 - 10f64.powf(-decade);
            let micros = histogram.value_at_quantile(quantile) as f64;
            format!("{:.1},{:.1}", x(decade), y(micros))
        })
        .collect();
    let _ = writeln!(
        out,
        r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{}"/>"##,
        points.join(" ")
    );
    // The percentiles the report lists, marked and labelled on the curve.
    let asked = report.latency_us.as_ref().map(|latency| latency.percentiles.as_slice()).unwrap_or_default();
    for percentile in asked.iter().filter(|q| q.percentile < 100.0) {
        let decade = -(1.0 - quantile(percentile.percentile)).log10();
        // 99.9 / 100 is a hair above 0.999 in binary: a hair past the last decade is on it.
        if decade > f64::from(decades) + 1e-9 {
            continue;
        }
        let (px, py) = (x(decade), y(percentile.us as f64));
        let _ = writeln!(out, r##"<circle cx="{px:.1}" cy="{py:.1}" r="4" fill="#ff7f0e"/>"##);
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" fill="#ff7f0e">{} {} µs</text>"##,
            px + 6.0,
            py - 6.0,
            percentile_label(percentile.percentile),
            thousands(percentile.us)
        );
    }
    let max = histogram.max() as f64;
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#d62728" stroke-dasharray="4 4"/>"##,
        y(max),
        LEFT + plot_width,
        y(max)
    );
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" fill="#d62728">max {} µs</text>"##,
        LEFT + 6.0,
        y(max) - 5.0,
        thousands(histogram.max())
    );
    out.push_str("</svg>\n");
    out
}

/// What was run and what came of it, under the title.
fn subtitle(report: &Report) -> String {
    let p = &report.parameters;
    let mode = p.rate.map_or_else(
        || "closed loop".to_owned(),
        |rate| format!("open loop at {}/s", thousands(rate.round() as u64)),
    );
    let mut text = format!(
        "{} flow{}, {}-byte {} requests, {mode}: {} correct replies, {}/s",
        p.conns,
        if p.conns == 1 { "" } else { "s" },
        p.size,
        p.text.name(),
        thousands(report.requests),
        thousands(report.requests_per_s.round() as u64)
    );
    if let Some(problems) = report.problems() {
        let _ = write!(text, "; {problems}");
    }
    text
}

/// `0%`, `90%`, `99%`, `99.9%` … for decade 0, 1, 2, 3 …
fn decade_label(decade: u32) -> String {
    match decade {
        0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        d => format!("99.{}%", "9".repeat(d as usize - 2)).replace(".%", "%"),
    }
}

/// The smallest round number (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10^k) at or above `value`, at
/// least 1: the top of the y axis, close above the slowest reply.
pub(crate) fn nice_ceiling(value: f64) -> f64 {
    let value = value.max(1.0);
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&v| v >= value)
        .unwrap_or(value)
}

/// Text made safe inside an XML element or attribute.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_scales() {
        assert_eq!(decade_label(0), "0%");
        assert_eq!(decade_label(2), "99%");
        assert_eq!(decade_label(4), "99.99%");
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(130.0), 150.0);
        assert_eq!(nice_ceiling(500.0), 500.0);
        assert_eq!(nice_ceiling(501.0), 600.0);
        assert_eq!(nice_ceiling(10_119.0), 15_000.0);
        assert_eq!(nice_ceiling(8_001.0), 10_000.0);
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
