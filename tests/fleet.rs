//! Three front ends sharing their views through a real etcd, under load
//! spread over them by `pygmy load`'s clients (`--url A,B,C`): kill -9 of
//! the leading front end, then of etcd itself; and `pygmy chaos --target
//! etcd` on the etcd `pygmy up` runs itself.
//!
//! The test starts etcd itself (a one-member etcd from the `etcd` binary,
//! Debian's `etcd-server`, on free loopback ports) and runs
//! `pygmy up --frontends 3 --etcd URL`, so it can kill etcd and the
//! cluster does not own it. Without the binary the test is skipped with a
//! message, except under CI (`CI` set), where `.ci/run` installs it and its
//! absence is a failure (as `pygmy-net/tests/etcd.rs` decides).
//!
//! What it checks: clients moved to another front end see no failure; a
//! new leader is elected after the leader's death (the time is measured
//! and printed, not asserted: two shared cores); reads and buys go on
//! while etcd is dead; and at the end nothing acknowledged is lost (the
//! invariant library, as tests/cli.rs uses it).

mod support;

use clap::Parser;
use pygmy::load::{self, Plan, TrafficArgs, Until};
use pygmy_core::invariants::check_settled;
use pygmy_net::etcd::launch::{find_binary, INSTALL_HINT};
use pygmy_net::etcd::{Etcd, EtcdConfig, LocalEtcd};
use std::time::{Duration, Instant};
use support::{Cluster, PATIENCE};

/// A running etcd and its folder (removed after the etcd is killed:
/// fields drop in order).
struct Fixture {
    etcd: LocalEtcd,
    _dir: tempfile::TempDir,
}

/// Starts an etcd, or returns `None` (after saying why) when there is no
/// binary outside CI.
async fn start_etcd() -> Option<Fixture> {
    if !etcd_installed() {
        return None;
    }
    let dir = tempfile::tempdir().expect("a temporary folder");
    match LocalEtcd::start_on_free_ports(dir.path(), |o| o).await {
        Ok(etcd) => Some(Fixture { etcd, _dir: dir }),
        Err(e) => panic!("etcd did not start: {e}"),
    }
}

/// True when there is an etcd binary; false (after saying so) when there
/// is none outside CI; a failure under CI.
fn etcd_installed() -> bool {
    if find_binary().is_some() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("no etcd binary under CI: {INSTALL_HINT}");
    }
    eprintln!("SKIPPED: no etcd binary; {INSTALL_HINT}");
    false
}

/// The flags of `pygmy load` / `chaos` for the clients.
#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    traffic: TrafficArgs,
}

/// The leading front end's name, as etcd holds it (`None`: no leader).
async fn leader(etcd: &Etcd) -> Option<String> {
    let kv = etcd.get(b"/pygmy/leader").await.ok()??;
    String::from_utf8(kv.value).ok()
}

/// Polls until `done` holds for the leader, or fails after `PATIENCE`.
async fn wait_leader(etcd: &Etcd, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(name) = leader(etcd).await {
            if done(&name) {
                return name;
            }
        }
        assert!(Instant::now() < deadline, "waited {PATIENCE:?} for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_front_ends_survive_the_leaders_death_and_etcds() {
    let Some(mut fx) = start_etcd().await else {
        return;
    };
    let endpoint = fx.etcd.endpoint();
    // Three front ends and 2 + 2 replicas: seven ports.
    let mut c = Cluster::start_with(7, &["--frontends", "3", "--etcd", &endpoint]).await;
    assert_eq!(c.cfg.frontends.len(), 3);
    let mut config = EtcdConfig::new([endpoint.clone()]);
    config.request_timeout = Duration::from_millis(500);
    let etcd = Etcd::new(config).expect("a valid endpoint");
    let first = wait_leader(&etcd, "a leader", |_| true).await;

    let urls: Vec<String> = c
        .cfg
        .frontends
        .iter()
        .map(|n| format!("http://{}", n.addr))
        .collect();
    let flags = Flags::parse_from([
        "load",
        "--clients",
        "6",
        "--api",
        "rest",
        "--mix",
        "search=1,lookup=1,buy=2",
    ]);
    let running = load::start(Plan {
        url: urls.join(","),
        traffic: flags.traffic,
        until: Until::Stopped,
    })
    .await
    .expect("the load starts");
    tokio::time::sleep(Duration::from_secs(1)).await;

    // kill -9 the leader, under load.
    c.kill(&first);
    let killed = Instant::now();
    let second = wait_leader(&etcd, "a new leader", |name| name != first).await;
    let took = killed.elapsed();
    eprintln!(
        "new leader {second} {} ms after {first} was killed (lease {} ms)",
        took.as_millis(),
        match &c.cfg.coordinator {
            pygmy::config::CoordinatorConfig::Etcd { lease_ms, .. } => *lease_ms,
            _ => 0,
        }
    );
    assert_ne!(second, first);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // kill -9 etcd: reads and buys go on under the current views.
    fx.etcd.kill();
    let counts = running.counts();
    let orders = running.orders_acknowledged();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = running.counts().since(counts);
    let bought = running.orders_acknowledged() - orders;
    eprintln!(
        "with etcd dead for 2 s: {} requests, {} errors, {} failed, {bought} buys acknowledged",
        during.requests, during.errors, during.failed
    );
    assert!(
        during.requests > during.errors,
        "no request succeeded while etcd was dead: {during:?}"
    );
    assert!(bought > 0, "no buy was acknowledged while etcd was dead");

    // Bring both back, stop the load, and look for anything lost.
    fx.etcd.restart().await.expect("etcd restarts");
    c.restart(&first);
    tokio::time::sleep(Duration::from_secs(1)).await;
    running.stop();
    let (report, acknowledged) = running.finish().await;
    eprintln!(
        "load: {} requests, {} errors, {} failed, {} failovers, {} buys acknowledged",
        report.total.count,
        report.total.errors,
        report.total.failed,
        report.failovers,
        acknowledged.len()
    );
    assert_eq!(
        report.total.failed,
        0,
        "clients saw failures: {}",
        report.table()
    );
    assert!(
        report.failovers > 0,
        "no client moved off the killed front end"
    );
    assert!(!acknowledged.is_empty(), "no buy was acknowledged");
    let states = c.settled_states().await;
    let violations = check_settled(&states, &acknowledged);
    assert!(violations.is_empty(), "{violations:#?}");
}

/// `pygmy chaos --target etcd` on a cluster whose etcd `pygmy up` runs:
/// etcd is killed under load and started again by chaos; no request fails,
/// buys go on meanwhile, and `up` stops the etcd chaos restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kills_the_local_etcd_and_no_request_fails() {
    if !etcd_installed() {
        return;
    }
    // Three front ends, 2 + 2 replicas and etcd's two ports.
    let mut c = Cluster::start_with(9, &["--frontends", "3"]).await;
    assert!(pygmy::up::has_local_etcd(&c.cfg));
    c.wait_whole().await;
    let first = pygmy::up::running_etcd_pid(&c.cfg).expect("up records its etcd's pid");
    let out = support::pygmy()
        .args(["chaos", "--dir"])
        .arg(&c.dir)
        .args(["--target", "etcd", "--downtime", "2s", "--settle", "500ms"])
        .args(["--clients", "4", "--api", "rest", "--json"])
        .output()
        .expect("run pygmy chaos");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["ok"], true, "{report:#}");
    let rounds = report["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 1, "{report:#}");
    let round = &rounds[0];
    eprintln!("etcd round: {round}");
    assert_eq!(round["target"], "etcd");
    assert_eq!(round["killed_pid"], first);
    assert_eq!(round["requests"]["failed"], 0, "{round}");
    assert!(
        round["requests"]["requests"].as_u64().unwrap() > 0,
        "{round}"
    );
    assert!(round["recover_ms"].is_number(), "{round}");
    assert_eq!(report["failed_requests"], 0);
    assert_eq!(report["orders_missing"], serde_json::json!([]));
    let restarted = pygmy::up::running_etcd_pid(&c.cfg).expect("chaos restarted etcd");
    assert_eq!(round["restarted_pid"], restarted);
    assert_ne!(restarted, first);
    // `up` stops the etcd that chaos started (`stop` waits for it).
    c.stop();
}

#[test]
fn several_front_ends_without_an_etcd_binary_say_how_to_get_one() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let base = support::free_ports(9).to_string();
    let out = support::pygmy()
        .args(["up", "--dir"])
        .arg(dir.path())
        .args(["--frontends", "2", "--base-port", &base])
        .env("PYGMY_ETCD_BIN", "/nonexistent/etcd")
        .output()
        .expect("run pygmy up");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("apt-get install etcd-server") && err.contains("--etcd URL"),
        "{err}"
    );
    // Nothing recorded: the same folder can be started with --etcd.
    assert!(!dir.path().join("pygmy.toml").exists());
}
