#!/usr/bin/env python3
"""Where a buy's CPU time goes: perf on a `pygmy up` cluster under buys.

    python3 benches/profile_buys.py [--seconds 10] [--clients 64] [--perf-data /tmp/buy.perf]

Starts a fresh cluster (benches/report.py's `Cluster`, restocked so no buy
sells out), runs `pygmy load --mix buy=1` at --clients, and after 3 s of
warm-up records the five nodes with `perf record -F 499` for --seconds.
It prints the buys/s, every node's CPU time per buy (/proc/PID/stat) and
the samples grouped by where they fall (kernel networking, wake-ups, file
writes; hyper, tokio, malloc, serde_json, Pygmy's own code), as
docs/BENCHMARKS.md shows them. Needs `perf` (Debian: linux-perf) and the
release binaries (`cargo build --release --bins`); the cluster is stopped
at the end, on an error too. Run it before and after a change to the buy
path, on the same machine at about the same load.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402  (the cluster helpers)

GROUPS = [
    # (name, kernel?, pattern), first match wins
    ("kernel: loopback TCP/IP", True,
     r"tcp|ip_|inet|skb|nf_|netif|dev_|sock|ipt_|napi|loopback|sendmsg|recvmsg|neigh|conntrack|xmit"),
    ("kernel: file writes and fsync", True,
     r"ext4|jbd2|blk|bio|fsync|iowrite|virtio|vfs|file|fdget|page|submit|nvme|_copy_from_iter|write"),
    ("kernel: wake-ups, scheduling, epoll, futex", True,
     r"sched|switch|futex|wake|epoll|hrtimer|spin|irq|enqueue|dequeue|update_|pick_|select_task"),
    ("kernel: the rest", True, r""),
    ("malloc and free", False, r"malloc|free|_int_|unlink_chunk|consolidate|realloc|tcache"),
    ("memcpy / memcmp", False, r"memmove|memcpy|memset|memcmp"),
    ("serde_json", False, r"serde"),
    ("hyper and http", False, r"hyper|http::|httparse|h1::"),
    ("tokio", False, r"tokio"),
    ("Pygmy: state machines, archive, digests", False, r"pygmy_core::state|chain_digest|archive|imbl"),
    ("Pygmy: replication and log", False, r"pygmy_core::(replication|storage|files)"),
    ("Pygmy: front end", False, r"pygmy_core::frontend"),
    ("Pygmy: the rest (wire, server glue)", False, r"pygmy"),
    ("formatting", False, r"fmt|format|Display"),
    ("the rest (futures, bytes, clocks, ...)", False, r""),
]


def grouped(perf_data: Path) -> list[tuple[str, float]]:
    out = subprocess.run(
        ["perf", "report", "-i", str(perf_data), "--no-children", "--sort", "dso,symbol",
         "--stdio", "-g", "none"], capture_output=True, text=True, check=True).stdout
    shares: collections.Counter = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)", line)
        if not m:
            continue
        pct, kernel, symbol = float(m.group(1)), m.group(3) == "k", m.group(4)
        for name, in_kernel, pattern in GROUPS:
            if in_kernel == kernel and re.search(pattern, symbol):
                shares[name] += pct
                break
    return shares.most_common()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="seconds recorded (10)")
    p.add_argument("--clients", type=int, default=64, help="load clients (64)")
    p.add_argument("--perf-data", type=Path, default=Path("/tmp/buy.perf"),
                   help="where perf writes its samples (/tmp/buy.perf)")
    args = p.parse_args()
    if shutil.which("perf") is None:
        print("profile_buys.py: no `perf` on PATH (Debian: apt-get install linux-perf)",
              file=sys.stderr)
        return 1
    folder = Path(tempfile.mkdtemp(prefix="pygmy-profile-"))
    cluster = report.Cluster(folder, report.free_ports(6))
    load = None
    try:
        cluster.start()
        report.restock(cluster)
        pids = cluster.pids()
        total = args.seconds + 6
        load = subprocess.Popen(
            [str(report.PYGMY), "load", "--url", cluster.url, "--mix", "buy=1", "--clients",
             str(args.clients), "--duration", f"{int(total * 1000)}ms", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(3)
        before = {n: report.cpu_s(pid) for n, pid in pids.items()}
        started = time.monotonic()
        subprocess.run(["perf", "record", "-q", "-F", "499", "-o", str(args.perf_data), "-p",
                        ",".join(str(pid) for pid in pids.values()), "--", "sleep",
                        str(args.seconds)], check=True)
        window = time.monotonic() - started
        after = {n: report.cpu_s(pid) for n, pid in pids.items()}
        out, _ = load.communicate(timeout=total + 60)
        load = None
        rate = report.json.loads(out)["total"]["throughput"]
        buys = rate * window
        print(f"{rate:,.0f} buys/s at {args.clients} clients; load average "
              f"{report.os.getloadavg()[0]:.1f}")
        print("CPU µs per buy: " + ", ".join(
            f"{n} {(after[n] - before[n]) / buys * 1e6:.0f}" for n in pids
            if before[n] is not None and after[n] is not None)
            + f"; all nodes {sum(after[n] - before[n] for n in pids) / buys * 1e6:.0f}")
        print("| where | share of the nodes' CPU |\n|---|---|")
        for name, share in grouped(args.perf_data):
            print(f"| {name} | {share:.1f} % |")
    finally:
        if load is not None:
            load.kill()
            load.wait()
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except report.Failed as e:
        print(f"profile_buys.py: {e}", file=sys.stderr)
        sys.exit(1)
