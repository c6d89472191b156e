#!/usr/bin/env python3
"""Memory per idle TCP connection, for bench/run.

Opens N connections to a server and leaves them idle, then reads how much the server's resident
memory (VmRSS: user space only; socket buffers are the kernel's) grew, per connection it holds.
Then checks that a few of the idle connections are still answered, closes them all, waits until
the server has released them, and prints one JSON object. Exit status: 0 measured (even if some were refused or not answered: that is in
the JSON), 2 could not measure at all.

Usage: idle.py --to HOST:PORT --pid PID [--conns 10000] [--check 10]
"""
import argparse
import json
import os
import resource
import socket
import sys
import time

# How long to wait for the server to release closed connections before giving up on it.
RELEASE_PATIENCE_S = 30


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def settle_fds(pid, patience=3.0):
    """The server's descriptor count once it has not changed for 0.3 s (or after `patience`)."""
    deadline = time.monotonic() + patience
    last, stable_since = open_fds(pid), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - stable_since < 0.3:
        time.sleep(0.05)
        now = open_fds(pid)
        if now != last:
            last, stable_since = now, time.monotonic()
    return last


def accept_queue(port):
    """Connections waiting in the kernel's accept queue of the listener on `port` (the rx_queue
    of its LISTEN entry in /proc/net/tcp, where listeners come first); None if not found."""
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[3] != "0A":
                return None
            if int(fields[1].split(":")[1], 16) == port:
                return int(fields[4].split(":")[1], 16)
    return None


def exchange(sock, message, timeout=2.0):
    """Sends `message` and reads as many bytes back; True if they are its ASCII uppercase."""
    sock.settimeout(timeout)
    sock.sendall(message)
    reply = b""
    while len(reply) < len(message):
        chunk = sock.recv(len(message) - len(reply))
        if not chunk:
            break
        reply += chunk
    return reply == message.upper()


def is_closed(sock):
    """Whether the server has closed this connection (without reading any data)."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--to", required=True, help="HOST:PORT")
    parser.add_argument("--pid", type=int, required=True, help="the server's process id")
    parser.add_argument("--conns", type=int, default=10_000)
    parser.add_argument("--check", type=int, default=10, help="idle connections to check at the end")
    args = parser.parse_args()
    host, port = args.to.rsplit(":", 1)
    addr = (host, int(port))

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.conns + 100:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < args.conns + 100:
        print(f"open-file limit {soft} is too low for {args.conns} connections (raise ulimit -n)",
              file=sys.stderr)
        return 2

    # A first round trip, so that what a server allocates once (on its first connection) is not
    # counted against the idle ones.
    with socket.create_connection(addr, timeout=5) as warm:
        warm.sendall(b"warm up")
        warm.shutdown(socket.SHUT_WR)
        while warm.recv(65536):
            pass
    fds_before = settle_fds(args.pid)
    threads_before = threads(args.pid)
    rss_before = rss_kib(args.pid)

    started = time.monotonic()
    streams, refused, first_error = [], 0, None
    for i in range(args.conns):
        # Connecting faster than the server accepts overflows its accept queue (the lecture's
        # Python server listens with a backlog of 128), and each dropped SYN costs a second's
        # retry: keep the queue short instead.
        if i % 16 == 0:
            patience = time.monotonic() + 5
            while (accept_queue(addr[1]) or 0) > 64 and time.monotonic() < patience:
                time.sleep(0.001)
        try:
            streams.append(socket.create_connection(addr, timeout=5))
        except OSError as e:
            refused += 1
            first_error = first_error or str(e)
    opened_s = time.monotonic() - started
    # Wait until the server has accepted them all (its descriptor count stops changing; a server
    # over its own limit closes some at once), then until it has closed those it will not keep.
    settle_fds(args.pid, patience=30)
    time.sleep(0.3)
    held_fds = open_fds(args.pid) - fds_before
    rss_after = rss_kib(args.pid)

    still_open = [s for s in streams if not is_closed(s)]
    step = max(1, len(still_open) // max(1, args.check))
    checked = still_open[::step][: args.check]
    answered = 0
    for sock in checked:
        try:
            answered += exchange(sock, b"still there?")
        except OSError:
            pass
    threads_now = threads(args.pid)
    closed_at = time.monotonic()
    for sock in streams:
        sock.close()
    # Wait until the server has let go of them all (a thread per connection can take seconds to
    # wind down), so that whatever runs next does not measure the clean-up.
    deadline = closed_at + RELEASE_PATIENCE_S
    released = False
    while not released and time.monotonic() < deadline:
        released = open_fds(args.pid) <= fds_before and threads(args.pid) <= threads_before
        if not released:
            time.sleep(0.05)
    released_s = time.monotonic() - closed_at

    grown = max(0, rss_after - rss_before) * 1024
    print(json.dumps({
        "conns": args.conns,
        "opened": len(streams),
        "refused": refused,
        "first_error": first_error,
        "open_s": round(opened_s, 3),
        "held": len(still_open),
        "server_fds_added": held_fds,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "bytes_per_conn": grown / len(still_open) if still_open else None,
        "checked": len(checked),
        "answered": answered,
        "threads_while_idle": threads_now,
        "released_s": round(released_s, 2),
        "released_all": released,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
