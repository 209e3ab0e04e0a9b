#!/usr/bin/env python3
"""Two builds of pygmy, alternated on fresh clusters: the same-machine,
same-minutes comparison a change to the buy path needs.

    python3 benches/ab.py OLD_PYGMY NEW_PYGMY [--rounds 2] [--mix buy=1]

For each round, each build in turn (the order flips every round): `pygmy up`
on a fresh folder, the books restocked, then `pygmy load --mix MIX` at 1
client for 8 s and at 64 clients for 10 s. Prints one line per build and
round: throughput, p50 and p99 of each. Build the old one from a worktree,
e.g. `git worktree add /tmp/old REV && (cd /tmp/old && CARGO_TARGET_DIR=
/tmp/old-target cargo build --release --bin pygmy)`.
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
            got = report.load(cluster.url, mix, clients, seconds)
            op = got["all"]
            parts.append(f"{clients}c {op['throughput']:,.0f}/s p50 {op['p50_ms']:.3f} ms "
                         f"p99 {op['p99_ms']:.2f} ms")
        return " | ".join(parts)
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--mix", default="buy=1")
    args = p.parse_args()
    builds = [("old", args.old.resolve()), ("new", args.new.resolve())]
    port = report.free_ports(5)
    for r in range(args.rounds):
        for name, binary in builds if r % 2 == 0 else builds[::-1]:
            print(f"{name} (round {r + 1}): {run(binary, args.mix, port)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
