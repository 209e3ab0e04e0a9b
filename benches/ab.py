#!/usr/bin/env python3
"""Two builds of pygmy, alternated in the same minutes: the same-machine
comparison a change to the buy path or the read path needs.

    python3 benches/ab.py OLD_PYGMY NEW_PYGMY [--rounds 2] [--mix buy=1]
    python3 benches/ab.py OLD_PYGMY NEW_PYGMY --uncached [--rounds 4]

Buys (the default): for each round, each build in turn (the order flips
every round): `pygmy up` on a fresh folder, the books restocked, then
`pygmy load --mix MIX` at 1 client for 8 s and at 64 clients for 10 s.
Prints one line per build and round: throughput, p50 and p99 of each, and
the CPU time per request of the five nodes together (from /proc).

`--uncached`: the one-hop baseline (examples/baseline.rs) and one cluster
per build with `cache_capacity = 0`, all started once; each round runs 8 s
of `--mix lookup=1` at 64 clients against the baseline, then each build.
Prints each run's throughput, its ratio to the baseline run just before
it, and the CPU time per request of every process (from /proc).

Build the old one from a worktree, e.g. `git worktree add /tmp/old REV &&
(cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target cargo build --release
--bin pygmy)`. The baseline is this checkout's
target/release/examples/baseline (`cargo build --release --example
baseline`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402  (the cluster and load helpers)


def run(binary: Path, mix: str, port: int) -> str:
    report.PYGMY = binary
    folder = Path(tempfile.mkdtemp(prefix="pygmy-ab-"))
    cluster = report.Cluster(folder, port)
    cluster.start()
    try:
        report.restock(cluster)
        parts = []
        for clients, seconds in ((1, 8.0), (64, 10.0)):
            got = report.load(cluster.url, mix, clients, seconds, cluster.pids())
            op = got["all"]
            # CPU per request of all five nodes together (from /proc): on a
            # shared, busy machine it moves less than throughput does.
            cpu = sum(got["cpu_us_per_request"].values())
            parts.append(f"{clients}c {op['throughput']:,.0f}/s p50 {op['p50_ms']:.3f} ms "
                         f"p99 {op['p99_ms']:.2f} ms cpu {cpu:.0f} us/op")
        return " | ".join(parts)
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def buys(builds: list[tuple[str, Path]], args) -> None:
    port = report.free_ports(5)
    for r in range(args.rounds):
        for name, binary in builds if r % 2 == 0 else builds[::-1]:
            print(f"{name} (round {r + 1}): {run(binary, args.mix, port)}", flush=True)


def uncached(builds: list[tuple[str, Path]], args) -> None:
    ports = report.free_ports(2 + 5 * len(builds))
    leaf = report.Baseline(ports)
    hop = report.Baseline(ports + 1, hop_to=ports)
    clusters: list[tuple[str, Path, report.Cluster, Path]] = []
    try:
        for i, (name, binary) in enumerate(builds):
            report.PYGMY = binary
            folder = Path(tempfile.mkdtemp(prefix="pygmy-ab-"))
            cluster = report.Cluster(folder, ports + 2 + 5 * i)
            cluster.start()  # writes pygmy.toml, then again with the cache off
            cluster.stop()
            cluster.set_cache_capacity(0)
            cluster.start()
            clusters.append((name, binary, cluster, folder))

        def once(url: str, pids: dict[str, int]) -> tuple[float, str]:
            got = report.load(url, "lookup=1", 64, 8.0, pids)
            cpu = ", ".join(f"{p} {us:.1f}" for p, us in got["cpu_us_per_request"].items())
            return got["ops"]["lookup"]["throughput"], cpu

        hop_pids = {"hop": hop.proc.pid, "hop leaf": leaf.proc.pid}
        report.load(hop.url, "lookup=1", 64, 2.0)  # warm-up
        for _, binary, cluster, _ in clusters:
            report.PYGMY = binary
            report.load(cluster.url, "lookup=1", 64, 2.0)
        for r in range(args.rounds):
            base, cpu = once(hop.url, hop_pids)
            print(f"one-hop (round {r + 1}): {base:,.0f}/s; CPU us/request: {cpu}", flush=True)
            for name, binary, cluster, _ in clusters:
                report.PYGMY = binary
                got, cpu = once(cluster.url, cluster.pids())
                print(f"{name} (round {r + 1}): {got:,.0f}/s, {got / base:.2f} of one-hop; "
                      f"CPU us/request: {cpu}", flush=True)
    finally:
        for _, binary, cluster, folder in clusters:
            report.PYGMY = binary
            cluster.stop()
            shutil.rmtree(folder, ignore_errors=True)
        hop.stop()
        leaf.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--mix", default="buy=1")
    p.add_argument("--uncached", action="store_true",
                   help="uncached lookups against the one-hop baseline, not buys")
    args = p.parse_args()
    builds = [("old", args.old.resolve()), ("new", args.new.resolve())]
    (uncached if args.uncached else buys)(builds, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
