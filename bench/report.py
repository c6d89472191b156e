#!/usr/bin/env python3
"""Turns a bench/run results directory into docs/BENCHMARKS.md: the machine, a table per
workload (medians over the rounds), the ratios of upcase async to the C and Python servers, and
the targets, each evaluated as met or missed.

Everything from the line ANALYSIS_MARKER on in the existing output file is kept as it is: that is
where people write profiles and explanations.

Usage: report.py RESULTS-DIR OUTPUT.md
"""
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ANALYSIS_MARKER = "<!-- analysis: kept by bench/run -->"
DEFAULT_ANALYSIS = f"""{ANALYSIS_MARKER}

## Analysis

Written by people, not by `bench/run`: profiles, explanations, what changed between runs.
`bench/run` keeps everything from the marker line above to the end of the file.
"""

CLOCK_TICKS_PER_SECOND = 100  # /proc/PID/stat, USER_HZ on Linux
MIN_CPU_S = 0.05  # fewer ticks than this in a run, and CPU per request is not reported


# ---------------------------------------------------------------------------------------------
# Reading the results


def read_tsv(path):
    return [line.rstrip("\n").split("\t") for line in path.read_text().splitlines() if line.strip()]


def load_json(path):
    try:
        return json.loads(path.read_text()) if path.exists() and path.stat().st_size else None
    except ValueError:
        return None


class Run:
    """One run of one peer in one workload: its figures, or why it failed."""

    def __init__(self, base, peer):
        self.ok, self.reason, self.figures = False, None, {}
        failed = Path(f"{base}.failed")
        meta_path = Path(f"{base}.meta")
        meta = dict(line.split("=", 1) for line in meta_path.read_text().split()) if meta_path.exists() else {}
        rc = int(meta.get("rc", "0") or 0)
        ticks = int(meta.get("ticks", "0") or 0)
        err = Path(f"{base}.err")
        err_text = err.read_text().strip() if err.exists() else ""
        if failed.exists():
            self.reason = failed.read_text().strip()
            return
        bench = load_json(Path(f"{base}.json"))
        iperf = load_json(Path(f"{base}.iperf3.json"))
        idle = load_json(Path(f"{base}.idle.json"))
        if bench is not None:
            self._bench(bench, rc, ticks, peer)
        elif iperf is not None:
            self._iperf(iperf, rc, ticks)
        elif idle is not None:
            self._idle(idle, rc)
        else:
            last = err_text.splitlines()[-1] if err_text else "no output"
            self.reason = f"exit {rc}: {last}"

    def _bench(self, r, rc, ticks, peer):
        if rc != 0 or not r.get("ok"):
            problems = ", ".join(f"{n:,} {k}" for k, n in r["errors"].items() if k != "total" and n)
            self.reason = f"exit {rc}: {problems or 'no request completed'}" + (
                f"; first: {r['first_problem']}" if r.get("first_problem") else "")
            return
        self.ok = True
        requests, latency = r["requests"], r.get("latency_us") or {}
        server = r.get("server_cpu") or {}
        cpu_s = server.get("cpu_s")
        if peer == "socat":  # its work is done in forked children, counted once reaped
            cpu_s = ticks / CLOCK_TICKS_PER_SECOND
        if cpu_s is not None and cpu_s < MIN_CPU_S:
            cpu_s = None  # a few clock ticks: too coarse to divide (or the server was starved)
        f = self.figures
        f["per_s"] = r["requests_per_s"]
        f["p50"], f["p99"] = latency.get("p50"), latency.get("p99")
        if cpu_s is not None and requests:
            f["cpu_us"] = cpu_s * 1e6 / requests
        if cpu_s is not None and r["bytes_sent"]:
            f["cpu_ns_per_byte"] = cpu_s * 1e9 / r["bytes_sent"]
        f["sent_mb_s"], f["received_mb_s"] = r["sent_mb_per_s"], r["received_mb_per_s"]
        f["bench_core"] = (r.get("bench_cpu") or {}).get("percent_of_a_core")

    def _iperf(self, r, rc, ticks):
        if rc != 0 or "error" in r:
            self.reason = f"exit {rc}: {r.get('error', 'iperf3 failed')}"
            return
        received = r["end"]["sum_received"]
        self.ok = True
        # One way only: what its server received is its "in"; nothing comes back.
        self.figures["sent_mb_s"] = received["bits_per_second"] / 8e6
        if received.get("bytes"):
            self.figures["cpu_ns_per_byte"] = ticks / CLOCK_TICKS_PER_SECOND * 1e9 / received["bytes"]

    def _idle(self, r, rc):
        if rc != 0 or r.get("bytes_per_conn") is None:
            self.reason = f"exit {rc}: {r.get('first_error') or 'no connection held'}"
            return
        self.ok = True
        self.figures.update(r)


class Results:
    def __init__(self, directory):
        self.dir = Path(directory)
        self.meta = dict(
            line.split("=", 1) for line in (self.dir / "meta.env").read_text().splitlines() if "=" in line)
        self.peers = {row[0]: {"label": row[1], "pid": row[2], "port": row[3], "command": row[4]}
                      for row in read_tsv(self.dir / "peers.tsv")}
        self.workloads = {}  # id -> {kind, title, flags, rows: [(peer, "run" | reason)]}
        for wid, kind, title, flags, peer, status in read_tsv(self.dir / "plan.tsv"):
            w = self.workloads.setdefault(wid, {"kind": kind, "title": title, "flags": flags, "rows": []})
            w["rows"].append((peer, status))
        self.runs = {}  # (workload, peer) -> [Run]
        for wid, w in self.workloads.items():
            for peer, status in w["rows"]:
                if status != "run":
                    continue
                folder = self.dir / "runs" / wid / peer
                rounds = sorted({p.name.split(".")[0] for p in folder.glob("*.*")}, key=int) if folder.exists() else []
                self.runs[(wid, peer)] = [Run(folder / r, peer) for r in rounds]

    def median(self, wid, peer, key):
        """The median of a figure over the runs that succeeded; None if there is none."""
        values = [r.figures[key] for r in self.runs.get((wid, peer), [])
                  if r.ok and r.figures.get(key) is not None]
        return statistics.median(values) if values else None

    def label(self, peer):
        return self.peers.get(peer, {}).get("label", peer)


# ---------------------------------------------------------------------------------------------
# Formatting


def number(value, digits=0):
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def sig(value):
    """A figure with about three significant digits."""
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


class Notes:
    """Numbered notes under a table; the same text gets the same number."""

    def __init__(self):
        self.texts = []

    def mark(self, text):
        if text not in self.texts:
            self.texts.append(text)
        return f"[{self.texts.index(text) + 1}]"

    def render(self):
        return "".join(f"\n[{i}] {text}  " for i, text in enumerate(self.texts, 1)).rstrip() + "\n" if self.texts else ""


def table(header, rows, numbers=True):
    """A Markdown table; with `numbers`, every column after the first is right-aligned."""
    align = [" --- " if i == 0 or not numbers else " ---: " for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


COLUMNS = {
    "rr": (["req/s", "p50 µs", "p99 µs", "server CPU µs/req", "bench CPU % of a core"],
           [("per_s", number), ("p50", number), ("p99", number), ("cpu_us", lambda v: number(v, 2)),
            ("bench_core", number)]),
    "crr": (["connections/s", "p50 µs", "p99 µs", "server CPU µs/conn", "bench CPU % of a core"],
            [("per_s", number), ("p50", number), ("p99", number), ("cpu_us", lambda v: number(v, 1)),
             ("bench_core", number)]),
    "stream": (["MB/s in (sent to it)", "MB/s out (replies)", "server CPU ns/byte in", "bench CPU % of a core"],
               [("sent_mb_s", lambda v: number(v, 1)), ("received_mb_s", lambda v: number(v, 1)),
                ("cpu_ns_per_byte", lambda v: number(v, 2)), ("bench_core", number)]),
    "idle": (["connections held", "server RSS before → after (KiB)", "bytes per idle connection",
              "server threads while idle", "idle ones answered after", "s to release them once closed"],
             [("held", number), ("rss", None), ("bytes_per_conn", number), ("threads_while_idle", number),
              ("answered", None), ("released_s", lambda v: number(v, 1))]),
}


def workload_table(res, wid, w):
    header, fields = COLUMNS[w["kind"]]
    notes = Notes()
    rows = []
    for peer, status in w["rows"]:
        label = res.label(peer)
        if status != "run":
            rows.append([label, "— " + notes.mark(status)] + ["—"] * (len(header) - 1) + ["—"])
            continue
        runs = res.runs.get((wid, peer), [])
        good = [r for r in runs if r.ok]
        if not good:
            reasons = "; ".join(dict.fromkeys(r.reason for r in runs)) or "not run"
            rows.append([label, "failed " + notes.mark(reasons)] + ["—"] * (len(header) - 1) + [f"0/{len(runs)}"])
            continue
        cells = []
        for key, fmt in fields:
            if key == "rss":
                r = good[0].figures
                cells.append(f"{r['rss_before_kib']:,} → {r['rss_after_kib']:,}")
            elif key == "answered":
                r = good[0].figures
                cells.append(f"{r['answered']}/{r['checked']}")
            elif key == "released_s" and good[0].figures.get("released_all") is False:
                cells.append(f"> {good[0].figures['released_s']:.0f} (not all)")
            else:
                cells.append(fmt(res.median(wid, peer, key)))
        if w["kind"] == "idle":
            r = good[0].figures
            if r["held"] < r["conns"]:
                cells[0] += " " + notes.mark(
                    f"{label}: {r['conns']:,} connected, {r['held']:,} kept open (the server closed the rest at once: its own limit).")
        if w["kind"] == "crr" and near_cap(res.median(wid, peer, "per_s"), crr_cap(res.meta)):
            cells[0] += " " + notes.mark("At the kernel's limit for crr to one address (below): the rate may be the limit's.")
        failed = [r for r in runs if not r.ok]
        tally = f"{len(good)}/{len(runs)}"
        if failed:
            tally += " " + notes.mark("; ".join(dict.fromkeys(r.reason for r in failed)))
        rows.append([label] + cells + [tally])
    text = table(["server"] + header + ["runs ok"], rows) + notes.render()
    cap = crr_cap(res.meta)
    if w["kind"] == "crr" and cap and cap > 1e6:
        text += (f"\nThis run set `tcp_tw_reuse_delay` to {res.meta['tw_reuse_delay']} ms (`--tw-reuse-delay`): "
                 "client ports in TIME_WAIT were reused at once, so the kernel did not limit crr.\n")
    elif w["kind"] == "crr" and cap:
        text += (
            f"\nEvery crr connection leaves a TIME_WAIT on the client's port (the client closes first). "
            f"With local ports {res.meta['port_range'].replace(' ', '–')} (connect() takes the even ones first) "
            f"and loopback reusing a port after `tcp_tw_reuse_delay` = {res.meta['tw_reuse_delay']} ms, "
            f"crr to one address tops out near **{cap:,.0f} connections/s**, whatever the server: a rate "
            "there measures the kernel (compare server CPU per connection instead). The limit does not "
            f"apply while the TIME_WAIT table is full (`tcp_max_tw_buckets` = {res.meta.get('tw_max', '?')}; "
            f"{int(res.meta.get('time_wait') or 0):,} at the start, other programs' included). "
            "`bench/run --tw-reuse-delay 1` lifts it for a run.\n")
    return text


# ---------------------------------------------------------------------------------------------
# Targets and ratios


def crr_cap(meta):
    """Connections per second at which crr to one address runs out of client ports, when every
    connection leaves a TIME_WAIT: connect() takes the even ports of the local range first, and
    loopback reuses one in TIME_WAIT after tcp_tw_reuse_delay. None if unknown."""
    try:
        low, high = (int(p) for p in meta["port_range"].split())
        delay_s = int(meta["tw_reuse_delay"]) / 1000
    except (KeyError, ValueError):
        return None
    if meta.get("tw_reuse") == "0" or delay_s <= 0:
        return None
    return (high - low + 1) / 2 / delay_s


def near_cap(rate, cap):
    """Whether a crr rate is within 10% of the kernel's limit: it may be the limit's, not the
    server's (well above it, the TIME_WAIT table was full and the limit did not apply)."""
    return rate is not None and cap is not None and 0.9 * cap <= rate <= 1.1 * cap


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def targets(res):
    m = res.median
    rows = []

    def target(what, measured, limit, better):
        """better: 'low' (met when ratio <= limit) or 'high' (met when ratio >= limit)."""
        if measured is None:
            rows.append([what, "—", "not measured"])
            return
        met = measured <= limit if better == "low" else measured >= limit
        rows.append([what, f"{measured:.2f}×", "**met**" if met else f"**missed** (needs {'≤' if better == 'low' else '≥'} {limit}×)"])

    for wid, what in (("udp-rr-8", "8 flows"), ("udp-rr-32", "32 flows")):
        target(f"UDP rr, {what}: server CPU per request, async ÷ C (≤ 0.7)",
               ratio(m(wid, "async", "cpu_us"), m(wid, "c", "cpu_us")), 0.7, "low")
    for wid, what in (("tcp-rr-1", "1 connection"), ("tcp-rr-8", "8 connections"), ("tcp-rr-32", "32 connections"),
                      ("tcp-rr-1000", "1,000 connections")):
        target(f"TCP rr, {what}: server CPU per request, async ÷ C (≤ 0.9)",
               ratio(m(wid, "async", "cpu_us"), m(wid, "c", "cpu_us")), 0.9, "low")
    target("TCP rr, 1,000 connections: p99 latency, async ÷ C (≤ 1.0)",
           ratio(m("tcp-rr-1000", "async", "p99"), m("tcp-rr-1000", "c", "p99")), 1.0, "low")
    cap = crr_cap(res.meta)
    ours = m("tcp-crr-4", "async", "per_s")
    for peer, name, limit in (("c", "C", 1.0), ("py-tcp", "Python threaded", 2.5)):
        theirs = m("tcp-crr-4", peer, "per_s")
        what = f"TCP crr, 4 flows: connections/s, async ÷ {name} (≥ {limit})"
        measured = ratio(ours, theirs)
        # Met is in doubt if their rate may have been held down by the limit; missed, if ours may.
        held, who = (theirs, f"{name}'s") if measured is not None and measured >= limit else (ours, "upcase's")
        if measured is not None and near_cap(held, cap):
            rows.append([what, f"{measured:.2f}×",
                         f"**inconclusive**: {who} rate is at the kernel's limit of about {cap:,.0f}/s (see the crr table)"])
        else:
            target(what, measured, limit, "high")
    target("TCP stream ASCII: MB/s, async ÷ C (≥ 1.5)",
           ratio(m("stream-ascii", "async", "sent_mb_s"), m("stream-ascii", "c", "sent_mb_s")), 1.5, "high")
    target("TCP stream: mixed Unicode MB/s ÷ ASCII MB/s, async (≥ 0.5)",
           ratio(m("stream-unicode", "async", "sent_mb_s"), m("stream-ascii", "async", "sent_mb_s")), 0.5, "high")
    for enc in ("latin1", "shift_jis"):
        target(f"TCP stream: {enc} server CPU per byte ÷ UTF-8's, async, mixed Unicode (≤ 1.5)",
               ratio(m(f"stream-{enc}", f"async-{enc}", "cpu_ns_per_byte"), m("stream-unicode", "async", "cpu_ns_per_byte")),
               1.5, "low")
    per_conn = m("idle", "async", "bytes_per_conn")
    idle = int(res.meta.get("idle_conns") or 10_000)
    rows.append([f"{idle:,} idle connections: user-space memory per connection, async (≤ 1 KiB)",
                 "—" if per_conn is None else f"{per_conn:,.0f} bytes",
                 "not measured" if per_conn is None else ("**met**" if per_conn <= 1024 else f"**missed** ({per_conn / 1024:.2f}× 1 KiB)")])
    return table(["target", "measured", "verdict"], rows)


def ratios(res):
    m = res.median
    rows = []
    specs = [
        ("udp-rr-1", "req/s", "per_s"), ("udp-rr-1", "server CPU/req", "cpu_us"),
        ("udp-rr-8", "req/s", "per_s"), ("udp-rr-8", "server CPU/req", "cpu_us"),
        ("udp-rr-32", "req/s", "per_s"), ("udp-rr-32", "server CPU/req", "cpu_us"),
        ("tcp-rr-1", "req/s", "per_s"), ("tcp-rr-1", "server CPU/req", "cpu_us"),
        ("tcp-rr-8", "req/s", "per_s"), ("tcp-rr-8", "server CPU/req", "cpu_us"),
        ("tcp-rr-32", "req/s", "per_s"), ("tcp-rr-32", "server CPU/req", "cpu_us"),
        ("tcp-rr-1000", "req/s", "per_s"), ("tcp-rr-1000", "server CPU/req", "cpu_us"), ("tcp-rr-1000", "p99", "p99"),
        ("tcp-crr-4", "connections/s", "per_s"), ("tcp-crr-4", "server CPU/conn", "cpu_us"),
        ("stream-ascii", "MB/s", "sent_mb_s"), ("stream-ascii", "server CPU/byte", "cpu_ns_per_byte"),
        ("idle", "bytes per connection", "bytes_per_conn"),
    ]
    for wid, what, key in specs:
        if wid not in res.workloads:
            continue
        python = "py-udp" if wid.startswith("udp") else "py-tcp"
        ours, c, py = m(wid, "async", key), m(wid, "c", key), m(wid, python, key)
        if ours is None and c is None:
            continue
        rows.append([wid, what, sig(ours), sig(c), f"{ratio(ours, c):.2f}" if ratio(ours, c) else "—",
                     sig(py), f"{ratio(ours, py):.2f}" if ratio(ours, py) else "—"])
    return table(["workload", "figure", "upcase async", "C epoll", "async ÷ C", "Python", "async ÷ Python"], rows)


COSTS = [("udp-rr-32", "request"), ("tcp-rr-32", "request"), ("tcp-crr-4", "connection")]


def costs(res):
    """What each server spends per request, from bench/costs.py's runs."""
    note = res.meta.get("costs_note", "")
    folder = res.dir / "costs"
    rows, notes = [], Notes()
    for wid, unit in COSTS:
        if wid not in res.workloads:
            continue
        for peer, status in res.workloads[wid]["rows"]:
            if status != "run":
                continue
            r = load_json(folder / wid / f"{peer}.json")
            if r is None:
                continue
            label = res.label(peer)
            if "error" in r:
                rows.append([wid, label, "—", "—", "—", "— " + notes.mark(r["error"])])
                continue
            n = r["requests"]
            rows.append([wid, label, f"{r['syscalls'] / n:.2f}", f"{r['context_switches'] / n:.2f}",
                         f"{r['allocations'] / n:.2f}", f"{n:,} {unit}s"])
    if not rows:
        return f"Not measured{': ' + note if note else ''}.\n"
    duration = res.meta.get("costs_duration", "?")
    intro = (
        "Counted by `bench/costs.py` over the server's every thread and child process, only while the load "
        f"ran: one untimed run of {duration} s per server, started afresh under `perf stat`. System calls: the "
        "`raw_syscalls:sys_enter` tracepoint. Context switches: each one a sleep and a wake-up. Allocations: "
        "calls to glibc's `malloc`, `calloc`, `realloc`, `posix_memalign`, `aligned_alloc` and `memalign` "
        "(uprobes; every server here allocates through glibc, Python run with `PYTHONMALLOC=malloc` so that its "
        "small objects count too). crr figures are per connection.\n\n")
    header = ["workload", "server", "system calls", "context switches", "allocations", "counted over"]
    return intro + table(header, rows) + notes.render()


def encodings(res):
    m = res.median
    rows = []
    base = m("stream-unicode", "async", "cpu_ns_per_byte")
    for wid, peer, name in (("stream-unicode", "async", "utf-8"), ("stream-latin1", "async-latin1", "latin1"),
                            ("stream-shift_jis", "async-shift_jis", "shift_jis")):
        if wid not in res.workloads:
            continue
        cost = m(wid, peer, "cpu_ns_per_byte")
        rows.append([name, number(m(wid, peer, "sent_mb_s"), 1), number(cost, 2),
                     f"{ratio(cost, base):.2f}×" if ratio(cost, base) else "—"])
    return table(["encoding (mixed Unicode text)", "MB/s in", "server CPU ns/byte in", "cost ÷ UTF-8's"], rows) if rows else ""


# ---------------------------------------------------------------------------------------------
# The machine


def first_line(command):
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def machine():
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return [
        ("CPU", model),
        ("cores", str(os.cpu_count())),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("rustc", first_line(["rustc", "--version"])),
        ("gcc", first_line(["gcc", "--version"])),
        ("python", platform.python_version()),
        ("socat", first_line(["sh", "-c", "socat -V 2>/dev/null | grep -m1 'socat version'"])),
        ("iperf3", first_line(["iperf3", "--version"])),
    ]


# ---------------------------------------------------------------------------------------------
# The document


def document(res):
    meta = res.meta
    runs = "1 run" if meta.get("rounds") == "1" else f"{meta.get('rounds')} runs"
    out = ["# Benchmarks", ""]
    out.append(
        "Generated by `bench/run` (do not edit above the analysis marker: it is rewritten). upcase against "
        "a C epoll server, the lecture's Python servers, socat + tr and iperf3, all on loopback, all loaded by "
        "the same load generator (`upcase bench`, which checks every reply). Each figure is the **median** of "
        f"{runs} of {meta.get('duration')} s, the peers taking turns (A B C A B C …).\n")
    out.append("## Machine and run\n")
    facts = machine() + [
        ("date", meta.get("date", "?")),
        ("command", f"`{meta.get('command', 'bench/run')}`"),
        ("upcase commit", meta.get("commit", "?")),
        ("load average (1, 5, 15 min) at start, at end", f"{meta.get('loadavg', '?')}; {meta.get('loadavg_end', '?')}"),
        ("whole run", f"{int(meta.get('elapsed', 0)) // 60} min {int(meta.get('elapsed', 0)) % 60} s"),
    ]
    out.append(table(["", ""], [[k, v] for k, v in facts], numbers=False))
    out.append("Peers, each on its own free port of 127.0.0.1:\n")
    out.append(table(["peer", "command"], [[p["label"], f"`{p['command'].replace(str(Path.cwd()) + '/', '')}`"]
                                           for p in res.peers.values() if p["command"]], numbers=False))
    idle = int(meta.get("idle_conns") or 10_000)
    out.append(f"""How to read these:

- **Server CPU** is the server process's user + system time over the run (`/proc/PID/stat`, 10 ms
  ticks) divided by the correct replies: on a shared machine, the steadier figure to compare servers
  by. socat's includes its forked children (counted once they exit). **Bench CPU** is the load
  generator's own share of a core: near 100 %, it is the bottleneck, not the server.
- The machine has few cores, shared by the server, the load generator (one thread, `--threads 1`)
  and whatever else runs: requests/s and latency are noisy; ratios between peers measured in
  alternation are steadier than absolute figures.
- The **C epoll server** (`bench/peers/epoll_upper.c`) uppercases **ASCII only** (16 bytes at a time,
  SSE2): far less work than Unicode, which flatters it. It is single-threaded, and its UDP loop does
  one `recvfrom` and one `sendto` per datagram (no `recvmmsg` batching). It runs the ASCII
  workloads only.
- The **Python servers** are the lecture's, limitations included (`tests/peers/`): the TCP one answers
  one request per connection, so of the TCP workloads only crr and idle connections apply.
- With **one flow**, every request wakes a sleeping server and then the bench: CPU per request then
  includes the cost of waking up (large in a virtual machine), and it swings with where the
  scheduler puts the two processes. The figures at 32 flows are steadier.
- **socat + tr** forks a process per connection; with `stdbuf -o0`, `tr` answers as data comes, so
  it also runs rr on one connection and the stream.
- **iperf3** moves bytes one way without looking at them (its figure is client → server); `upcase
  bench --pattern stream` sends and receives at once and checks every byte: the ceiling, not a peer.
- Stream: "in" is what the bench sent (what the server uppercased); Unicode replies are longer.
  Idle connections: resident memory (`VmRSS`, user space; socket buffers are the kernel's) grown
  while {idle:,} connections sat idle, per connection the server kept open; measured once per peer,
  on a freshly started server, which must then answer a few of them and release them all.
""")
    out.append("## Targets\n")
    out.append(targets(res))
    out.append("\n## upcase async against C and Python\n")
    out.append(ratios(res))
    out.append("\n## Cost per request: system calls, context switches, allocations\n")
    out.append(costs(res))
    enc = encodings(res)
    if enc:
        out.append("\n## Encodings: cost per byte against UTF-8\n")
        out.append(enc)
    out.append("\n## Workloads\n")
    for wid, w in res.workloads.items():
        flags = w["flags"]
        out.append(f"### {w['title']}\n")
        out.append(f"`{wid}`: `{flags}`\n" if flags else f"`{wid}`\n")
        out.append(workload_table(res, wid, w))
    return "\n".join(out).rstrip() + "\n"


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    res = Results(sys.argv[1])
    output = Path(sys.argv[2])
    analysis = DEFAULT_ANALYSIS
    if output.exists():
        previous = output.read_text()
        at = previous.find(ANALYSIS_MARKER)
        if at >= 0:
            analysis = previous[at:]
    output.write_text(document(res) + "\n" + analysis)
    return 0


if __name__ == "__main__":
    sys.exit(main())
