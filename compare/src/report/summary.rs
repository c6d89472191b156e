//! The report's summaries: the targets, each met or missed; upcase async against the C reference
//! and Python; costs per request; the encodings' cost against UTF-8.

use super::markdown::{number, ratio, significant, table, thousands, Notes};
use super::tables::near_cap;
use super::Results;
use crate::measuring::Figure;
use crate::peers::Peer;
use crate::workloads::COSTED;

/// Whether a target wants the measured ratio at most or at least its limit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Better {
    Lower,
    Higher,
}

fn verdict(what: String, measured: Option<f64>, limit: f64, better: Better) -> Vec<String> {
    let Some(measured) = measured else { return vec![what, "—".to_owned(), "not measured".to_owned()] };
    let met = if better == Better::Lower { measured <= limit } else { measured >= limit };
    let sign = if better == Better::Lower { '≤' } else { '≥' };
    let said = if met { "**met**".to_owned() } else { format!("**missed** (needs {sign} {limit:.1}×)") };
    vec![what, format!("{measured:.2}×"), said]
}

/// The targets the project set, evaluated against the C reference and Python. The CPU targets
/// are measured with independent clients (a thread per flow), as real clients load a server.
pub(super) fn targets(results: &Results) -> String {
    let m = |workload: &str, peer: Peer, figure: Figure| results.median(workload, peer, figure);
    let against_c = |workload: &str, figure: Figure| {
        ratio(m(workload, Peer::Async, figure), m(workload, Peer::CTuned, figure))
    };
    let mut rows = Vec::new();
    for (id, what) in [
        ("udp-rr-8-indep", "UDP rr, 8 independent clients"),
        ("udp-rr-32-indep", "UDP rr, 32 independent clients"),
        ("tcp-rr-8-indep", "TCP rr, 8 independent clients"),
        ("tcp-rr-64-indep", "TCP rr, 64 independent clients"),
        ("tcp-crr-4-indep", "TCP crr, 4 independent clients (per connection)"),
    ] {
        let title = format!("{what}: server CPU per request, async ÷ C (≤ 1.0)");
        rows.push(verdict(title, against_c(id, Figure::CpuUs), 1.0, Better::Lower));
    }
    let title = "TCP rr, 1,000 independent clients: server CPU per request, async ÷ C (≤ 0.9)".to_owned();
    rows.push(verdict(title, against_c("tcp-rr-1000-indep", Figure::CpuUs), 0.9, Better::Lower));
    let title = "TCP rr, 1,000 independent clients: p99 latency, async ÷ C (≤ 1.0)".to_owned();
    rows.push(verdict(title, against_c("tcp-rr-1000-indep", Figure::P99), 1.0, Better::Lower));
    let cap = results.meta.kernel.crr_cap();
    for (id, peer, name, limit) in
        [("tcp-crr-4-indep", Peer::CTuned, "C", 1.0), ("tcp-crr-4", Peer::PythonTcp, "Python threaded", 2.5)]
    {
        let (ours, theirs) = (m(id, Peer::Async, Figure::PerS), m(id, peer, Figure::PerS));
        let what = format!("{id}: connections/s, async ÷ {name} (≥ {limit:.1})");
        let measured = ratio(ours, theirs);
        // Met is in doubt if their rate may have been held down by the limit; missed, if ours may.
        let (held, who) = if measured.is_some_and(|r| r >= limit) {
            (theirs, format!("{name}'s"))
        } else {
            (ours, "upcase's".to_owned())
        };
        match (measured, cap) {
            (Some(measured), Some(cap)) if near_cap(held, Some(cap)) => rows.push(vec![
                what,
                format!("{measured:.2}×"),
                format!(
                    "**inconclusive**: {who} rate is at the kernel's limit of about {}/s (see the crr table)",
                    number(Some(cap), 0)
                ),
            ]),
            _ => rows.push(verdict(what, measured, limit, Better::Higher)),
        }
    }
    let title = "TCP stream ASCII: MB/s, async ÷ C (≥ 1.0)".to_owned();
    rows.push(verdict(title, against_c("stream-ascii", Figure::SentMbS), 1.0, Better::Higher));
    rows.push(never_above_iterative(results));
    let title = "TCP stream: mixed Unicode MB/s ÷ ASCII MB/s, async (≥ 0.5)".to_owned();
    let unicode = ratio(
        m("stream-unicode", Peer::Async, Figure::SentMbS),
        m("stream-ascii", Peer::Async, Figure::SentMbS),
    );
    rows.push(verdict(title, unicode, 0.5, Better::Higher));
    for (id, peer, name) in [
        ("stream-latin1", Peer::AsyncLatin1, "latin1"),
        ("stream-shift_jis", Peer::AsyncShiftJis, "shift_jis"),
    ] {
        let title = format!("TCP stream: {name} server CPU per byte ÷ UTF-8's, async, mixed Unicode (≤ 1.5)");
        let cost =
            ratio(m(id, peer, Figure::CpuNsPerByte), m("stream-unicode", Peer::Async, Figure::CpuNsPerByte));
        rows.push(verdict(title, cost, 1.5, Better::Lower));
    }
    let per_conn = m("idle", Peer::Async, Figure::BytesPerConn);
    let what = format!(
        "{} idle connections: user-space memory per connection, async (≤ 1 KiB)",
        thousands(results.meta.idle_conns as u64)
    );
    rows.push(match per_conn {
        None => vec![what, "—".to_owned(), "not measured".to_owned()],
        Some(bytes) if bytes <= 1024.0 => {
            vec![what, format!("{} bytes", number(Some(bytes), 0)), "**met**".to_owned()]
        }
        Some(bytes) => {
            vec![
                what,
                format!("{} bytes", number(Some(bytes), 0)),
                format!("**missed** ({:.2}× 1 KiB)", bytes / 1024.0),
            ]
        }
    });
    table(&["target", "measured", "verdict"], &rows, true)
}

/// The default model must never cost more CPU per request than the lecture's iterative loop:
/// the worst ratio over every workload both ran.
fn never_above_iterative(results: &Results) -> Vec<String> {
    let what = "every workload: server CPU per request, async ÷ iterative (≤ 1.0)".to_owned();
    let worst = results
        .workloads()
        .filter_map(|id| {
            let ratio = ratio(
                results.median(id, Peer::Async, Figure::CpuUs),
                results.median(id, Peer::Iterative, Figure::CpuUs),
            )?;
            Some((ratio, id))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match worst {
        None => vec![what, "—".to_owned(), "not measured".to_owned()],
        Some((ratio, id)) => {
            let mut row = verdict(what, Some(ratio), 1.0, Better::Lower);
            if let Some(measured) = row.get_mut(1) {
                *measured = format!("{ratio:.2}× (worst: {id})");
            }
            row
        }
    }
}

/// upcase async's figures next to the C reference's and Python's, with the ratios.
pub(super) fn ratios(results: &Results) -> String {
    let specs: [(&str, &str, Figure); 33] = [
        ("udp-rr-1", "req/s", Figure::PerS),
        ("udp-rr-1", "server CPU/req", Figure::CpuUs),
        ("udp-rr-8", "req/s", Figure::PerS),
        ("udp-rr-8", "server CPU/req", Figure::CpuUs),
        ("udp-rr-32", "req/s", Figure::PerS),
        ("udp-rr-32", "server CPU/req", Figure::CpuUs),
        ("tcp-rr-1", "req/s", Figure::PerS),
        ("tcp-rr-1", "server CPU/req", Figure::CpuUs),
        ("tcp-rr-8", "req/s", Figure::PerS),
        ("tcp-rr-8", "server CPU/req", Figure::CpuUs),
        ("tcp-rr-32", "req/s", Figure::PerS),
        ("tcp-rr-32", "server CPU/req", Figure::CpuUs),
        ("tcp-rr-1000", "req/s", Figure::PerS),
        ("tcp-rr-1000", "server CPU/req", Figure::CpuUs),
        ("tcp-rr-1000", "p99", Figure::P99),
        ("tcp-crr-4", "connections/s", Figure::PerS),
        ("tcp-crr-4", "server CPU/conn", Figure::CpuUs),
        ("stream-ascii", "MB/s", Figure::SentMbS),
        ("stream-ascii", "server CPU/byte", Figure::CpuNsPerByte),
        ("idle", "bytes per connection", Figure::BytesPerConn),
        ("udp-rr-8-indep", "req/s", Figure::PerS),
        ("udp-rr-8-indep", "server CPU/req", Figure::CpuUs),
        ("udp-rr-32-indep", "req/s", Figure::PerS),
        ("udp-rr-32-indep", "server CPU/req", Figure::CpuUs),
        ("tcp-rr-8-indep", "req/s", Figure::PerS),
        ("tcp-rr-8-indep", "server CPU/req", Figure::CpuUs),
        ("tcp-rr-64-indep", "req/s", Figure::PerS),
        ("tcp-rr-64-indep", "server CPU/req", Figure::CpuUs),
        ("tcp-rr-1000-indep", "req/s", Figure::PerS),
        ("tcp-rr-1000-indep", "server CPU/req", Figure::CpuUs),
        ("tcp-rr-1000-indep", "p99", Figure::P99),
        ("tcp-crr-4-indep", "connections/s", Figure::PerS),
        ("tcp-crr-4-indep", "server CPU/conn", Figure::CpuUs),
    ];
    let shown = |r: Option<f64>| r.map_or_else(|| "—".to_owned(), |r| format!("{r:.2}"));
    let mut rows = Vec::new();
    for (id, what, figure) in specs {
        if !results.has(id) {
            continue;
        }
        let python = if id.starts_with("udp") { Peer::PythonUdp } else { Peer::PythonTcp };
        let ours = results.median(id, Peer::Async, figure);
        let c = results.median(id, Peer::CTuned, figure);
        let py = results.median(id, python, figure);
        if ours.is_none() && c.is_none() {
            continue;
        }
        rows.push(vec![
            id.to_owned(),
            what.to_owned(),
            significant(ours),
            significant(c),
            shown(ratio(ours, c)),
            significant(py),
            shown(ratio(ours, py)),
        ]);
    }
    let header =
        ["workload", "figure", "upcase async", "C, thread per core", "async ÷ C", "Python", "async ÷ Python"];
    table(&header, &rows, true)
}

/// What each server spent per request, from the counted runs.
pub(super) fn costs(results: &Results) -> String {
    let mut rows = Vec::new();
    let mut notes = Notes::default();
    for id in COSTED {
        let unit = if id.starts_with("tcp-crr") { "connection" } else { "request" };
        for (_, peer, costs) in results.costs.iter().filter(|(w, _, _)| *w == id) {
            let label = peer.label().to_owned();
            match costs {
                Ok(c) => rows.push(vec![
                    id.to_owned(),
                    label,
                    format!("{:.2}", c.per_request(c.syscalls)),
                    format!("{:.2}", c.per_request(c.context_switches)),
                    format!("{:.2}", c.per_request(c.allocations)),
                    format!("{} {unit}s", thousands(c.requests)),
                ]),
                Err(why) => rows.push(vec![
                    id.to_owned(),
                    label,
                    "—".to_owned(),
                    "—".to_owned(),
                    "—".to_owned(),
                    format!("— {}", notes.mark(why)),
                ]),
            }
        }
    }
    if rows.is_empty() {
        return match &results.costs_note {
            Some(note) => format!("Not measured: {note}.\n"),
            None => "Not measured.\n".to_owned(),
        };
    }
    let intro = format!(
        "Counted by `upcase-compare` (`measuring::costs`) over the server's every thread and child process, only while \
         the load ran: one untimed run of {} s per server, started afresh under `perf stat`. System calls: the \
         `raw_syscalls:sys_enter` tracepoint. Context switches: each one a sleep and a wake-up. Allocations: calls to \
         glibc's `malloc`, `calloc`, `realloc`, `posix_memalign`, `aligned_alloc` and `memalign` (uprobes; every \
         server here allocates through glibc, Python run with `PYTHONMALLOC=malloc` so that its small objects count \
         too). crr figures are per connection.\n\n",
        results.meta.costs_duration_s
    );
    let header = ["workload", "server", "system calls", "context switches", "allocations", "counted over"];
    intro + &table(&header, &rows, true) + &notes.render()
}

/// The other encodings' cost per byte against UTF-8's, on the same text.
pub(super) fn encodings(results: &Results) -> String {
    let base = results.median("stream-unicode", Peer::Async, Figure::CpuNsPerByte);
    let mut rows = Vec::new();
    for (id, peer, name) in [
        ("stream-unicode", Peer::Async, "utf-8"),
        ("stream-latin1", Peer::AsyncLatin1, "latin1"),
        ("stream-shift_jis", Peer::AsyncShiftJis, "shift_jis"),
    ] {
        if !results.has(id) {
            continue;
        }
        let cost = results.median(id, peer, Figure::CpuNsPerByte);
        rows.push(vec![
            name.to_owned(),
            number(results.median(id, peer, Figure::SentMbS), 1),
            number(cost, 2),
            ratio(cost, base).map_or_else(|| "—".to_owned(), |r| format!("{r:.2}×")),
        ]);
    }
    if rows.is_empty() {
        return String::new();
    }
    table(
        &["encoding (mixed Unicode text)", "MB/s in", "server CPU ns/byte in", "cost ÷ UTF-8's"],
        &rows,
        true,
    )
}
