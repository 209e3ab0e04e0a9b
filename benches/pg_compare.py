"""PostgreSQL with a synchronous standby, as benches/report.py compares it.

What a user would pick instead of Pygmy for a store that must not lose a
sale: a relational database whose commit waits for a replica. This module
sets one up from the binaries of a PostgreSQL installation (Debian's
`postgresql` package puts them in /usr/lib/postgresql/N/bin):

- a primary and one streaming standby in a temporary folder, on free
  ports of 127.0.0.1, fsync on (the default), `synchronous_commit = on` and
  `synchronous_standby_names = '*'` (set once the standby streams), so a commit returns only once the
  standby has the commit record on its disk (PostgreSQL's `on`: flushed
  there, not yet replayed);
- the store's seven books, with so many copies that no run sells out, and
  an `orders` table;
- the buy as one transaction, run by pgbench (prepared statements):
  `UPDATE books SET count = count - 1 WHERE id = :id AND count > 0;
  INSERT INTO orders ...` for a random book 1..7.

PostgreSQL refuses to run as root: when this script is root, the servers
and pgbench run as the `postgres` user (which the package creates), and
without such a user the comparison is skipped with that reason.

CPU per buy counts every process of both servers: each postmaster and
all its descendants, alive or already exited (a backend that exits is
reaped by its postmaster, whose cutime/cstime then hold its time), from
/proc/PID/stat; pgbench's own time comes from this process's children's
rusage.

Python 3.11 standard library only.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

BOOKS = 7
STOCK = 1_000_000_000  # copies of each book: no run sells out
NEEDED = ("initdb", "pg_ctl", "pg_basebackup", "pgbench", "psql", "postgres")

BUY_SQL = f"""\\set id random(1, {BOOKS})
BEGIN;
UPDATE books SET count = count - 1 WHERE id = :id AND count > 0;
INSERT INTO orders (book_id, qty) VALUES (:id, 1);
END;
"""

SCHEMA = f"""
CREATE TABLE books (id int PRIMARY KEY, title text NOT NULL, topic text NOT NULL,
                    cost int NOT NULL, count bigint NOT NULL);
CREATE TABLE orders (id bigserial PRIMARY KEY, book_id int NOT NULL REFERENCES books,
                     qty int NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO books SELECT i, 'book ' || i, 'topic', 100 * i, {STOCK}
  FROM generate_series(1, {BOOKS}) AS i;
"""


class Unavailable(Exception):
    """PostgreSQL cannot be set up here; the message says why."""


def find_bindir() -> Path | None:
    """PYGMY_PG_BIN, else the newest /usr/lib/postgresql/N/bin, else the
    folder of a `pg_config` or `pgbench` on PATH; None when none has every
    program needed."""
    candidates: list[Path] = []
    if os.environ.get("PYGMY_PG_BIN"):
        candidates.append(Path(os.environ["PYGMY_PG_BIN"]))
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
                      reverse=True)
    candidates += versions
    for tool in ("pg_config", "pgbench"):
        found = shutil.which(tool)
        if found:
            candidates.append(Path(found).resolve().parent)
    for d in candidates:
        if all((d / n).is_file() for n in NEEDED):
            return d
    return None


def tree_cpu_s(root: int) -> float:
    """User + system CPU seconds of `root` and every descendant, including
    children already exited and reaped (their parent's cutime/cstime)."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        ppid = int(fields[1])
        own = sum(int(x) for x in fields[11:15]) / ticks  # utime stime cutime cstime
        stats[int(entry.name)] = (ppid, own)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
        todo += [p for p, (pp, _) in stats.items() if pp == pid]
    return total


class Postgres:
    """A primary and a synchronous standby in a temporary folder."""

    def __init__(self, bindir: Path, primary_port: int, standby_port: int, log=print):
        self.bin = bindir
        self.ports = {"primary": primary_port, "standby": standby_port}
        self.log = log
        self.version = ""
        self.base: Path | None = None
        self.started: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise Unavailable("running as root, and there is no `postgres` user to run "
                                  "PostgreSQL as (it refuses root)") from None
            self.uid, self.gid = user.pw_uid, user.pw_gid
        else:
            self.uid, self.gid = os.geteuid(), os.getegid()

    # -- processes ------------------------------------------------------

    def _demote(self) -> None:
        if os.geteuid() != self.uid:
            os.setgroups([])
            os.setgid(self.gid)
            os.setuid(self.uid)

    def run(self, program: str, *args: str, timeout: float = 120,
            check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / program), *args]
        env = dict(os.environ, PGHOST="127.0.0.1", PGUSER="postgres", PGDATABASE="bench",
                   LC_ALL="C")
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=self._demote, cwd=self.base, env=env)
        if check and done.returncode != 0:
            raise Unavailable(f"{' '.join(cmd)} exited {done.returncode}: "
                              f"{(done.stderr or done.stdout).strip()[-1500:]}")
        return done

    def psql(self, sql: str, node: str = "primary", db: str = "bench") -> str:
        return self.run("psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                        "-p", str(self.ports[node]), "-d", db, "-c", sql).stdout.strip()

    def data(self, node: str) -> Path:
        assert self.base is not None
        return self.base / node

    def pid(self, node: str) -> int | None:
        try:
            return int((self.data(node) / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    # -- set-up ---------------------------------------------------------

    def start(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="pygmy-pg-"))
        os.chown(self.base, self.uid, self.gid)
        self.version = self.run("postgres", "--version").stdout.strip()
        primary, standby = self.data("primary"), self.data("standby")
        self.run("initdb", "-D", str(primary), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                 "--no-sync")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": self.ports["primary"],
            "unix_socket_directories": f"'{self.base}'",
            "max_connections": 200,
            "wal_level": "replica",
            "max_wal_senders": 4,
            "fsync": "on",
            "synchronous_commit": "on",
        }
        self._append_conf(primary, settings)
        self._pg_ctl("primary", "start")
        self.run("psql", "-X", "-q", "-p", str(self.ports["primary"]), "-d", "postgres",
                 "-c", "CREATE DATABASE bench")
        # The standby: a base backup of the primary that streams from it.
        self.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.ports["primary"]),
                 "-U", "postgres", "-D", str(standby), "-R", "-X", "stream", "-c", "fast",
                 timeout=300)
        self._append_conf(standby, {"port": self.ports["standby"]})
        self._pg_ctl("standby", "start")
        # Only now: with no standby connected, every commit would wait.
        self.psql("ALTER SYSTEM SET synchronous_standby_names = '*'", db="postgres")
        self.psql("SELECT pg_reload_conf()", db="postgres")
        deadline = time.monotonic() + 60
        while self.psql("SELECT sync_state FROM pg_stat_replication", db="postgres") != "sync":
            if time.monotonic() > deadline:
                raise Unavailable("the standby did not become synchronous within 60 s")
            time.sleep(0.2)
        self.psql(SCHEMA)
        (self.base / "buy.sql").write_text(BUY_SQL)
        os.chown(self.base / "buy.sql", self.uid, self.gid)
        self.log(f"{self.version}: primary on {self.ports['primary']}, synchronous standby on "
                 f"{self.ports['standby']}")

    def _append_conf(self, data: Path, settings: dict) -> None:
        with open(data / "postgresql.conf", "a") as f:
            f.write("\n# benches/pg_compare.py\n")
            for k, v in settings.items():
                f.write(f"{k} = {v}\n")

    def _pg_ctl(self, node: str, action: str) -> None:
        args = ["-D", str(self.data(node)), "-w", "-t", "60"]
        if action == "start":
            args += ["-l", str(self.base / f"{node}.log")]
        else:
            args += ["-m", "fast"]
        self.run("pg_ctl", *args, action, check=action == "start")
        if action == "start":
            self.started.append(node)

    def stop(self) -> None:
        """Stops both servers (standby first) and removes the folder."""
        for node in reversed(self.started):
            try:
                self._pg_ctl(node, "stop")
            except (Unavailable, subprocess.TimeoutExpired):
                pass
            pid = self.pid(node)
            if pid is not None:
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
        self.started = []
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    # -- load -----------------------------------------------------------

    def buys(self, clients: int, duration: float) -> dict:
        """One pgbench run of the buy; summarised as benches/report.py's
        `load` summarises a `pygmy load` run (throughput, latency
        percentiles from pgbench's per-transaction log, CPU per buy)."""
        assert self.base is not None
        logs = self.base / "logs"
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir()
        os.chown(logs, self.uid, self.gid)
        secs = max(1, round(duration))
        cmd = ["-n", "-h", "127.0.0.1", "-p", str(self.ports["primary"]), "-U", "postgres",
               "-c", str(clients), "-j", str(min(clients, os.cpu_count() or 1)),
               "-T", str(secs), "-M", "prepared", "-f", str(self.base / "buy.sql"),
               "-l", "--log-prefix", str(logs / "tx"), "bench"]
        before_load = os.getloadavg()[0]
        roots = {node: self.pid(node) for node in ("primary", "standby")}
        cpu_before = {n: tree_cpu_s(p) for n, p in roots.items() if p}
        children_before = os.times()
        done = self.run("pgbench", *cmd, timeout=secs + 120, check=False)
        children_after = os.times()
        cpu_after = {n: tree_cpu_s(p) for n, p in roots.items() if p}
        out = done.stdout + done.stderr
        tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
        if done.returncode != 0 or not tps:
            raise Unavailable(f"pgbench exited {done.returncode}: {out.strip()[-1500:]}")
        processed = re.search(r"number of transactions actually processed: (\d+)", out)
        failed = re.search(r"number of failed transactions: (\d+)", out)
        avg = re.search(r"latency average = ([\d.]+) ms", out)
        lat = sorted(
            int(line.split()[2]) / 1000.0
            for f in logs.iterdir() for line in f.read_text().splitlines() if line.strip())
        count = int(processed.group(1)) if processed else len(lat)

        def pct(q: float) -> float | None:
            return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else None

        line = {
            "count": count, "errors": 0, "failed": int(failed.group(1)) if failed else 0,
            "throughput": float(tps.group(1)), "p50_ms": pct(0.50), "p90_ms": pct(0.90),
            "p99_ms": pct(0.99), "p999_ms": pct(0.999), "max_ms": lat[-1] if lat else None,
            "avg_ms": float(avg.group(1)) if avg else None,
            "errors_by_kind": {}, "error_samples": [],
        }
        per = max(count, 1)
        cpu_us = {f"postgres {n}": (cpu_after[n] - cpu_before[n]) / per * 1e6
                  for n in cpu_before if n in cpu_after}
        cpu_us["load generator"] = (
            (children_after.children_user + children_after.children_system)
            - (children_before.children_user + children_before.children_system)) / per * 1e6
        return {
            "cmd": "pgbench " + " ".join(cmd), "exit": done.returncode,
            "loadavg_before": before_load, "cpu_us_per_request": cpu_us,
            "elapsed_s": secs, "seed": None, "ops": {"buy": line}, "all": line,
        }
