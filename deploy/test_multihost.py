#!/usr/bin/env python3
"""Pygmy across real network links: the multi-host test suite.

Starts the five nodes (front end, two catalog and two order replicas) each
on a host of its own, drives the original client's calls (deploy/client.py:
search, lookup, buy) and `pygmy load` at the front end, breaks one thing per
scenario under buys, heals it, and checks the invariants with `pygmy check`
(the verdict `pygmy chaos` gives, from src/check.rs): each group's replicas
identical, stock and orders balance item by item, every order acknowledged
to the client on every order replica.

Two ways to get five hosts:

  --docker  the compose cluster (compose.yaml) from the locally built image
            (`deploy/build-image.sh`); faults are `docker kill`, `docker
            pause` and `docker network disconnect`.
  --netns   no Docker: each node in a network namespace of its own with its
            own address (10.77.0.10-14) on a bridge; faults are SIGKILL,
            SIGSTOP and `ip link set ... down` of the node's link. Needs root.

Scenarios (each under buys, then healed, then checked):

  kill-<replica>     kill each replica, restart it
  kill-frontend      kill the front end, restart it
  pause-primary      pause the order group's primary, resume it
  cut-primary        cut the catalog group's primary off the network (from
                     its backup and the front end alike), reconnect it

A scenario passes when the front end saw the broken replica down (so the
fault was real), the cluster is whole again, a buy succeeds after the heal,
the buyer had orders acknowledged during the scenario, and `pygmy check`
finds nothing lost or diverged. Client failures during a fault are
counted and reported, not failed on: while the front end is dead nothing can
answer, and a paused or cut primary is only noticed after its missed
heartbeats.

    python3 deploy/test_multihost.py --docker [--out DIR] [--keep]
    sudo python3 deploy/test_multihost.py --netns --binary target/release/pygmy

Logs of every node (and the front end's heartbeat log) end up in
DIR/<mode>/logs, the results in DIR/<mode>/results.json. Exit code 0 when
every scenario passed.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import client  # noqa: E402  (the original client's three calls)

REPLICAS = ["catalog-1", "catalog-2", "order-1", "order-2"]
NODES = ["frontend"] + REPLICAS
PORTS = {name: 8010 + i for i, name in enumerate(NODES)}
# How long a fault lasts: several heartbeat periods (250 ms, 2 misses).
DOWNTIME = 3.0
# How long the cluster may take to be whole again after a heal.
PATIENCE = 90.0


def log(line):
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


def run(cmd, check=True, **kw):
    """Runs a command; its output, or an error naming it."""
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def http_json(url, timeout=2.0):
    """(status, body) of a GET, (0, None) without an answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.load(e)
        except ValueError:
            return e.code, None
    except (OSError, ValueError):
        return 0, None


def whole(health):
    """Every replica up and in its group's confirmed view, none recovering."""
    views = health.get("views", [])
    if len(views) != 2 or health.get("down") or health.get("recovering"):
        return False
    members = set()
    for r in views:
        cur, conf = r["current"], r.get("confirmed")
        if not conf or conf["epoch"] != cur["epoch"] or cur["primary"] not in health["up"]:
            return False
        members.add(cur["primary"])
        members.update(cur["backups"])
    return members == set(REPLICAS)


def primary(health, group):
    for r in health["views"]:
        if r["current"]["group"].lower() == group:
            return r["current"]["primary"]
    raise RuntimeError(f"no {group} view in {health}")


class Buyer(threading.Thread):
    """Buys one copy after another through the original's GET /buy, as the
    original client did; records acknowledged order ids and failures."""

    def __init__(self, base):
        super().__init__(daemon=True)
        self.base = base
        self.stop = threading.Event()
        self.acked = []
        self.failed = 0
        self.sold_out = 0

    def run(self):
        item = 0
        while not self.stop.is_set():
            item = item % 7 + 1
            try:
                self.acked.append(client.buy(self.base, item))
            except client.Failed as e:
                if e.status == 404:
                    self.sold_out += 1  # sold out (restocked by 10): not a failure
                else:
                    self.failed += 1
                    time.sleep(0.05)


def buy_after_heal(base):
    """A buy that succeeds once healed (a sold-out item, restocked by that
    very buy, is bought again)."""
    for _ in range(3):
        try:
            return client.buy(base, 2)
        except client.Failed as e:
            if e.status != 404:
                raise
    raise RuntimeError("item 2 stayed sold out after three buys")


class Cluster:
    """Five nodes on five hosts; subclasses say how to start and break them."""

    def __init__(self, args, out):
        self.args = args
        self.out = out
        self.config = os.path.join(out, "pygmy.toml")

    def pygmy(self, *argv, check=True):
        return run([self.args.binary, *argv], check=check)

    def init(self, hosts, data_dir):
        if os.path.exists(self.config):
            os.remove(self.config)
        self.pygmy("init", "--hosts", ",".join(hosts), "--data-dir", data_dir,
                   "--out", self.config, "--readable")

    def health(self):
        status, body = http_json(f"{self.url}/health")
        return body if status in (200, 503) and isinstance(body, dict) else None

    def wait_seen_down(self, name, downtime):
        """Waits `downtime`; whether the front end listed `name` down
        meanwhile (a fault its heartbeats noticed)."""
        seen = False
        deadline = time.time() + downtime
        while time.time() < deadline:
            h = self.health() if not seen else None
            seen = seen or bool(h and name in h.get("down", []))
            time.sleep(0.1)
        return seen

    def wait_whole(self, timeout=PATIENCE):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = self.health()
            if last and whole(last):
                return last
            time.sleep(0.2)
        raise RuntimeError(f"the cluster was not whole after {timeout:.0f} s: {last}")


class DockerCluster(Cluster):
    """The compose cluster; faults through the docker CLI."""

    PROJECT = "pygmytest"
    HOST_BASE = 18010  # published ports, away from a developer's `pygmy up`

    def __init__(self, args, out):
        super().__init__(args, out)
        self.url = f"http://127.0.0.1:{self.HOST_BASE}"
        if run(["docker", "compose", "version"], check=False).returncode == 0:
            self.compose_cmd = ["docker", "compose"]
        else:
            self.compose_cmd = ["docker-compose"]
        self.env = dict(os.environ, PYGMY_CONFIG=self.config, PYGMY_IMAGE=args.image)
        for i, name in enumerate(NODES):
            self.env[f"PYGMY_PORT_{name.upper().replace('-', '_')}"] = str(self.HOST_BASE + i)

    def compose(self, *argv, check=True):
        cmd = [*self.compose_cmd, "-p", self.PROJECT, "-f", os.path.join(ROOT, "compose.yaml"), *argv]
        return run(cmd, check=check, env=self.env)

    def container(self, name):
        cid = self.compose("ps", "-q", name).stdout.strip()
        if not cid:
            raise RuntimeError(f"no container for {name}")
        return cid

    @property
    def network(self):
        return f"{self.PROJECT}_default"

    def start(self):
        self.compose("down", "-v", "--remove-orphans", check=False)
        # In the containers, data lives in each node's own volume at /data.
        self.init(NODES, "/data")
        self.compose("up", "-d")

    def kill(self, name):
        run(["docker", "kill", self.container(name)])

    def revive(self, name):
        run(["docker", "start", self.container(name)])

    def pause(self, name):
        run(["docker", "pause", self.container(name)])

    def resume(self, name):
        run(["docker", "unpause", self.container(name)])

    def cut(self, name):
        run(["docker", "network", "disconnect", self.network, self.container(name)])

    def reconnect(self, name):
        # Reattached under its service name, so its peers find it again.
        run(["docker", "network", "connect", "--alias", name, self.network, self.container(name)])

    def check(self, orders_file):
        """`pygmy check` from a container on the cluster's network (the
        advertised names resolve there only)."""
        return run(["docker", "run", "--rm", "--network", self.network,
                    "-v", f"{self.config}:/etc/pygmy/pygmy.toml:ro",
                    "-v", f"{orders_file}:/orders.txt:ro",
                    self.args.image, "check", "--config", "/etc/pygmy/pygmy.toml",
                    "--orders", "/orders.txt"], check=False)

    def collect_logs(self):
        dest = os.path.join(self.out, "logs")
        run([os.path.join(HERE, "collect-logs.sh"), dest], check=False,
            env=dict(self.env, COMPOSE_PROJECT_NAME=self.PROJECT))
        return dest

    def stop(self):
        self.compose("down", "-v", "--remove-orphans", check=False)


class NetnsCluster(Cluster):
    """One network namespace per node, joined by a bridge in a namespace of
    its own (so the host's firewall rules, Docker's included, do not apply
    to the bridged traffic). The test reaches the bridge through one more
    link from the host's namespace."""

    HUB = "pyg-hub"
    PREFIX = "10.77.0"

    def __init__(self, args, out):
        super().__init__(args, out)
        self.addr = {name: f"{self.PREFIX}.{10 + i}" for i, name in enumerate(NODES)}
        self.url = f"http://{self.addr['frontend']}:{PORTS['frontend']}"
        self.procs = {}
        self.logdir = os.path.join(out, "logs")

    def ns(self, name):
        return f"pyg-{name}"

    def ip(self, *argv, check=True):
        return run(["ip", *argv], check=check)

    def teardown_net(self):
        for name in NODES:
            self.ip("netns", "del", self.ns(name), check=False)
        self.ip("link", "del", "pyg-host", check=False)
        self.ip("netns", "del", self.HUB, check=False)

    def start(self):
        self.teardown_net()
        shutil.rmtree(os.path.join(self.out, "data"), ignore_errors=True)
        os.makedirs(self.logdir, exist_ok=True)
        self.ip("netns", "add", self.HUB)
        self.ip("-n", self.HUB, "link", "add", "br0", "type", "bridge")
        self.ip("-n", self.HUB, "link", "set", "br0", "up")
        # The host's own link to the bridge.
        self.ip("link", "add", "pyg-host", "type", "veth", "peer", "name", "h-host", "netns", self.HUB)
        self.ip("-n", self.HUB, "link", "set", "h-host", "master", "br0", "up")
        self.ip("addr", "add", f"{self.PREFIX}.1/24", "dev", "pyg-host")
        self.ip("link", "set", "pyg-host", "up")
        for i, name in enumerate(NODES):
            ns = self.ns(name)
            self.ip("netns", "add", ns)
            self.ip("-n", ns, "link", "set", "lo", "up")
            self.ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"h-{i}",
                    "netns", self.HUB)
            self.ip("-n", self.HUB, "link", "set", f"h-{i}", "master", "br0", "up")
            self.ip("-n", ns, "addr", "add", f"{self.addr[name]}/24", "dev", "eth0")
            self.ip("-n", ns, "link", "set", "eth0", "up")
        self.init([self.addr[n] for n in NODES], "data")
        for name in NODES:
            self.revive(name)

    def revive(self, name):
        logf = open(os.path.join(self.logdir, f"{name}.log"), "a")
        self.procs[name] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(name), self.args.binary, "node",
             "--config", self.config, "--name", name],
            stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)

    def kill(self, name):
        # `ip netns exec` execs the node: this pid is the node's.
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()

    def pause(self, name):
        self.procs[name].send_signal(signal.SIGSTOP)

    def resume(self, name):
        self.procs[name].send_signal(signal.SIGCONT)

    def link(self, name):
        return f"h-{NODES.index(name)}"

    def cut(self, name):
        self.ip("-n", self.HUB, "link", "set", self.link(name), "down")

    def reconnect(self, name):
        self.ip("-n", self.HUB, "link", "set", self.link(name), "up")

    def check(self, orders_file):
        return self.pygmy("check", "--config", self.config, "--orders", orders_file, check=False)

    def collect_logs(self):
        hb = os.path.join(self.out, "data", "heartbeat.log")
        if os.path.exists(hb):
            shutil.copy(hb, os.path.join(self.logdir, "heartbeat.log"))
        return self.logdir

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait()
        self.teardown_net()


def scenarios(health):
    """(name, what to break, how to break it, how to heal it)."""
    out = [(f"kill-{n}", lambda h, n=n: n, "kill", "revive") for n in REPLICAS]
    out.append(("kill-frontend", lambda h: "frontend", "kill", "revive"))
    out.append(("pause-primary", lambda h: primary(h, "order"), "pause", "resume"))
    out.append(("cut-primary", lambda h: primary(h, "catalog"), "cut", "reconnect"))
    return out


def load(cluster, seconds):
    """`pygmy load` in the background for `seconds`: its process."""
    return subprocess.Popen(
        [cluster.args.binary, "load", "--url", cluster.url, "--duration", f"{seconds}s",
         "--clients", "4", "--mix", "search=1,lookup=1,buy=2", "--timeout", "2s", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def load_summary(proc):
    out, _ = proc.communicate(timeout=120)
    try:
        total = json.loads(out)["total"]
        return {"requests": total["count"], "failed": total["failed"],
                "per_s": round(total["throughput"])}
    except (ValueError, KeyError, TypeError):
        return {"report": "none (the load did not print one)"}


def run_suite(cluster):
    results = []
    acked = []
    orders_file = os.path.join(cluster.out, "orders.txt")
    started = time.time()
    cluster.start()
    health = cluster.wait_whole(timeout=120)
    log(f"cluster whole after {time.time() - started:.1f} s")

    # The original client's session, then `pygmy load`, on the healthy cluster.
    for topic in client.TOPICS:
        for item, _ in client.search(cluster.url, topic):
            client.lookup(cluster.url, item)
    acked.append(client.buy(cluster.url, 1))
    smoke = load(cluster, 3)
    results.append({"scenario": "original-client-and-load", "load": load_summary(smoke)})
    results[-1]["ok"] = results[-1]["load"].get("failed") == 0
    log(f"original client and pygmy load: {results[-1]}")

    for name, target_of, brk, heal in scenarios(health):
        if cluster.args.only and name not in cluster.args.only:
            continue
        t0 = time.time()
        result = {"scenario": name, "ok": False}
        buyer = None
        try:
            health = cluster.wait_whole()
            target = target_of(health)
            result["target"] = target
            buyer = Buyer(cluster.url)
            buyer.start()
            traffic = load(cluster, int(DOWNTIME + 6))
            time.sleep(1.0)
            getattr(cluster, brk)(target)
            result["seen_down"] = cluster.wait_seen_down(target, DOWNTIME)
            getattr(cluster, heal)(target)
            cluster.wait_whole()
            after = buy_after_heal(cluster.url)
            time.sleep(0.5)
            buyer.stop.set()
            buyer.join()
            acked.extend(buyer.acked)
            acked.append(after)
            result.update(buys_acked=len(buyer.acked), buys_failed=buyer.failed,
                          load=load_summary(traffic))
            with open(orders_file, "w") as f:
                f.write("".join(f"{o}\n" for o in acked))
            os.chmod(orders_file, 0o644)
            verdict = cluster.check(orders_file)
            result["check"] = verdict.stdout.strip().splitlines()[-1:] + [verdict.stderr.strip()]
            # The fault must have been real: the front end saw the replica
            # down (the front end itself cannot report its own death).
            seen = result["seen_down"] or target == "frontend"
            result["ok"] = verdict.returncode == 0 and len(buyer.acked) > 0 and seen
            if verdict.returncode != 0:
                log(verdict.stdout + verdict.stderr)
        except Exception as e:  # a scenario that breaks is a failed scenario
            result["error"] = str(e)
        finally:
            # A buyer left running would keep the next scenarios' cluster
            # from ever settling.
            if buyer is not None and buyer.is_alive():
                buyer.stop.set()
                buyer.join()
                acked.extend(buyer.acked)
        result["seconds"] = round(time.time() - t0, 1)
        log(f"{name}: {'PASS' if result['ok'] else 'FAIL'} {result}")
        results.append(result)
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--docker", action="store_true", help="the compose cluster")
    mode.add_argument("--netns", action="store_true", help="one network namespace per node")
    p.add_argument("--binary", default=None,
                   help="the pygmy binary (default: the static build of deploy/build-image.sh, "
                        "else target/release/pygmy)")
    p.add_argument("--image", default="pygmy:latest", help="the image compose runs")
    p.add_argument("--out", default=os.path.join(ROOT, "target", "multihost"))
    p.add_argument("--only", nargs="+", metavar="SCENARIO",
                   help="run only these scenarios (kill-catalog-1 ... kill-frontend, pause-primary, cut-primary)")
    p.add_argument("--keep", action="store_true", help="leave the cluster running at the end")
    args = p.parse_args()
    if args.binary is None:
        static = os.path.join(ROOT, "target", "static", "x86_64-unknown-linux-gnu", "release", "pygmy")
        args.binary = static if os.path.exists(static) else os.path.join(ROOT, "target", "release", "pygmy")
    args.binary = os.path.abspath(args.binary)
    if not os.path.exists(args.binary):
        sys.exit(f"no pygmy binary at {args.binary} (build it, or pass --binary)")
    name = "docker" if args.docker else "netns"
    out = os.path.abspath(os.path.join(args.out, name))
    os.makedirs(out, exist_ok=True)
    cluster = (DockerCluster if args.docker else NetnsCluster)(args, out)
    started = time.time()
    results = []
    try:
        results = run_suite(cluster)
    except Exception as e:
        results.append({"scenario": "start", "ok": False, "error": str(e)})
        log(f"could not run: {e}")
    finally:
        logs = cluster.collect_logs()
        if not args.keep:
            cluster.stop()
    elapsed = time.time() - started
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"mode": name, "seconds": round(elapsed, 1), "results": results}, f, indent=2)
    print(f"\n{name}: {elapsed:.0f} s; logs in {logs}")
    for r in results:
        print(f"  {'PASS' if r['ok'] else 'FAIL'}  {r['scenario']}")
    sys.exit(0 if results and all(r["ok"] for r in results) else 1)


if __name__ == "__main__":
    main()
