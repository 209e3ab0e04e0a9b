#!/usr/bin/env python3
"""Pygmy's cluster against a bare hyper server: one reproducible command.

    python3 benches/report.py [--duration 10] [--out docs/bench] [--buys-only] [--no-postgres]

It builds the release binaries, starts a `pygmy up` cluster (front end, 2
catalog and 2 order replicas, fsync on) and the baselines of
examples/baseline.rs (a bare hyper server, and its one-hop variant in front
of a second bare server) on free ports, and drives each with the same
`pygmy load` settings. It measures:

- cached lookup and search through the front end against the bare server
  (64 keep-alive clients for throughput, 1 client for the unloaded p50);
- uncached lookup and search (the cluster restarted with
  `cache_capacity = 0` in DIR/pygmy.toml) against the one-hop baseline;
- buys (2+2 replicas, fsync on) at 64 clients and at 1 client;
- a mixed load (the original client's session) and then every node's RSS;
- the original's three experiments: response time with and without the
  cache, the miss after an invalidation, a crash with failover and resync
  (`pygmy chaos --target catalog-1`);
- the simulation's speed (`pygmy-sim --seeds 0..200`);
- the same buys on PostgreSQL with a synchronous streaming standby
  (benches/pg_compare.py), interleaved with Pygmy's, when PostgreSQL's
  binaries are installed (Debian: `apt-get install postgresql`); the report
  says plainly when they are not. Beside every buy figure: the CPU time per
  buy of all the servers' processes, from /proc.

`--buys-only` runs just the buys (Pygmy on a fresh store and PostgreSQL)
and the fsync probe: a few minutes instead of half an hour.

Throughput comparisons run interleaved (bare, Pygmy, bare, Pygmy, ...) and
report the median of --repeats runs, so a burst of other work on the machine
hits both sides alike. The report is written as Markdown and JSON to --out,
and the Markdown is printed. Every process it starts is stopped at the end,
on error or Ctrl-C too (the cluster with SIGTERM, as `pygmy up` expects).

Python 3.11 standard library only. Times are for reading, never for gating.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Where cargo puts the binaries: CARGO_TARGET_DIR when set, as cargo does.
RELEASE = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target").resolve() / "release"
PYGMY = RELEASE / "pygmy"
SIM = RELEASE / "pygmy-sim"
BASELINE = RELEASE / "examples" / "baseline"

# The targets.
CACHED_THROUGHPUT_MIN = 0.85  # of the bare server's
CACHED_P50_MAX = 1.3  # × the bare server's unloaded p50
UNCACHED_THROUGHPUT_MIN = 0.80  # of the one-hop baseline's
BUYS_MIN = 5000.0  # per second at 64 clients
BUY_P99_MAX_MS = 20.0
BUY_P50_MAX_MS = 1.5  # unloaded
PG_BUYS_MIN = 8.0  # × PostgreSQL's buys/s with a synchronous standby (issue 20)
RSS_MAX_MB = 30.0

LOADED = 64  # clients for the throughput runs
UNLOADED = 1  # client for the unloaded p50
SIM_SEEDS = "0..200"
RESTOCK = 10_000_000  # copies added to each book before the buy runs


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Failed(Exception):
    """A step of the benchmark could not be done."""


class Done(Exception):
    """The runs asked for (--buys-only) are done."""


# --------------------------------------------------------------------------
# Processes


def free_ports(count: int) -> int:
    """A base port with `count` consecutive ports free on 127.0.0.1.

    Drawn below Linux's ephemeral range (32768 and up): a port the kernel
    hands out could be taken by an outgoing connection (the load
    generator's own) between this check and the server's bind, which once
    failed a run with "nothing listens on port …"."""
    draw = random.Random()
    for _ in range(200):
        base = draw.randrange(20000, 32000 - count)
        held = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise Failed(f"found no {count} consecutive free ports")


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise Failed(f"nothing listens on port {port} after {timeout} s")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return False


class Baseline:
    """One examples/baseline.rs server."""

    def __init__(self, port: int, hop_to: int | None = None):
        cmd = [str(BASELINE), "--port", str(port)]
        if hop_to is not None:
            cmd += ["--hop-to", f"127.0.0.1:{hop_to}"]
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(port)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # the baseline stops on Ctrl-C
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Cluster:
    """A `pygmy up` cluster in `dir`; stopped with SIGTERM."""

    def __init__(self, dir: Path, base_port: int):
        self.dir = dir
        self.base_port = base_port
        self.url = f"http://127.0.0.1:{base_port}"
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []
        self.summary = ""

    def start(self, timeout: float = 90.0) -> None:
        cmd = [str(PYGMY), "up", "--dir", str(self.dir), "--base-port", str(self.base_port)]
        self.lines = []
        ready = threading.Event()
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        proc = self.proc

        def drain() -> None:
            # Keep reading to the end: `up` reports nodes that exit or restart,
            # and a full pipe would block it.
            assert proc.stdout is not None
            for line in proc.stdout:
                self.lines.append(line.rstrip("\n"))
                if line.startswith("ready:"):
                    self.summary = line.strip()
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(timeout) or not self.summary:
            self.stop()
            raise Failed("pygmy up did not report ready:\n" + "\n".join(self.lines[-30:]))
        log(f"cluster up: {self.summary}")

    def pids(self) -> dict[str, int]:
        out = {}
        for f in sorted(self.dir.glob("*.pid")):
            try:
                out[f.stem] = int(f.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        return out

    def config(self) -> str:
        return (self.dir / "pygmy.toml").read_text()

    def admin_token(self) -> str:
        m = re.search(r'^admin_token = "(.*)"$', self.config(), re.M)
        if not m:
            raise Failed("no admin_token in pygmy.toml")
        return m.group(1)

    def set_cache_capacity(self, capacity: int) -> None:
        path = self.dir / "pygmy.toml"
        text, n = re.subn(
            r"^cache_capacity = \d+$", f"cache_capacity = {capacity}", path.read_text(), flags=re.M
        )
        if n != 1:
            raise Failed("pygmy.toml has no cache_capacity line to change")
        path.write_text(text)

    def stop(self) -> None:
        """SIGTERM to `up` (which stops every node of the folder), then make
        sure no node of this folder is left running."""
        nodes = self.pids()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log("pygmy up did not stop within 30 s; killing it")
                self.proc.kill()
                self.proc.wait()
        # Nodes `up` started (or `chaos` restarted) write their pid files
        # here; stop any left behind, by pid, if it still runs this folder.
        nodes.update(self.pids())
        for name, pid in nodes.items():
            if alive(pid) and str(self.dir) in cmdline(pid):
                log(f"{name} (pid {pid}) still runs; SIGTERM")
                os.kill(pid, signal.SIGTERM)
                for _ in range(50):
                    if not alive(pid):
                        break
                    time.sleep(0.1)
                else:
                    os.kill(pid, signal.SIGKILL)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds `pid` has used."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return None


def heartbeat_events(cluster_dir: Path) -> dict[str, int]:
    """How many replica-down and new-view lines the front end has logged."""
    try:
        text = (cluster_dir / "heartbeat.log").read_text()
    except OSError:
        return {"down": 0, "new_view": 0}
    return {"down": text.count("replica is down"), "new_view": text.count("new view")}


def rss_mb(pid: int) -> dict[str, float | None]:
    """VmRSS and VmHWM (peak RSS) of `pid`, in MB (MiB)."""
    out: dict[str, float | None] = {"rss_mb": None, "peak_mb": None}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_mb"] = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                out["peak_mb"] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


# --------------------------------------------------------------------------
# Load


def load(url: str, mix: str, clients: int, duration: float,
         pids: dict[str, int] | None = None) -> dict:
    """One `pygmy load --json` run; its report, summarised. With `pids`, also
    the CPU time each of those processes (and the load generator) used per
    request."""
    cmd = [
        str(PYGMY), "load", "--url", url, "--mix", mix, "--clients", str(clients),
        "--duration", f"{int(duration * 1000)}ms", "--json",
    ]
    before = os.getloadavg()[0]
    pids = pids or {}
    cpu_before = {name: cpu_s(pid) for name, pid in pids.items()}
    children_before = os.times()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    children_after = os.times()
    cpu_after = {name: cpu_s(pid) for name, pid in pids.items()}
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise Failed(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")

    def line(op: dict) -> dict:
        lat = op["latency_ms"]
        return {
            "count": op["count"], "errors": op["errors"], "failed": op["failed"],
            "throughput": op["throughput"], "p50_ms": lat["p50"], "p90_ms": lat["p90"],
            "p99_ms": lat["p99"], "p999_ms": lat["p999"], "max_ms": lat["max"],
            "errors_by_kind": op["errors_by_kind"], "error_samples": op["error_samples"],
        }

    count = max(report["total"]["count"], 1)
    cpu_us = {
        name: (cpu_after[name] - cpu_before[name]) / count * 1e6
        for name in pids
        if cpu_before[name] is not None and cpu_after[name] is not None
    }
    cpu_us["load generator"] = (
        (children_after.children_user + children_after.children_system)
        - (children_before.children_user + children_before.children_system)) / count * 1e6
    return {
        "cmd": " ".join(cmd), "exit": done.returncode, "loadavg_before": before,
        "cpu_us_per_request": cpu_us,
        "elapsed_s": report["elapsed_s"], "seed": report["seed"],
        "ops": {op["op"]: line(op) for op in report["ops"]}, "all": line(report["total"]),
    }


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def compare(cases: list[tuple[str, str, str, str, dict]], clients: int, args, label: str) -> dict:
    """Runs each case (name, url, mix, op, server pids) `args.repeats`
    times, interleaved (a, b, c, a, b, c, ...), after one untimed warm-up
    of each."""
    runs: dict[str, list[dict]] = {name: [] for name, *_ in cases}

    def run(url, mix: str, duration: float, pids: dict | None) -> dict:
        # A case's url may instead be a runner with load's result shape
        # (PostgreSQL's pgbench runs).
        if callable(url):
            return url(clients, duration)
        return load(url, mix, clients, duration, pids)

    for name, url, mix, _, _ in cases:
        run(url, mix, args.warmup, None)
    for r in range(args.repeats):
        for name, url, mix, op, pids in cases:
            result = run(url, mix, args.duration, pids)
            runs[name].append(result)
            o = result["ops"].get(op, result["all"])
            log(f"{label} {name} #{r + 1}: {o['throughput']:.0f}/s p50 {o['p50_ms']:.3f} ms "
                f"p99 {o['p99_ms']:.2f} ms errors {o['errors']} (load {result['loadavg_before']:.1f})")
    out = {}
    for name, _, mix, op, _ in cases:
        per = [run["ops"].get(op, run["all"]) for run in runs[name]]
        processes = runs[name][0]["cpu_us_per_request"].keys()
        cpu = {p: median([run["cpu_us_per_request"].get(p) for run in runs[name]])
               for p in processes}
        out[name] = {
            "mix": mix, "clients": clients, "op": op,
            "throughput": median([p["throughput"] for p in per]),
            "throughput_runs": [p["throughput"] for p in per],
            "p50_ms": median([p["p50_ms"] for p in per]),
            "p99_ms": median([p["p99_ms"] for p in per]),
            "p50_runs": [p["p50_ms"] for p in per],
            "p99_runs": [p["p99_ms"] for p in per],
            "errors": sum(p["errors"] for p in per),
            "failed": sum(p["failed"] for p in per),
            "cpu_us_per_request": cpu,
            "runs": runs[name],
        }
    return out


# --------------------------------------------------------------------------
# The original's experiments, from a plain keep-alive client


class Client:
    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def request(self, method: str, path: str, headers: dict | None = None, body: str | None = None):
        t = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers or {})
        response = self.conn.getresponse()
        data = response.read()
        ms = (time.perf_counter() - t) * 1000
        return response.status, json.loads(data) if data else None, ms


def fsync_cost(dir: Path, n: int = 500) -> dict:
    """What the disk under the clusters charges for durability: p50 and p90
    of an fsync after a 200-byte append (what a commit of one entry costs a
    replica at least), so the absolute buy latency can be read against it."""
    path = dir / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    times = []
    try:
        for _ in range(n):
            os.write(fd, b"x" * 200)
            start = time.perf_counter()
            os.fsync(fd)
            times.append((time.perf_counter() - start) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    times.sort()
    return {"p50_ms": times[n // 2], "p90_ms": times[n * 9 // 10]}


def restock(cluster: Cluster) -> None:
    """Adds RESTOCK copies to every book, so buys never sell out."""
    client = Client(cluster.base_port)
    headers = {"Authorization": f"Bearer {cluster.admin_token()}",
               "Content-Type": "application/json"}
    status, books, _ = client.request("GET", "/books")
    for book in books["books"]:
        status, answer, _ = client.request(
            "POST", f"/books/{book['id']}/restock", headers, json.dumps({"qty": RESTOCK}))
        if status != 200:
            raise Failed(f"restock of {book['id']} answered {status}: {answer}")


def buy_runs(cluster: Cluster, args, pg=None) -> dict:
    """Buys at 64 and at 1 client, with the CPU each node used per buy and
    the heartbeat events (replicas seen down, new views) meanwhile. With
    `pg` (a started pg_compare.Postgres), PostgreSQL's buys run interleaved
    with Pygmy's (Pygmy, PostgreSQL, Pygmy, ...), under `pg_buy_N`."""
    out: dict = {"events_before": heartbeat_events(cluster.dir)}
    for clients in (LOADED, UNLOADED):
        cases = [("buy", cluster.url, "buy=1", "buy", cluster.pids())]
        if pg is not None:
            cases.append(("postgres", pg.buys, "pgbench buy", "buy", {}))
        got = compare(cases, clients, args, f"{clients}c")
        out[f"buy_{clients}"] = got["buy"]
        if pg is not None:
            out[f"pg_buy_{clients}"] = got["postgres"]
    out["events_after"] = heartbeat_events(cluster.dir)
    return out


def start_postgres(ports: tuple[int, int]) -> tuple[object | None, dict]:
    """A started pg_compare.Postgres, or None, and what to report about it:
    its version, or plainly why there is no comparison."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import pg_compare

    bindir = pg_compare.find_bindir()
    if bindir is None:
        return None, {"available": False,
                      "why": "PostgreSQL's binaries are absent (looked in $PYGMY_PG_BIN, "
                             "/usr/lib/postgresql/*/bin and PATH; Debian: apt-get install "
                             "postgresql), so there is no PostgreSQL comparison in this run"}
    pg = None
    try:
        pg = pg_compare.Postgres(bindir, *ports, log=log)
        pg.start()
    except (pg_compare.Unavailable, OSError, subprocess.TimeoutExpired) as e:
        if pg is not None:
            pg.stop()
        return None, {"available": False, "bindir": str(bindir),
                      "why": f"PostgreSQL could not be set up: {e}"}
    return pg, {"available": True, "bindir": str(bindir), "version": pg.version,
                "script": pg_compare.BUY_SQL.strip().splitlines(),
                "settings": "fsync on, synchronous_commit = on, "
                            "synchronous_standby_names = '*'"}


def invalidation_experiment(cluster: Cluster, rounds: int) -> dict:
    """The original's second experiment: lookup (a cache hit), buy, lookup
    again (a miss: the buy's commit invalidated the entry), lookup once more
    (a hit again). Times each step from a keep-alive client."""
    client = Client(cluster.base_port)
    steps: dict[str, list[float]] = {"hit before": [], "buy": [], "lookup after buy": [],
                                     "hit after": []}
    fresh = 0
    for i in range(rounds):
        item = 1 + i % 7
        client.request("GET", f"/lookup?id={item}")  # fills the cache if needed
        _, before, t_hit = client.request("GET", f"/lookup?id={item}")
        status, _, t_buy = client.request("GET", f"/buy?id={item}")
        if status != 200:
            raise Failed(f"buy of {item} answered {status}")
        _, after, t_miss = client.request("GET", f"/lookup?id={item}")
        _, _, t_hit2 = client.request("GET", f"/lookup?id={item}")
        steps["hit before"].append(t_hit)
        steps["buy"].append(t_buy)
        steps["lookup after buy"].append(t_miss)
        steps["hit after"].append(t_hit2)
        if after["item"][0]["count"] == before["item"][0]["count"] - 1:
            fresh += 1
    return {
        "rounds": rounds,
        "fresh_after_buy": fresh,
        "median_ms": {k: statistics.median(v) for k, v in steps.items()},
        "max_ms": {k: max(v) for k, v in steps.items()},
    }


def chaos(cluster: Cluster) -> dict:
    cmd = [str(PYGMY), "chaos", "--dir", str(cluster.dir), "--target", "catalog-1", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"cmd": " ".join(cmd), "exit": done.returncode,
                "error": (done.stderr or done.stdout).strip()[-2000:]}
    total = report["load"]["total"]
    return {
        "cmd": " ".join(cmd), "exit": done.returncode, "ok": report["ok"],
        "rounds": [
            {k: r.get(k) for k in ("target", "role", "detect_ms", "failover_ms", "recover_ms",
                                   "missed_entries", "requests", "views", "problems")}
            for r in report["rounds"]
        ],
        "load": {"requests": total["count"], "errors": total["errors"],
                 "failed": total["failed"], "throughput": total["throughput"]},
        "failed_requests": report["failed_requests"],
        "groups_identical": {g["group"]: g["identical"] for g in report["groups"]},
        "orders_acknowledged": report["orders_acknowledged"],
        "orders_missing": len(report["orders_missing"]),
        "buys_pending": report["buys_pending"],
        "problems": report["problems"],
    }


def simulation() -> dict:
    cmd = [str(SIM), "--seeds", SIM_SEEDS]
    t = time.monotonic()
    before = os.times()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    after = os.times()
    wall = time.monotonic() - t
    # CPU time (its worker processes included): steadier than seeds/s on a
    # shared machine, where the wall clock follows everyone else's work.
    cpu = ((after.children_user + after.children_system)
           - (before.children_user + before.children_system))
    text = done.stdout + done.stderr
    m = re.search(r"([\d.]+)\s*seeds/s", text)
    rate = float(m.group(1)) if m else None
    seeds = 200
    measured = seeds / wall
    last = [l for l in text.strip().splitlines() if l.strip()][-3:]
    return {
        "cmd": " ".join(cmd), "exit": done.returncode, "wall_s": wall,
        "seeds_per_s_printed": rate, "seeds_per_s_wall": measured,
        "projected_10000_min": 10_000 / (rate or measured) / 60,
        "cpu_s_per_seed": cpu / seeds,
        "tail": last,
    }


# --------------------------------------------------------------------------
# The report


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def fmt(x, digits: int = 0, unit: str = "") -> str:
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}{unit}"


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT).stdout.strip()
        except OSError:
            return ""
    return {
        "cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
        "rustc": out(["rustc", "--version"]),
        "commit": out(["git", "rev-parse", "--short", "HEAD"]),
        # Porcelain lines are "XY path"; `out` strips the text, which would
        # eat the first line's leading blank, so split off the status instead.
        "dirty_files": [line.split(maxsplit=1)[-1] for line in
                        out(["git", "status", "--porcelain", "--untracked-files=no"]).splitlines()],
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def targets(r: dict) -> list[dict]:
    """Every target with its measured value, ratio and verdict."""
    rows = []
    young = r["buys_young"]
    if "pg_buy_64" in young:
        t = ratio(young["buy_64"]["throughput"], young["pg_buy_64"]["throughput"])
        rows.append({
            "target": f"buys ≥ {PG_BUYS_MIN:g}× PostgreSQL's with a synchronous standby "
                      f"(64 clients, same run)",
            "measured": f"{fmt(young['buy_64']['throughput'])}/s vs "
                        f"{fmt(young['pg_buy_64']['throughput'])}/s",
            "ratio": t, "ratio_text": fmt(t, 2, "×"),
            "met": None if t is None else t >= PG_BUYS_MIN,
        })
    if r["args"].get("buys_only"):
        keys = (("buys_young", "young store"),)
    else:
        keys = (("buys_young", "young store"), ("buys", "after the mixed load"))
        rows += read_targets(r)
    for key, store in keys:
        buys = r[key]
        t = buys["buy_64"]["throughput"]
        rows.append({"target": f"buys ≥ {BUYS_MIN:,.0f}/s at 64 clients ({store})",
                     "measured": f"{fmt(t)}/s", "ratio": ratio(t, BUYS_MIN),
                     "ratio_text": fmt(ratio(t, BUYS_MIN), 2, "× target"),
                     "met": None if t is None else t >= BUYS_MIN})
        p99 = buys["buy_64"]["p99_ms"]
        rows.append({"target": f"buy p99 ≤ {BUY_P99_MAX_MS:.0f} ms at 64 clients ({store})",
                     "measured": f"{fmt(p99, 2)} ms", "ratio": ratio(p99, BUY_P99_MAX_MS),
                     "ratio_text": fmt(ratio(p99, BUY_P99_MAX_MS), 2, "× limit"),
                     "met": None if p99 is None else p99 <= BUY_P99_MAX_MS})
        p50 = buys["buy_1"]["p50_ms"]
        fsync = r.get("fsync", {}).get("p50_ms")
        rows.append({"target": f"buy unloaded p50 ≤ {BUY_P50_MAX_MS} ms ({store})",
                     "measured": f"{fmt(p50, 3)} ms (disk fsync p50 {fmt(fsync, 3)} ms)", "ratio": ratio(p50, BUY_P50_MAX_MS),
                     "ratio_text": fmt(ratio(p50, BUY_P50_MAX_MS), 2, "× limit"),
                     "met": None if p50 is None else p50 <= BUY_P50_MAX_MS})
    if r["args"].get("buys_only"):
        return rows
    for name, m in r["rss"]["nodes"].items():
        v = m["rss_mb"]
        rows.append({"target": f"{name} RSS < {RSS_MAX_MB:.0f} MB after the mixed load",
                     "measured": f"{fmt(v, 1)} MB (peak {fmt(m['peak_mb'], 1)} MB)",
                     "ratio": ratio(v, RSS_MAX_MB),
                     "ratio_text": fmt(ratio(v, RSS_MAX_MB), 2, "× limit"),
                     "met": None if v is None else v < RSS_MAX_MB})
    return rows


def read_targets(r: dict) -> list[dict]:
    """The targets of the read runs (cached against bare, uncached against
    the one-hop baseline)."""
    rows = []
    b, c, h, u = r["bare"], r["cached"], r["hop"], r["uncached"]
    for op in ("lookup", "search"):
        t = ratio(c[f"{op}_64"]["throughput"], b[f"{op}_64"]["throughput"])
        rows.append({
            "target": f"cached {op} throughput ≥ {CACHED_THROUGHPUT_MIN:.0%} of bare",
            "measured": f"{fmt(c[f'{op}_64']['throughput'])}/s vs {fmt(b[f'{op}_64']['throughput'])}/s",
            "ratio": t, "ratio_text": fmt(t and t * 100, 0, "%"),
            "met": None if t is None else t >= CACHED_THROUGHPUT_MIN,
        })
        p = ratio(c[f"{op}_1"]["p50_ms"], b[f"{op}_1"]["p50_ms"])
        rows.append({
            "target": f"cached {op} unloaded p50 ≤ {CACHED_P50_MAX}× bare",
            "measured": f"{fmt(c[f'{op}_1']['p50_ms'], 3)} ms vs {fmt(b[f'{op}_1']['p50_ms'], 3)} ms",
            "ratio": p, "ratio_text": fmt(p, 2, "×"),
            "met": None if p is None else p <= CACHED_P50_MAX,
        })
    for op in ("lookup", "search"):
        t = ratio(u[f"{op}_64"]["throughput"], h[f"{op}_64"]["throughput"])
        rows.append({
            "target": f"uncached {op} throughput ≥ {UNCACHED_THROUGHPUT_MIN:.0%} of one-hop"
                      + ("" if op == "lookup" else " (the issue names lookup; search for reference)"),
            "measured": f"{fmt(u[f'{op}_64']['throughput'])}/s vs {fmt(h[f'{op}_64']['throughput'])}/s",
            "ratio": t, "ratio_text": fmt(t and t * 100, 0, "%"),
            "met": None if t is None else t >= UNCACHED_THROUGHPUT_MIN,
        })
    return rows


def pg_markdown(r: dict) -> list[str]:
    """The buys beside PostgreSQL, or plainly why there are none."""
    pg, young = r.get("postgres", {}), r["buys_young"]
    L = ["### Buys beside PostgreSQL with a synchronous standby", ""]
    if not pg.get("available") or "pg_buy_64" not in young:
        L.append(f"No PostgreSQL comparison: {pg.get('why', 'not run')}.")
        L.append("")
        return L
    script = " ".join(x for x in pg["script"] if not x.startswith("\\"))
    L.append(f"{pg['version']} ({pg['bindir']}): a primary and one synchronous streaming standby "
             f"({pg['settings']}), in a temporary "
             f"folder on the same disk as Pygmy's cluster; pgbench with prepared statements, "
             f"a random book 1..7 per buy, the buy as one transaction: `{script}`. Pygmy: a "
             f"fresh `pygmy up` cluster (2 catalog + 2 order replicas, fsync on), `pygmy load "
             f"--mix buy=1` (`GET /buy?id=` of a random book). The runs alternate (Pygmy, "
             f"PostgreSQL, Pygmy, ...); medians of {r['args']['repeats']} runs of "
             f"{r['args']['duration']:g} s. Latency percentiles of PostgreSQL from pgbench's "
             f"per-transaction log.")
    L.append("")
    L.append("| store | clients | buys/s (median) | p50 ms | p99 ms | buys/s of each run | "
             "CPU µs per buy, servers (per process) | CPU µs per buy, load generator |")
    L.append("|---|---|---|---|---|---|---|---|")
    for clients in (LOADED, UNLOADED):
        for key, label in ((f"buy_{clients}", "Pygmy"), (f"pg_buy_{clients}", "PostgreSQL")):
            s = young[key]
            cpu = s["cpu_us_per_request"]
            servers = {p: v for p, v in cpu.items() if p != "load generator" and v is not None}
            L.append(f"| {label} | {clients} | {fmt(s['throughput'])} | {fmt(s['p50_ms'], 3)} | "
                     f"{fmt(s['p99_ms'], 2)} | {', '.join(fmt(x) for x in s['throughput_runs'])} | "
                     f"**{sum(servers.values()):.0f}** ("
                     + ", ".join(f"{p} {v:.0f}" for p, v in servers.items())
                     + f") | {fmt(cpu.get('load generator'), 0)} |")
    t = ratio(young["buy_64"]["throughput"], young["pg_buy_64"]["throughput"])
    cpu = [sum(v for p, v in young[k]["cpu_us_per_request"].items()
               if p != "load generator" and v is not None) for k in ("buy_64", "pg_buy_64")]
    L.append("")
    L.append(f"Pygmy / PostgreSQL at {LOADED} clients: {fmt(t, 2, '×')} the buys per second "
             f"(target ≥ {PG_BUYS_MIN:g}×), {fmt(ratio(cpu[0], cpu[1]), 2, '×')} the servers' "
             f"CPU time per buy; unloaded p50 {fmt(young['buy_1']['p50_ms'], 3)} ms against "
             f"{fmt(young['pg_buy_1']['p50_ms'], 3)} ms.")
    L.append("")
    return L


def markdown(r: dict) -> str:
    m = r["machine"]
    a = r["args"]
    L = []
    L.append(f"Measured {m['date']} at commit `{m['commit']}`"
             + (f" (with uncommitted changes to {', '.join(m['dirty_files'])})"
                if m["dirty_files"] else "")
             + f"; {m['cores']} × {m['cpu']}, Linux {m['kernel']}, {m['rustc']}"
             + (f"; an fsync after a small append costs p50 {r['fsync']['p50_ms']:.3f} ms, "
                f"p90 {r['fsync']['p90_ms']:.3f} ms on the clusters' disk" if "fsync" in r else "")
             + ".")
    L.append(f"`pygmy load`: {LOADED} keep-alive clients for throughput, {UNLOADED} for the unloaded "
             f"p50; {a['duration']:g} s per run after a {a['warmup']:g} s warm-up, median of "
             f"{a['repeats']} interleaved runs; original API. Load average "
             f"{r['loadavg']['start']:.1f} at the start, {r['loadavg']['end']:.1f} at the end.")
    L.append("")
    L.append("### Targets")
    L.append("")
    L.append("| target | measured | ratio | verdict |")
    L.append("|---|---|---|---|")
    for t in r["targets"]:
        L.append(f"| {t['target']} | {t['measured']} | {t['ratio_text']} | {verdict(t['met'])} |")
    L.append("")
    L.append("### Throughput and latency")
    L.append("")
    L.append("| server | op | clients | req/s (median) | p50 ms | p99 ms | req/s of each run | errors |")
    L.append("|---|---|---|---|---|---|---|---|")
    labels = [("bare", "bare hyper"), ("cached", "Pygmy, cache on"),
              ("hop", "one-hop baseline"), ("uncached", "Pygmy, cache off"),
              ("buys_young", "Pygmy, young store"), ("buys", "Pygmy, after the mixed load")]
    for key, label in labels:
        for name, s in r.get(key, {}).items():
            if not isinstance(s, dict) or "op" not in s or name.startswith("pg_"):
                continue
            L.append(f"| {label} | {s['op']} | {s['clients']} | {fmt(s['throughput'])} | "
                     f"{fmt(s['p50_ms'], 3)} | {fmt(s['p99_ms'], 2)} | "
                     f"{', '.join(fmt(x) for x in s['throughput_runs'])} | {s['errors']} |")
    L.append("")
    L.append("Heartbeat events during the buy runs (front end's heartbeat.log): "
             + "; ".join(
                 f"{label}: {r[k]['events_after']['down'] - r[k]['events_before']['down']} replica-down, "
                 f"{r[k]['events_after']['new_view'] - r[k]['events_before']['new_view']} new-view lines"
                 for k, label in (("buys_young", "young store"), ("buys", "after the mixed load"))
                 if k in r)
             + ".")
    L.append("")
    L.append("CPU time per request (µs, user + system, median of the runs; from /proc/PID/stat "
             "at 10 ms granularity, and the load generator's from its rusage):")
    L.append("")
    L.append("| server | op | clients | per process | servers' total | load generator |")
    L.append("|---|---|---|---|---|---|")
    for key, label in labels:
        for name, s in r.get(key, {}).items():
            if (not isinstance(s, dict) or "cpu_us_per_request" not in s
                    or s["clients"] != LOADED or name.startswith("pg_")):
                continue
            cpu = s["cpu_us_per_request"]
            servers = {p: v for p, v in cpu.items() if p != "load generator" and v is not None}
            L.append(f"| {label} | {s['op']} | {s['clients']} | "
                     + ", ".join(f"{p} {v:.1f}" for p, v in servers.items())
                     + f" | {sum(servers.values()):.1f} | {fmt(cpu.get('load generator'), 1)} |")
    L.append("")
    L += pg_markdown(r)
    if a.get("buys_only"):
        return "\n".join(L) + "\n"
    mx = r["mixed"]
    L.append(f"### Mixed load ({mx['mix']} mix, {mx['clients']} clients, {mx['duration_s']:g} s, cache on, fresh cluster)")
    L.append("")
    L.append("| op | count | req/s | p50 ms | p99 ms | errors (4xx) | failed |")
    L.append("|---|---|---|---|---|---|---|")
    for op, o in list(mx["ops"].items()) + [("all", mx["all"])]:
        L.append(f"| {op} | {o['count']:,} | {fmt(o['throughput'])} | {fmt(o['p50_ms'], 3)} | "
                 f"{fmt(o['p99_ms'], 2)} | {o['errors']} | {o['failed']} |")
    L.append("")
    L.append(f"RSS right after it, on a cluster that had served nothing else "
             f"({r['rss']['orders']:,} orders; VmRSS, and VmHWM, the peak since the process started):")
    L.append("")
    L.append("| process | RSS MB | peak MB |")
    L.append("|---|---|---|")
    for name, v in list(r["rss"]["nodes"].items()) + list(r["rss"]["baselines"].items()):
        L.append(f"| {name} | {fmt(v['rss_mb'], 1)} | {fmt(v['peak_mb'], 1)} |")
    ab = r["rss_after_buys"]
    L.append("")
    L.append(f"The same nodes after the buy runs as well ({ab['orders']:,} orders in all, warm-ups "
             f"not counted): " + ", ".join(f"{n} {fmt(v['rss_mb'], 1)} MB" for n, v in ab["nodes"].items())
             + ".")
    L.append("")
    L.append("### The original's experiments")
    L.append("")
    L.append("1. Response time with and without the cache (1 client, `pygmy load`, p50 / p99 ms):")
    L.append("")
    L.append("| op | cache on | cache off | off / on |")
    L.append("|---|---|---|---|")
    for op in ("lookup", "search"):
        on, off = r["cached"][f"{op}_1"], r["uncached"][f"{op}_1"]
        L.append(f"| {op} | {fmt(on['p50_ms'], 3)} / {fmt(on['p99_ms'], 3)} | "
                 f"{fmt(off['p50_ms'], 3)} / {fmt(off['p99_ms'], 3)} | "
                 f"{fmt(ratio(off['p50_ms'], on['p50_ms']), 2, '×')} |")
    inv = r["invalidation"]
    L.append("")
    L.append(f"2. The miss after an invalidation ({inv['rounds']} rounds from a Python keep-alive "
             f"client, which adds its own ~0.1 ms; median / max ms). The lookup after the buy showed "
             f"the bought copy in {inv['fresh_after_buy']} of {inv['rounds']} rounds.")
    L.append("")
    L.append("| step | median ms | max ms |")
    L.append("|---|---|---|")
    for step, v in inv["median_ms"].items():
        L.append(f"| {step} | {v:.3f} | {inv['max_ms'][step]:.3f} |")
    ch = r["chaos"]
    L.append("")
    L.append(f"3. A crash with failover and resync: `pygmy chaos --target catalog-1` "
             f"(exit {ch['exit']}).")
    L.append("")
    if "error" in ch:
        L.append(f"   chaos did not report: {ch['error']}")
    else:
        L.append("| killed | role | detect ms | failover ms | resync ms | requests during (errors, failed) |")
        L.append("|---|---|---|---|---|---|")
        for rd in ch["rounds"]:
            q = rd["requests"]
            L.append(f"| {rd['target']} | {rd['role']} | {fmt(rd['detect_ms'], 0)} | "
                     f"{fmt(rd['failover_ms'], 0)} | {fmt(rd['recover_ms'], 0)} | "
                     f"{q['requests']:,} ({q['errors']}, {q['failed']}) |")
        L.append("")
        L.append(f"   Load during chaos: {ch['load']['requests']:,} requests, "
                 f"{ch['load']['failed']} failed; replicas identical: "
                 + ", ".join(f"{g} {'yes' if v else 'NO'}" for g, v in ch["groups_identical"].items())
                 + f"; {ch['orders_acknowledged']:,} acknowledged orders, {ch['orders_missing']} missing, "
                 f"{ch['buys_pending']} pending; ok: {ch['ok']}"
                 + (f"; problems: {'; '.join(ch['problems'])}" if ch["problems"] else "") + ".")
    s = r["simulation"]
    L.append("")
    L.append("### Simulation speed")
    L.append("")
    L.append(f"`{s['cmd']}` (exit {s['exit']}): {fmt(s['seeds_per_s_printed'], 2)} seeds/s as it "
             f"prints ({fmt(s['seeds_per_s_wall'], 2)} seeds/s by wall clock, {s['wall_s']:.0f} s); "
             f"10,000 seeds would take about {s['projected_10000_min']:.0f} min"
             + (f"; {s['cpu_s_per_seed']:.2f} CPU-seconds per seed (all workers; load average "
                f"{r['loadavg']['end']:.1f} after it)" if s.get("cpu_s_per_seed") else "")
             + ".")
    if r.get("notes"):
        L.append("")
        L.append("### Notes")
        L.append("")
        for n in r["notes"]:
            L.append(f"- {n}")
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10.0, help="seconds per load run (10)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved runs per case; the median is reported (3)")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of untimed load before each case (1)")
    p.add_argument("--mixed-duration", type=float, default=60.0,
                   help="seconds of mixed load before reading RSS (60)")
    p.add_argument("--rounds", type=int, default=50, help="rounds of the invalidation experiment (50)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "bench",
                   help="folder for report.md and report.json (docs/bench)")
    p.add_argument("--dir", type=Path, default=None,
                   help="cluster folder (default: a fresh temporary one, removed at the end)")
    p.add_argument("--no-build", action="store_true", help="use the binaries in target/release as they are")
    p.add_argument("--no-sim", action="store_true", help="skip the simulation's speed")
    p.add_argument("--buys-only", action="store_true",
                   help="only the buys on a fresh store, beside PostgreSQL's (and the fsync probe)")
    p.add_argument("--no-postgres", action="store_true",
                   help="skip the PostgreSQL comparison even if its binaries are installed")
    args = p.parse_args()

    # SIGTERM to this script stops everything it started, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    if not args.no_build:
        builds = [["cargo", "build", "--release", "--bins", "--examples"]]
        if not args.buys_only:
            builds.append(["cargo", "build", "--release", "-p", "pygmy-sim"])
        for cmd in builds:
            log(" ".join(cmd))
            subprocess.run(cmd, cwd=ROOT, check=True)

    tmp = None
    if args.dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="pygmy-bench-")
        base_dir = Path(tmp.name)
    else:
        base_dir = args.dir.resolve()
    # Two clusters: a young one for the buys on a fresh store, and the main one.
    young_dir, cluster_dir = base_dir / "young", base_dir / "cluster"
    for d in (young_dir, cluster_dir):
        if (d / "pygmy.toml").exists():
            raise SystemExit(f"{d} holds a cluster already; give a new --dir")
        d.mkdir(parents=True, exist_ok=True)

    r: dict = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "machine": machine(), "loadavg": {"start": os.getloadavg()[0]},
               "cluster_dir": str(cluster_dir), "notes": []}
    baselines: list[Baseline] = []
    cluster: Cluster | None = None
    pg = None
    try:
        ports = free_ports(10)
        r["fsync"] = fsync_cost(base_dir)
        log(f"fsync on the clusters' disk: p50 {r['fsync']['p50_ms']:.3f} ms")

        # Buys on a young store: a fresh cluster that serves nothing else,
        # interleaved with PostgreSQL's when it is installed.
        if args.no_postgres:
            r["postgres"] = {"available": False, "why": "skipped (--no-postgres)"}
        else:
            pg, r["postgres"] = start_postgres((ports + 8, ports + 9))
            if pg is None:
                log(r["postgres"]["why"])
        cluster = Cluster(young_dir, ports)  # ports .. ports+4
        cluster.start()
        r["up_summary"] = [cluster.summary]
        restock(cluster)
        log("buys on a young store" + (" and on PostgreSQL" if pg else ""))
        r["buys_young"] = buy_runs(cluster, args, pg)
        cluster.stop()
        cluster = None
        if pg is not None:
            pg.stop()
            pg = None
        if args.buys_only:
            raise Done

        leaf = Baseline(ports + 5)
        hop_leaf = Baseline(ports + 6)
        hop = Baseline(ports + 7, hop_to=ports + 6)
        baselines = [leaf, hop_leaf, hop]
        r["baselines"] = {"bare": leaf.cmd, "hop leaf": hop_leaf.cmd, "hop": hop.cmd}
        bare_pids = {"baseline": leaf.proc.pid}
        hop_pids = {"hop": hop.proc.pid, "hop leaf": hop_leaf.proc.pid}


        cluster = Cluster(cluster_dir, ports)
        cluster.start()
        r["up_summary"].append(cluster.summary)
        fe = cluster.url
        fe_pids = cluster.pids()

        # A mixed load on the fresh cluster, then every node's RSS. The
        # stock is topped up first: the original client only buys what a
        # lookup shows in stock, so 700 copies would sell out within a
        # second and leave a read-only load.
        restock(cluster)
        log(f"mixed load for {args.mixed_duration:g} s")
        mixed = load(fe, "original", LOADED, args.mixed_duration)
        mixed.update({"mix": "original", "clients": LOADED, "duration_s": args.mixed_duration})
        r["mixed"] = mixed
        r["rss"] = {
            "orders": mixed["ops"].get("buy", {}).get("count", 0),
            "nodes": {name: rss_mb(pid) for name, pid in cluster.pids().items()},
            "baselines": {f"baseline ({name})": rss_mb(b.proc.pid)
                          for name, b in zip(("bare", "hop leaf", "hop"), baselines)},
        }

        # Cached reads against the bare server.
        log("cached reads vs bare")
        bare, cached = {}, {}
        for clients in (LOADED, UNLOADED):
            got = compare([
                ("bare lookup", leaf.url, "lookup=1", "lookup", bare_pids),
                ("pygmy lookup", fe, "lookup=1", "lookup", fe_pids),
                ("bare search", leaf.url, "search=1", "search", bare_pids),
                ("pygmy search", fe, "search=1", "search", fe_pids),
            ], clients, args, f"{clients}c")
            for op in ("lookup", "search"):
                bare[f"{op}_{clients}"] = got[f"bare {op}"]
                cached[f"{op}_{clients}"] = got[f"pygmy {op}"]
        r["bare"], r["cached"] = bare, cached

        # Buys again, on this store that has served the mixed load.
        log("buys on the aged store")
        buys = buy_runs(cluster, args)
        r["buys"] = buys
        ordered = r["rss"]["orders"] + sum(
            run["ops"]["buy"]["count"] for k, b in buys.items() if k.startswith("buy_")
            for run in b["runs"])
        r["rss_after_buys"] = {
            "orders": ordered,
            "nodes": {name: rss_mb(pid) for name, pid in cluster.pids().items()},
        }

        # The original's experiments 2 and 3.
        log("invalidation experiment")
        r["invalidation"] = invalidation_experiment(cluster, args.rounds)
        log("chaos --target catalog-1")
        r["chaos"] = chaos(cluster)
        log(f"chaos: ok {r['chaos'].get('ok')}")

        # Uncached reads: the same cluster restarted with the cache off.
        log("restarting the cluster with cache_capacity = 0")
        cluster.stop()
        cluster.set_cache_capacity(0)
        cluster.start()
        r["up_summary"].append(cluster.summary)
        fe_pids = cluster.pids()
        hop_runs, uncached = {}, {}
        for clients in (LOADED, UNLOADED):
            got = compare([
                ("hop lookup", hop.url, "lookup=1", "lookup", hop_pids),
                ("pygmy lookup", fe, "lookup=1", "lookup", fe_pids),
                ("hop search", hop.url, "search=1", "search", hop_pids),
                ("pygmy search", fe, "search=1", "search", fe_pids),
            ], clients, args, f"{clients}c nocache")
            for op in ("lookup", "search"):
                hop_runs[f"{op}_{clients}"] = got[f"hop {op}"]
                uncached[f"{op}_{clients}"] = got[f"pygmy {op}"]
        r["hop"], r["uncached"] = hop_runs, uncached
    except Done:
        pass
    finally:
        if cluster is not None:
            cluster.stop()
        if pg is not None:
            pg.stop()
        for b in baselines:
            b.stop()
        if tmp is not None:
            tmp.cleanup()

    if args.buys_only:
        pass
    elif args.no_sim:
        r["simulation"] = {"cmd": "skipped (--no-sim)", "exit": None, "wall_s": 0,
                           "seeds_per_s_printed": None, "seeds_per_s_wall": None,
                           "projected_10000_min": 0, "tail": []}
    else:
        log(f"pygmy-sim --seeds {SIM_SEEDS}")
        r["simulation"] = simulation()
    r["loadavg"]["end"] = os.getloadavg()[0]
    r["targets"] = targets(r)

    text = markdown(r)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(text)
    (args.out / "report.json").write_text(json.dumps(r, indent=2) + "\n")
    print(text)
    log(f"wrote {args.out / 'report.md'} and {args.out / 'report.json'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failed as e:
        print(f"report.py: {e}", file=sys.stderr)
        sys.exit(1)
