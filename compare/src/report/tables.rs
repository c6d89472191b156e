//! A table per workload: a row per peer (medians of its runs, or why it failed or sat out),
//! numbered notes under it, and for crr what the kernel's limit was.

use super::markdown::{number, table, thousands, Notes};
use super::Results;
use crate::measuring::idle::Idle;
use crate::measuring::{Figure, Outcome};
use crate::workloads::{Kind, Workload};

/// A column of a workload's table.
enum Column {
    /// The median of a figure, with this many decimals.
    Median(Figure, usize),
    /// Resident memory before and after.
    Rss,
    /// Idle connections answered of those checked.
    Answered,
    /// Seconds to release them all.
    Released,
}

fn columns(kind: Kind) -> Vec<(&'static str, Column)> {
    use Column::*;
    match kind {
        Kind::Rr => vec![
            ("req/s", Median(Figure::PerS, 0)),
            ("p50 µs", Median(Figure::P50, 0)),
            ("p99 µs", Median(Figure::P99, 0)),
            ("server CPU µs/req", Median(Figure::CpuUs, 2)),
            ("bench CPU % of a core", Median(Figure::BenchCore, 0)),
        ],
        Kind::Crr => vec![
            ("connections/s", Median(Figure::PerS, 0)),
            ("p50 µs", Median(Figure::P50, 0)),
            ("p99 µs", Median(Figure::P99, 0)),
            ("server CPU µs/conn", Median(Figure::CpuUs, 1)),
            ("bench CPU % of a core", Median(Figure::BenchCore, 0)),
        ],
        Kind::Stream => vec![
            ("MB/s in (sent to it)", Median(Figure::SentMbS, 1)),
            ("MB/s out (replies)", Median(Figure::ReceivedMbS, 1)),
            ("server CPU ns/byte in", Median(Figure::CpuNsPerByte, 2)),
            ("bench CPU % of a core", Median(Figure::BenchCore, 0)),
        ],
        Kind::Idle => vec![
            ("connections held", Median(Figure::Held, 0)),
            ("server RSS before → after (KiB)", Rss),
            ("bytes per idle connection", Median(Figure::BytesPerConn, 0)),
            ("server threads while idle", Median(Figure::ThreadsWhileIdle, 0)),
            ("idle ones answered after", Answered),
            ("s to release them once closed", Released),
        ],
    }
}

/// Whether a crr rate is within 10% of the kernel's limit: it may be the limit's, not the
/// server's (well above it, the TIME_WAIT table was full and the limit did not apply).
pub(super) fn near_cap(rate: Option<f64>, cap: Option<f64>) -> bool {
    matches!((rate, cap), (Some(rate), Some(cap)) if 0.9 * cap <= rate && rate <= 1.1 * cap)
}

/// The table of one workload, with its notes.
pub(super) fn workload(results: &Results, workload: &Workload) -> String {
    let columns = columns(workload.kind);
    let mut header: Vec<&str> = vec!["server"];
    header.extend(columns.iter().map(|(name, _)| *name));
    header.push("runs ok");
    let dashes = |n: usize| vec!["—".to_owned(); n];
    let mut notes = Notes::default();
    let mut rows = Vec::new();
    let cap = results.meta.kernel.crr_cap();
    for &peer in &workload.peers {
        let label = peer.label();
        let runs = results.runs.get(&(workload.id, peer)).map(Vec::as_slice).unwrap_or_default();
        let failures: Vec<&str> = runs
            .iter()
            .filter_map(|o| match o {
                Outcome::Failed(why) => Some(why.as_str()),
                Outcome::Measured(_) => None,
            })
            .collect();
        let first_idle: Option<&Idle> = runs.iter().find_map(|o| match o {
            Outcome::Measured(figures) => figures.idle.as_deref(),
            Outcome::Failed(_) => None,
        });
        let good = runs.len() - failures.len();
        if good == 0 {
            let reasons =
                if failures.is_empty() { "not run".to_owned() } else { unique(&failures).join("; ") };
            let mut row = vec![label.to_owned(), format!("failed {}", notes.mark(&reasons))];
            row.extend(dashes(columns.len() - 1));
            row.push(format!("0/{}", runs.len()));
            rows.push(row);
            continue;
        }
        let mut cells: Vec<String> = columns
            .iter()
            .map(|(_, column)| match (column, first_idle) {
                (Column::Median(figure, digits), _) => {
                    number(results.median(workload.id, peer, *figure), *digits)
                }
                (Column::Rss, Some(idle)) => {
                    format!("{} → {}", thousands(idle.rss_before_kib), thousands(idle.rss_after_kib))
                }
                (Column::Answered, Some(idle)) => format!("{}/{}", idle.answered, idle.checked),
                (Column::Released, Some(idle)) if !idle.released_all => {
                    format!("> {:.0} (not all)", idle.released_s)
                }
                (Column::Released, Some(idle)) => number(Some(idle.released_s), 1),
                (_, None) => "—".to_owned(),
            })
            .collect();
        if let (Some(idle), Some(first)) = (first_idle, cells.first_mut()) {
            if idle.held < idle.conns {
                let text = format!(
                    "{label}: {} connected, {} kept open (the server closed the rest at once: its own limit).",
                    thousands(idle.opened as u64),
                    thousands(idle.held as u64)
                );
                *first = format!("{first} {}", notes.mark(&text));
            }
        }
        if workload.kind == Kind::Crr && near_cap(results.median(workload.id, peer, Figure::PerS), cap) {
            if let Some(first) = cells.first_mut() {
                let mark = notes.mark(
                    "At the kernel's limit for crr to one address (below): the rate may be the limit's.",
                );
                *first = format!("{first} {mark}");
            }
        }
        let mut tally = format!("{good}/{}", runs.len());
        if !failures.is_empty() {
            tally = format!("{tally} {}", notes.mark(&unique(&failures).join("; ")));
        }
        let mut row = vec![label.to_owned()];
        row.extend(cells);
        row.push(tally);
        rows.push(row);
    }
    for (peer, why) in &workload.sits_out {
        let mut row = vec![peer.label().to_owned(), format!("— {}", notes.mark(why.text()))];
        row.extend(dashes(columns.len()));
        rows.push(row);
    }
    let mut text = table(&header, &rows, true) + &notes.render();
    if workload.kind == Kind::Crr {
        text += &crr_limit(results, cap);
    }
    text
}

/// What the kernel's TIME_WAIT limit was for crr, under its table.
fn crr_limit(results: &Results, cap: Option<f64>) -> String {
    let kernel = &results.meta.kernel;
    match cap {
        Some(cap) if cap > 1e6 => format!(
            "\nThis run set `tcp_tw_reuse_delay` to {} ms (`--tw-reuse-delay`): client ports in TIME_WAIT were reused \
             at once, so the kernel did not limit crr.\n",
            kernel.tw_reuse_delay_ms
        ),
        Some(cap) => {
            let (low, high) = kernel.port_range.unwrap_or_default();
            format!(
                "\nEvery crr connection leaves a TIME_WAIT on the client's port (the client closes first). With local \
                 ports {low}–{high} (connect() takes the even ones first) and loopback reusing a port after \
                 `tcp_tw_reuse_delay` = {} ms, crr to one address tops out near **{} connections/s**, whatever the \
                 server: a rate there measures the kernel (compare server CPU per connection instead). The limit does \
                 not apply while the TIME_WAIT table is full (`tcp_max_tw_buckets` = {}; {} at the start, other \
                 programs' included). `--tw-reuse-delay 1` lifts it for a run.\n",
                kernel.tw_reuse_delay_ms,
                number(Some(cap), 0),
                kernel.tw_max.map_or_else(|| "?".to_owned(), |n| n.to_string()),
                thousands(kernel.time_wait.unwrap_or(0)),
            )
        }
        None => String::new(),
    }
}

/// `items` without repeats, in first-seen order.
fn unique<'a>(items: &[&'a str]) -> Vec<&'a str> {
    let mut seen = Vec::new();
    for item in items {
        if !seen.contains(item) {
            seen.push(*item);
        }
    }
    seen
}
