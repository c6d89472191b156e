#!/usr/bin/env python3
"""What a server spends per request: system calls, context switches and allocations.

Usage: bench/costs.py RESULTS UPCASE DURATION WORKLOAD:PEER...

For each WORKLOAD:PEER, starts the peer afresh on a free port under `perf stat`, with counting
switched off; switches it on for one `upcase bench` run of DURATION seconds (the workload's flags,
from RESULTS/plan.tsv) and off again; stops the peer; and writes RESULTS/costs/WORKLOAD/PEER.json.
bench/run calls it after the timed runs, and bench/report.py turns the files into a table.

Counted over the peer's every thread and child process (perf stat follows them), only while the
load runs:
- system calls: the `raw_syscalls:sys_enter` tracepoint;
- context switches: the `context-switches` software event (each one a sleep and a wake-up);
- allocations: calls to glibc's malloc, calloc, realloc, posix_memalign, aligned_alloc and
  memalign, through uprobes this script adds (and removes again). Every peer here allocates
  through glibc: Rust's default allocator, C, socat and tr call it directly, and Python is run with
  PYTHONMALLOC=malloc so that its small objects, which it otherwise carves from its own pools,
  are counted too.

The probes make each allocation cost a trap, so these runs are not timed: figures of time come
from bench/run's own runs. Peers are described by bench/run in RESULTS/peers/NAME.argv (one
argument per line, `{port}` for the port) and NAME.ready (a pattern its output shows when it is
ready; empty: when its TCP port accepts a connection). A pair that cannot be measured gets a
JSON file with an "error" saying why, and the script goes on.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SYSCALLS = "raw_syscalls:sys_enter"
SWITCHES = "context-switches"
ALLOCATORS = ["malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc", "memalign"]
READY_WITHIN_S = 10
STOP_WITHIN_S = 15


def free_port():
    """A port free for both TCP and UDP on 127.0.0.1 (the peers serve both on one port)."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


def libc_of(binary):
    """The path of the glibc that `binary` loads."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        match = re.search(r"libc\.so\.6 => (\S+)", line)
        if match:
            return os.path.realpath(match.group(1))
    raise RuntimeError(f"cannot find the libc of {binary} in `ldd` output")


class Probes:
    """Uprobes on glibc's allocation functions, removed again by `remove`."""

    def __init__(self, libc):
        self.events, self.added = [], []
        listed = subprocess.run(["perf", "probe", "-l"], capture_output=True, text=True, check=False).stdout
        for function in ALLOCATORS:
            event = f"probe_libc:{function}"
            if re.search(rf"^\s*{re.escape(event)}\s", listed, re.MULTILINE):
                self.events.append(event)
                continue
            added = subprocess.run(["perf", "probe", "-q", "-x", libc, "--add", function],
                                   capture_output=True, text=True, check=False)
            if added.returncode == 0:
                self.events.append(event)
                self.added.append(event)
            elif function == "malloc":
                raise RuntimeError(f"cannot probe malloc in {libc}: {added.stderr.strip() or 'perf probe failed'}")

    def remove(self):
        for event in self.added:
            subprocess.run(["perf", "probe", "-q", "-d", event], capture_output=True, check=False)


def wait_ready(process, log, ready, port):
    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited before it was ready: {tail(log)}")
        if ready:
            if re.search(ready, log.read_text(errors="replace"), re.MULTILINE):
                return
        else:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"not ready after {READY_WITHIN_S} s")


def tail(path):
    lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return lines[-1] if lines else "no output"


class Control:
    """perf stat's control FIFOs: `enable` and `disable`, each acknowledged."""

    def __init__(self, folder):
        self.ctl, self.ack = folder / "ctl.fifo", folder / "ack.fifo"
        for fifo in (self.ctl, self.ack):
            fifo.unlink(missing_ok=True)
            os.mkfifo(fifo)
        # Read and write, so that opening never waits for perf's own end.
        self.ctl_fd = os.open(self.ctl, os.O_RDWR)
        self.ack_fd = os.open(self.ack, os.O_RDWR)

    def send(self, command):
        os.write(self.ctl_fd, command.encode() + b"\n")
        deadline = time.monotonic() + 5
        reply = b""
        os.set_blocking(self.ack_fd, False)
        while b"ack" not in reply and time.monotonic() < deadline:
            try:
                reply += os.read(self.ack_fd, 64)
            except BlockingIOError:
                time.sleep(0.01)
        if b"ack" not in reply:
            raise RuntimeError(f"perf stat did not acknowledge `{command}`")

    def close(self):
        for fd in (self.ctl_fd, self.ack_fd):
            os.close(fd)
        for fifo in (self.ctl, self.ack):
            fifo.unlink(missing_ok=True)


def children(pid):
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def parse_counts(path):
    """perf stat -x, output: COUNT,UNIT,EVENT,... per line."""
    counts = {}
    for line in path.read_text().splitlines():
        fields = line.split(",")
        if len(fields) < 3 or line.startswith("#"):
            continue
        try:
            counts[fields[2]] = int(fields[0])
        except ValueError:
            counts[fields[2]] = None  # <not counted>, <not supported>
    return counts


def measure(results, upcase, duration, workload, peer, flags, events):
    folder = results / "costs" / workload
    folder.mkdir(parents=True, exist_ok=True)
    peers = results / "peers"
    argv_template = (peers / f"{peer}.argv").read_text().splitlines()
    ready = (peers / f"{peer}.ready").read_text().strip() if (peers / f"{peer}.ready").exists() else ""
    port = free_port()
    argv = [arg.replace("{port}", str(port)) for arg in argv_template]
    counts_file, log = folder / f"{peer}.perf", folder / f"{peer}.log"
    control = Control(folder)
    env = dict(os.environ, PYTHONMALLOC="malloc")
    perf = subprocess.Popen(
        ["perf", "stat", "-D", "-1", "--control", f"fifo:{control.ctl},{control.ack}", "-x,",
         "-o", str(counts_file), "-e", ",".join(events), "--", *argv],
        stdout=log.open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        start_new_session=True)
    result = {"workload": workload, "peer": peer, "command": " ".join(argv)}
    try:
        wait_ready(perf, log, ready, port)
        control.send("enable")
        bench = subprocess.run(
            [upcase, "bench", "--to", f"127.0.0.1:{port}", "--duration", f"{duration}s", *flags.split(),
             "--json"], capture_output=True, text=True, timeout=duration + 60, check=False)
        control.send("disable")
        report = json.loads(bench.stdout) if bench.stdout.strip() else {}
        if not report.get("ok"):
            raise RuntimeError(report.get("first_problem") or bench.stderr.strip().splitlines()[-1:]
                               or f"upcase bench exited {bench.returncode}")
        result["requests"] = report["requests"]
    except (RuntimeError, ValueError, KeyError, subprocess.SubprocessError) as e:
        result["error"] = str(e)
    finally:
        for pid in children(perf.pid):
            os.kill(pid, signal.SIGTERM)
        try:
            perf.wait(timeout=STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            os.killpg(perf.pid, signal.SIGKILL)
            perf.wait()
            result.setdefault("error", f"did not stop within {STOP_WITHIN_S} s of SIGTERM")
        control.close()
    if "error" not in result:
        counts = parse_counts(counts_file) if counts_file.exists() else {}
        missing = [e for e in events if counts.get(e) is None]
        if missing:
            result["error"] = f"perf stat counted nothing for {', '.join(missing)}"
        else:
            result["syscalls"] = counts[SYSCALLS]
            result["context_switches"] = counts[SWITCHES]
            result["allocations"] = sum(counts[e] for e in events if e.startswith("probe_libc:"))
            result["by_event"] = counts
    (folder / f"{peer}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def main():
    if len(sys.argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    results, upcase, duration = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    pairs = [arg.split(":", 1) for arg in sys.argv[4:]]
    plan = {}
    for line in (results / "plan.tsv").read_text().splitlines():
        fields = line.split("\t")
        plan[fields[0]] = fields[3]
    try:
        probes = Probes(libc_of(upcase))
    except (RuntimeError, OSError) as e:
        for workload, peer in pairs:
            folder = results / "costs" / workload
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{peer}.json").write_text(json.dumps({"workload": workload, "peer": peer, "error": str(e)}))
        print(f"costs: not measured: {e}", file=sys.stderr)
        return 0
    try:
        events = [SYSCALLS, SWITCHES] + probes.events
        for workload, peer in pairs:
            r = measure(results, upcase, duration, workload, peer, plan[workload], events)
            if "error" in r:
                print(f"    {workload:<16} {peer:<10} failed: {r['error']}", flush=True)
            else:
                n = r["requests"]
                print(f"    {workload:<16} {peer:<10} {n:>9,} requests: {r['syscalls'] / n:6.2f} system calls, "
                      f"{r['context_switches'] / n:5.2f} context switches, {r['allocations'] / n:6.2f} allocations "
                      "per request", flush=True)
    finally:
        probes.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
