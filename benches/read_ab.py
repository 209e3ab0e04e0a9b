#!/usr/bin/env python3
"""Two builds of pygmy against the bare baselines, reads only, in the same
minutes: the same-machine comparison a change to the front end's per-request
cost needs (issue 14's "reads keep their ratios to bare").

    python3 benches/read_ab.py OLD_PYGMY NEW_PYGMY BASELINE [--rounds 3] [--duration 5] [--counts 0]

Starts, once: the bare hyper server and the one-hop server in front of a
second bare one (BASELINE is examples/baseline.rs built in release), and for
each build a `pygmy up` cluster with the cache on and one with
`cache_capacity = 0`. Then, per round and per mix (`lookup=1`, `search=1`,
64 keep-alive clients, `--duration` s each, after one untimed 1 s warm-up of
every target): cached reads against the bare server (bare, old, new, in an
order that rotates every round), then uncached reads against the one-hop
server the same way. Every run is one `pygmy load` of the OLD build (the
same load generator for all targets).

Prints one line per run: throughput, its ratio to the baseline run of the
same round and mix, the CPU time per request of the server processes (from
/proc) and their sum as a multiple of the baseline's in the same round (the
steadier figure on a shared machine), and the load average before it; then
the medians per target.
With `--counts N`, then N more rounds of the same runs under `perf stat`
(Linux perf; software events only, so it works in a VM without hardware
counters): the server processes' system calls, context switches and CPU
time per request. Counts, unlike times, barely move with the machine's
other load, so they show a change in per-request work on a busy machine.

Reuses report.py's cluster and load helpers. Times are for reading only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402  (the cluster and load helpers)

LOADED = 64


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("baseline", type=Path)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--counts", type=int, default=0,
                   help="rounds under perf stat after the timed ones (0)")
    args = p.parse_args()
    builds = [("old", args.old.resolve()), ("new", args.new.resolve())]
    report.BASELINE = args.baseline.resolve()
    loadgen = builds[0][1]

    def load(url: str, mix: str, seconds: float, pids: dict | None = None) -> dict:
        report.PYGMY = loadgen
        return report.load(url, mix, LOADED, seconds, pids)

    ports = report.free_ports(3 + 10 * len(builds))
    bare = report.Baseline(ports)
    leaf = report.Baseline(ports + 1)
    hop = report.Baseline(ports + 2, hop_to=ports + 1)
    started: list[tuple[report.Cluster, Path, Path]] = []
    try:
        cached, uncached = [], []
        for i, (name, binary) in enumerate(builds):
            for j, capacity in enumerate((None, 0)):
                report.PYGMY = binary
                folder = Path(tempfile.mkdtemp(prefix="pygmy-readab-"))
                cluster = report.Cluster(folder, ports + 3 + 10 * i + 5 * j)
                cluster.start()
                started.append((cluster, folder, binary))
                if capacity is not None:
                    cluster.stop()
                    cluster.set_cache_capacity(capacity)
                    cluster.start()
                target = (name, cluster.url, cluster.pids())
                (cached if capacity is None else uncached).append(target)
        groups = [
            ("cached", ("bare", bare.url, {"bare": bare.proc.pid}), cached),
            ("uncached", ("one-hop", hop.url, {"hop": hop.proc.pid, "leaf": leaf.proc.pid}),
             uncached),
        ]
        print(f"load average at start: {os.getloadavg()}", flush=True)
        for _, base, targets in groups:
            for _, url, _ in [base, *targets]:
                for mix in ("lookup=1", "search=1"):
                    load(url, mix, 1.0)
        results: dict[tuple[str, str, str], list[tuple[float, float, dict]]] = {}
        for r in range(args.rounds):
            for kind, base, targets in groups:
                for mix in ("lookup=1", "search=1"):
                    order = [base, *targets]
                    order = order[r % len(order):] + order[:r % len(order)]
                    got = {}
                    for name, url, pids in order:
                        got[name] = load(url, mix, args.duration, pids)
                    def servers(run: dict) -> dict:
                        return {k: v for k, v in run["cpu_us_per_request"].items()
                                if k != "load generator"}

                    base_tp = got[base[0]]["all"]["throughput"]
                    base_cpu = sum(servers(got[base[0]]).values())
                    for name, _, _ in [base, *targets]:
                        run = got[name]
                        tp = run["all"]["throughput"]
                        cpu = servers(run)
                        # All the server processes' CPU per request, as a
                        # multiple of the baseline's in the same round.
                        cpu_x = sum(cpu.values()) / base_cpu if base_cpu else float("nan")
                        results.setdefault((kind, mix, name), []).append(
                            (tp, tp / base_tp, cpu_x, cpu))
                        cpus = ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
                        print(f"{kind} {mix} round {r + 1} {name}: {tp:,.0f}/s, "
                              f"{tp / base_tp:.2f} of {base[0]}; servers' CPU {cpu_x:.2f}x "
                              f"{base[0]}'s; CPU us/request: {cpus} "
                              f"(load {run['loadavg_before']:.1f})", flush=True)
        counted: dict[tuple[str, str, str], list[dict]] = {}
        for r in range(args.counts):
            for kind, base, targets in groups:
                for mix in ("lookup=1", "search=1"):
                    for name, url, pids in [base, *targets]:
                        got = perf_counts(loadgen, url, mix, args.duration, pids)
                        counted.setdefault((kind, mix, name), []).append(got)
                        print(f"counts {kind} {mix} round {r + 1} {name}: "
                              + ", ".join(f"{k} {v:.2f}" for k, v in got.items()), flush=True)
        print(f"load average at end: {os.getloadavg()}", flush=True)
        print("\nmedians:")
        for (kind, mix, name), runs in results.items():
            tp = statistics.median(t for t, _, _, _ in runs)
            ratio = statistics.median(q for _, q, _, _ in runs)
            cpu_x = statistics.median(x for _, _, x, _ in runs)
            cpu = {k: statistics.median(c[k] for *_, c in runs if k in c) for k in runs[0][3]}
            cpus = ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
            print(f"{kind} {mix} {name}: {tp:,.0f}/s, ratio {ratio:.2f}; servers' CPU "
                  f"{cpu_x:.2f}x; CPU us/request {cpus}")
        if counted:
            print("\nper request, servers' processes, medians:")
            for (kind, mix, name), runs in counted.items():
                med = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
                print(f"{kind} {mix} {name}: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in med.items()))
    finally:
        for cluster, folder, binary in started:
            report.PYGMY = binary
            cluster.stop()
            shutil.rmtree(folder, ignore_errors=True)
        for server in (hop, leaf, bare):
            server.stop()
    return 0


def perf_counts(loadgen: Path, url: str, mix: str, seconds: float, pids: dict) -> dict:
    """One `pygmy load` run at LOADED clients under `perf stat` attached to
    the server processes `pids`: system calls, context switches and CPU
    microseconds per request."""
    events = ["raw_syscalls:sys_enter", "context-switches", "task-clock"]
    cmd = ["perf", "stat", "-x", ",", "-e", ",".join(events),
           "-p", ",".join(str(pid) for pid in pids.values()), "--",
           str(loadgen), "load", "--url", url, "--mix", mix, "--clients", str(LOADED),
           "--duration", f"{int(seconds * 1000)}ms", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    if done.returncode != 0:
        raise report.Failed(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr[-2000:]}")
    count = max(json.loads(done.stdout)["total"]["count"], 1)
    values = {}
    for line in done.stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 3 and fields[2] in events and fields[0] not in ("", "<not counted>"):
            values[fields[2]] = float(fields[0])
    return {
        "syscalls": values.get("raw_syscalls:sys_enter", float("nan")) / count,
        "context switches": values.get("context-switches", float("nan")) / count,
        # perf prints task-clock in milliseconds.
        "CPU us": values.get("task-clock", float("nan")) * 1000 / count,
    }


if __name__ == "__main__":
    raise SystemExit(main())
