//! `pygmy chaos`: the original's fault-tolerance script, measured. On a
//! cluster started by `pygmy up --dir DIR`, under client load (the
//! [`load`] module), it kills nodes with SIGKILL, restarts
//! them with the command line `up` uses, and checks that nothing was lost.
//!
//! # A round
//!
//! For a replica: wait until the cluster is whole (every replica up and in
//! its group's confirmed view), kill the replica, and time
//!
//! - **detect**: until the front end's `/health` lists it down;
//! - **failover**: until its group has a confirmed view without it (writes
//!   flow again; for a backup this is the view that drops it);
//! - **resync**: from the restart until it is back in a confirmed view and
//!   its commit has reached the primary's (read just before), so it holds
//!   every entry committed while it was down.
//!
//! The replica stays dead for `--downtime`, so the group runs on one
//! replica under load for a while. The front end's round times how long it
//! takes to serve again after its restart, and checks it kept its views
//! (their epochs never go back: the view record is durable). Requests sent
//! while the only front end is dead cannot succeed, so its round's
//! failures are reported but do not fail the run. With several front ends
//! (`frontend-2`, …: any can be a target) the load is spread over all of
//! them and its clients move to another when theirs dies, so no failure is
//! excused.
//!
//! `--target etcd` kills the etcd that `pygmy up` runs for several front
//! ends (its pid in `DIR/etcd.pid`) and starts it again on the same data
//! and ports after the downtime, leaving it to `up` to stop at the end (an
//! etcd named with `up --etcd URL` is the user's to kill). The round checks
//! the promise of the coordination boundary: while etcd is dead, reads and
//! buys go on under the current views (only view changes wait), so no
//! request may fail and some buys must be acknowledged; after the restart
//! a leader holds the leadership key again, and no view went back.
//!
//! # The verdict
//!
//! After the rounds the load stops, the cluster is left to settle (every
//! replica caught up, no buy pending), and every replica's state is read
//! over the internal RPC. The run fails (exit code 1) if a replica round
//! saw a client request fail, a group's replicas are not identical, an
//! item's stock and orders do not balance (`initial + restocked - stock =
//! copies ordered`), an order acknowledged to a client is missing, or a
//! step did not happen in time.

use crate::config::{ClusterConfig, CoordinatorConfig};
use crate::inspect::Inspector;
use crate::load::{self, parse_duration, Counts, Mix, Plan, Report, TrafficArgs, Until};
use crate::proc::{self, Attach};
use crate::up::{self, is_whole};
use pygmy_core::invariants::orders::missing_orders;
use pygmy_core::invariants::{balances, check_settled, ItemBalance};
use pygmy_core::unstable::frontend::Health;
use pygmy_core::unstable::state::{State, StateMachine};
use pygmy_core::unstable::types::{Group, NodeId};
use pygmy_net::etcd::{Etcd, EtcdConfig};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often the front end's health and the replicas' status are polled
/// while timing a step; the times reported are this precise.
const POLL: Duration = Duration::from_millis(10);

/// `pygmy chaos`'s flags.
#[derive(clap::Args, Clone, Debug)]
pub struct ChaosArgs {
    /// The folder of a cluster started with `pygmy up --dir DIR`.
    #[arg(long, default_value = "pygmy-data")]
    pub dir: PathBuf,
    /// What to kill: `each` (every replica in turn), `frontend` (the first
    /// front end), `etcd` (the local etcd `up --frontends N` runs), `all`
    /// (every replica, then every front end, then the local etcd if any),
    /// or a node name such as `catalog-1` or `frontend-2`.
    #[arg(long, default_value = "each")]
    pub target: String,
    #[command(flatten)]
    pub traffic: TrafficArgs,
    /// How long a killed node stays dead before it is restarted.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub downtime: Duration,
    /// Load before the first kill and after the last restart.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Give up on a step (detection, resync, convergence) after this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub patience: Duration,
    /// Print the report as JSON (on standard output) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The default mix of `chaos`: buys enough to keep both groups writing.
pub fn default_mix() -> Mix {
    Mix::Weighted([1, 1, 2])
}

/// One kill and restart.
#[derive(Clone, Debug, Serialize)]
pub struct Round {
    pub target: String,
    /// `primary`, `backup`, `frontend`, `etcd` (or `outside the view`).
    pub role: String,
    pub killed_pid: u32,
    pub restarted_pid: u32,
    /// Kill → the front end lists it down (replicas only).
    pub detect_ms: Option<f64>,
    /// Kill → a confirmed view of its group without it (replicas only).
    pub failover_ms: Option<f64>,
    /// Restart → caught up and back in a confirmed view (replicas), or
    /// serving with every replica up (front end).
    pub recover_ms: Option<f64>,
    /// Entries its group committed while it was dead (replicas only).
    pub missed_entries: Option<u64>,
    /// Client requests from the kill to the recovery.
    pub requests: Counts,
    /// Front end only: each group's view epoch before → after.
    pub views: Vec<String>,
    /// What went wrong in this round, if anything.
    pub problems: Vec<String>,
}

/// One replica at the end.
#[derive(Clone, Debug, Serialize)]
pub struct ReplicaEnd {
    pub name: String,
    pub commit: u64,
    pub digest: String,
}

/// One group at the end.
#[derive(Clone, Debug, Serialize)]
pub struct GroupEnd {
    pub group: String,
    pub replicas: Vec<ReplicaEnd>,
    /// Every replica's committed state equals the others'.
    pub identical: bool,
}

impl GroupEnd {
    /// The group for people, on one line: `catalog  identical: catalog-1
    /// commit 5 digest …, …` (`pygmy chaos` and `pygmy check`).
    pub fn line(&self) -> String {
        let parts: Vec<String> = self
            .replicas
            .iter()
            .map(|r| format!("{} commit {} digest {}", r.name, r.commit, r.digest))
            .collect();
        let same = if self.identical {
            "identical"
        } else {
            "DIFFERENT"
        };
        format!("{:<8} {same}: {}", self.group, parts.join(", "))
    }
}

/// The closing lines of a verdict for people: OK, or FAILED with each
/// problem (`pygmy chaos` and `pygmy check`).
pub fn verdict_text(ok: bool, problems: &[String]) -> String {
    if ok {
        return "verdict: OK, nothing lost, replicas identical\n".to_string();
    }
    let mut out = "verdict: FAILED\n".to_string();
    for p in problems {
        out.push_str(&format!("  - {p}\n"));
    }
    out
}

/// `chaos`'s whole report.
#[derive(Clone, Debug, Serialize)]
pub struct ChaosReport {
    pub dir: String,
    pub rounds: Vec<Round>,
    pub load: Report,
    /// Failed client requests outside the front end's outages.
    pub failed_requests: u64,
    pub groups: Vec<GroupEnd>,
    pub books: Vec<ItemBalance>,
    pub orders_acknowledged: usize,
    pub orders_missing: Vec<u64>,
    pub buys_pending: usize,
    pub problems: Vec<String>,
    pub ok: bool,
}

/// `pygmy chaos`, to the end. `Err` only when it could not run at all.
pub async fn run(args: &ChaosArgs) -> Result<ChaosReport, String> {
    let (cfg, config_path) = up::read_config(&args.dir)?;
    let targets = targets(&cfg, &args.target)?;
    let say = |line: String| {
        if !args.json {
            eprintln!("{line}");
        }
    };
    for group in [&cfg.catalog, &cfg.order] {
        if group.len() < 2 && targets.iter().any(|t| group.iter().any(|n| &n.name == t)) {
            say(format!(
                "note: {} has a single replica; clients will see failures while it is dead",
                group[0].name
            ));
        }
    }
    let inspector = Inspector::new(&cfg);
    let health = up::wait_health(&cfg, args.patience, |h| is_whole(&cfg, h), || Ok(()))
        .await
        .map_err(|e| {
            format!(
                "the cluster of {} is not whole ({e}); is `pygmy up --dir {}` running?",
                args.dir.display(),
                args.dir.display()
            )
        })?;
    say(format!("cluster: {}", up::summary(&health)));
    let mut traffic = args.traffic.clone();
    traffic.mix.get_or_insert_with(default_mix);
    let running = load::start(Plan {
        // Every front end: a client whose front end fails moves to another.
        url: cfg
            .frontends
            .iter()
            .map(|n| format!("http://{}", n.addr))
            .collect::<Vec<_>>()
            .join(","),
        traffic,
        until: Until::Stopped,
    })
    .await?;
    say(format!(
        "load: {} clients, seed {}",
        args.traffic.clients,
        running.seed()
    ));
    tokio::time::sleep(args.settle).await;

    let mut rounds = Vec::new();
    let mut problems = Vec::new();
    for target in &targets {
        let round = async {
            if target == up::ETCD {
                etcd_round(args, &cfg, &running).await
            } else if cfg.is_frontend(target) {
                frontend_round(args, &cfg, &config_path, &running, target).await
            } else {
                replica_round(args, &cfg, &config_path, &inspector, &running, target).await
            }
        };
        let round = tokio::select! {
            r = round => r,
            _ = tokio::signal::ctrl_c() => {
                // Leave the cluster as it was found: whole.
                if target == up::ETCD {
                    if up::running_etcd_pid(&cfg).is_none() {
                        if let Ok(Some(etcd)) = up::start_local_etcd(&cfg).await {
                            if let Some(pid) = etcd.detach() {
                                let _ = up::write_etcd_pid(&cfg, pid);
                            }
                            say("interrupted; restarted etcd".into());
                        }
                    }
                } else if proc::running_pid(&cfg, target).is_none() {
                    let _ = proc::spawn_node(&cfg, &config_path, target, Attach::Detached);
                    say(format!("interrupted; restarted {target}"));
                }
                running.stop();
                return Err(format!("interrupted during the {target} round"));
            }
        };
        let round = match round {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("{target}: {e}"));
                break;
            }
        };
        say(round_line(&round));
        problems.extend(round.problems.iter().map(|p| format!("{target}: {p}")));
        rounds.push(round);
    }
    tokio::time::sleep(args.settle).await;
    running.stop();
    let (report, acknowledged) = running.finish().await;

    // Failures while the only front end was dead are expected; any other
    // is not (with several, clients move to another front end).
    let excused: u64 = rounds
        .iter()
        .filter(|r| r.role == "frontend" && cfg.frontends.len() == 1)
        .map(|r| r.requests.failed)
        .sum();
    let failed_requests = report.total.failed.saturating_sub(excused);
    if failed_requests > 0 {
        problems.push(format!(
            "{failed_requests} client requests failed while the front end was up"
        ));
    }

    let end = settle_and_read(&cfg, &inspector, args.patience).await;
    let (groups, books, missing, pending) = match end {
        Ok(states) => check_states(&states, &acknowledged, &mut problems),
        Err(e) => {
            problems.push(e);
            (Vec::new(), Vec::new(), Vec::new(), 0)
        }
    };
    let ok = problems.is_empty();
    Ok(ChaosReport {
        dir: cfg.data_dir.display().to_string(),
        rounds,
        load: report,
        failed_requests,
        groups,
        books,
        orders_acknowledged: acknowledged.len(),
        orders_missing: missing,
        buys_pending: pending,
        problems,
        ok,
    })
}

/// The nodes `--target` names, in the order they are killed.
fn targets(cfg: &ClusterConfig, target: &str) -> Result<Vec<String>, String> {
    let replicas: Vec<String> = cfg
        .catalog
        .iter()
        .chain(cfg.order.iter())
        .map(|n| n.name.clone())
        .collect();
    let local_etcd = up::has_local_etcd(cfg);
    match target {
        "each" => Ok(replicas),
        "all" => Ok(replicas
            .into_iter()
            .chain(cfg.frontends.iter().map(|n| n.name.clone()))
            .chain(local_etcd.then(|| up::ETCD.to_string()))
            .collect()),
        "frontend" => Ok(vec![cfg.frontend().name.clone()]),
        up::ETCD if local_etcd => Ok(vec![up::ETCD.to_string()]),
        up::ETCD => Err(match cfg.coordinator {
            CoordinatorConfig::Builtin => {
                "--target etcd: this cluster has no etcd (one front end, \
                 the built-in coordinator); `pygmy up --frontends 3` runs one"
                    .to_string()
            }
            CoordinatorConfig::Etcd { .. } => "--target etcd: this cluster uses an etcd that \
                 `pygmy up` did not start (--etcd URL), so chaos cannot restart it; kill and \
                 restart it yourself"
                .to_string(),
        }),
        name if cfg.node(name).is_some() => Ok(vec![name.to_string()]),
        other => Err(format!(
            "unknown --target {other:?}: expected each, all, frontend, etcd, or one of {}",
            cfg.nodes()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

/// The live pid of `name`, or why there is none.
fn pid_of(cfg: &ClusterConfig, name: &str) -> Result<u32, String> {
    proc::running_pid(cfg, name).ok_or_else(|| {
        format!(
            "{name} is not running (no live process in {})",
            proc::pid_path(cfg, name).display()
        )
    })
}

/// Kills replica `name`, restarts it after the downtime, times each step.
async fn replica_round(
    args: &ChaosArgs,
    cfg: &ClusterConfig,
    config_path: &std::path::Path,
    inspector: &Inspector,
    running: &load::Running,
    name: &str,
) -> Result<Round, String> {
    let id = NodeId::new(name);
    let group = cfg
        .group_of(name)
        .ok_or_else(|| format!("{name} is not a replica"))?;
    let before = up::wait_health(cfg, args.patience, |h| is_whole(cfg, h), || Ok(()))
        .await
        .map_err(|e| format!("the cluster did not become whole before the kill: {e}"))?;
    let view = view_of(&before, group).ok_or("no view of its group")?;
    let role = if view.primary == id {
        "primary"
    } else if view.backups.contains(&id) {
        "backup"
    } else {
        "outside the view"
    };
    let primary_before = view.primary.to_string();
    let commit_before = inspector
        .status(&primary_before)
        .await
        .map(|s| s.commit)
        .ok();
    let pid = pid_of(cfg, name)?;
    let counts_before = running.counts();
    let killed = Instant::now();
    proc::signal(pid, "KILL")?;
    let mut problems = Vec::new();

    // Detection and failover, polled together.
    let (mut detect, mut failover) = (None, None);
    let deadline = killed + args.patience;
    while (detect.is_none() || failover.is_none()) && Instant::now() < deadline {
        if let Ok(h) = up::health(cfg).await {
            if detect.is_none() && h.down.contains(&id) {
                detect = Some(killed.elapsed());
            }
            let moved_on = h
                .views
                .iter()
                .any(|r| r.current.group == group && r.is_confirmed() && !r.current.contains(&id));
            if failover.is_none() && moved_on {
                failover = Some(killed.elapsed());
            }
        }
        tokio::time::sleep(POLL).await;
    }
    if detect.is_none() {
        problems.push(format!(
            "the front end did not see it down in {:?}",
            args.patience
        ));
    }
    if failover.is_none() {
        problems.push(format!(
            "its group had no confirmed view without it in {:?}",
            args.patience
        ));
    }

    let wake = killed + args.downtime;
    tokio::time::sleep_until(wake.into()).await;
    let child = proc::spawn_node(cfg, config_path, name, Attach::Detached)?;
    let restarted = Instant::now();
    let restarted_pid = child.id();
    // The process runs on its own; `up` stops it through its pid file.
    drop(child);
    let primary_now = up::health(cfg)
        .await
        .ok()
        .and_then(|h| view_of(&h, group).map(|v| v.primary.to_string()));
    let missed = match (&primary_now, commit_before) {
        (Some(p), Some(c)) => inspector
            .status(p)
            .await
            .ok()
            .map(|s| s.commit.saturating_sub(c)),
        _ => None,
    };

    // Resync: back in a confirmed view, and caught up with the primary.
    let mut recover = None;
    let deadline = restarted + args.patience;
    while recover.is_none() && Instant::now() < deadline {
        if caught_up(cfg, inspector, group, &id).await {
            recover = Some(restarted.elapsed());
        } else {
            tokio::time::sleep(POLL).await;
        }
    }
    if recover.is_none() {
        problems.push(format!(
            "it did not rejoin its group caught up in {:?}",
            args.patience
        ));
    }
    let requests = running.counts().since(counts_before);
    if requests.failed > 0 {
        problems.push(format!(
            "{} client requests failed while it was dead or resyncing",
            requests.failed
        ));
    }
    Ok(Round {
        target: name.to_string(),
        role: role.to_string(),
        killed_pid: pid,
        restarted_pid,
        detect_ms: detect.map(ms),
        failover_ms: failover.map(ms),
        recover_ms: recover.map(ms),
        missed_entries: missed,
        requests,
        views: Vec::new(),
        problems,
    })
}

/// True when `id` is in its group's confirmed view and its commit has
/// reached the primary's, read just before its own.
async fn caught_up(cfg: &ClusterConfig, inspector: &Inspector, group: Group, id: &NodeId) -> bool {
    let Ok(h) = up::health(cfg).await else {
        return false;
    };
    let Some(record) = h.views.iter().find(|r| r.current.group == group) else {
        return false;
    };
    if !record.is_confirmed() || !record.current.contains(id) || h.down.contains(id) {
        return false;
    }
    let primary = record.current.primary.to_string();
    let Ok(p) = inspector.status(&primary).await else {
        return false;
    };
    if primary == id.as_str() {
        return p.serving;
    }
    match inspector.status(id.as_str()).await {
        Ok(me) => me.epoch == record.current.epoch && me.commit >= p.commit,
        Err(_) => false,
    }
}

/// Kills the front end, restarts it after the downtime, checks its views.
async fn frontend_round(
    args: &ChaosArgs,
    cfg: &ClusterConfig,
    config_path: &std::path::Path,
    running: &load::Running,
    name: &str,
) -> Result<Round, String> {
    let name = name.to_string();
    let before = up::wait_health(cfg, args.patience, |h| is_whole(cfg, h), || Ok(()))
        .await
        .map_err(|e| format!("the cluster did not become whole before the kill: {e}"))?;
    let pid = pid_of(cfg, &name)?;
    let counts_before = running.counts();
    let killed = Instant::now();
    proc::signal(pid, "KILL")?;
    tokio::time::sleep_until((killed + args.downtime).into()).await;
    let child = proc::spawn_node(cfg, config_path, &name, Attach::Detached)?;
    let restarted = Instant::now();
    let restarted_pid = child.id();
    drop(child);
    let mut problems = Vec::new();
    let after = up::wait_health(cfg, args.patience, |h| is_whole(cfg, h), || Ok(())).await;
    let recover = after.as_ref().ok().map(|_| restarted.elapsed());
    let requests = running.counts().since(counts_before);
    let mut views = Vec::new();
    match after {
        Err(e) => problems.push(format!("it did not serve again with every replica up: {e}")),
        Ok(after) => views = compare_views(&before, &after, &mut problems),
    }
    Ok(Round {
        target: name,
        role: "frontend".into(),
        killed_pid: pid,
        restarted_pid,
        detect_ms: None,
        failover_ms: None,
        recover_ms: recover.map(ms),
        missed_entries: None,
        requests,
        views,
        problems,
    })
}

/// Kills the local etcd, starts it again after the downtime, and checks
/// that the front ends served reads and buys while it was dead, that a
/// leader holds the leadership key again after the restart, and that no
/// view went back.
async fn etcd_round(
    args: &ChaosArgs,
    cfg: &ClusterConfig,
    running: &load::Running,
) -> Result<Round, String> {
    let CoordinatorConfig::Etcd {
        endpoints, prefix, ..
    } = &cfg.coordinator
    else {
        return Err("this cluster has no etcd".into());
    };
    let before = up::wait_health(cfg, args.patience, |h| is_whole(cfg, h), || Ok(()))
        .await
        .map_err(|e| format!("the cluster did not become whole before the kill: {e}"))?;
    let pid = up::running_etcd_pid(cfg).ok_or_else(|| {
        format!(
            "the local etcd is not running (no live etcd process in {})",
            proc::pid_path(cfg, up::ETCD).display()
        )
    })?;
    let counts_before = running.counts();
    let orders_before = running.orders_acknowledged();
    let killed = Instant::now();
    proc::signal(pid, "KILL")?;
    tokio::time::sleep_until((killed + args.downtime).into()).await;
    let during = running.counts().since(counts_before);
    let bought = running.orders_acknowledged() - orders_before;
    let etcd = up::start_local_etcd(cfg)
        .await?
        .ok_or("the local etcd's folder is gone")?;
    let restarted = Instant::now();
    let restarted_pid = etcd.detach().ok_or("the restarted etcd has no process")?;
    up::write_etcd_pid(cfg, restarted_pid)?;

    let mut problems = Vec::new();
    if during.requests == during.errors {
        problems.push(format!(
            "no request succeeded while etcd was dead ({} sent)",
            during.requests
        ));
    }
    // (A mix without buys acknowledged none before the kill either.)
    if bought == 0 && orders_before > 0 {
        problems.push("no buy was acknowledged while etcd was dead".into());
    }
    let mut config = EtcdConfig::new(endpoints.clone());
    config.request_timeout = Duration::from_millis(500);
    let client = Etcd::new(config).map_err(|e| format!("etcd endpoints: {e}"))?;
    let leader_key = format!("{prefix}leader").into_bytes();
    let deadline = restarted + args.patience;
    let mut recover = None;
    let mut views = Vec::new();
    while Instant::now() < deadline {
        let led = matches!(client.get(&leader_key).await, Ok(Some(_)));
        let whole = up::health(cfg).await.ok().filter(|h| is_whole(cfg, h));
        if let (true, Some(after)) = (led, whole) {
            recover = Some(restarted.elapsed());
            views = compare_views(&before, &after, &mut problems);
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    if recover.is_none() {
        problems.push(format!(
            "no front end led again with the cluster whole within {:?}",
            args.patience
        ));
    }
    Ok(Round {
        target: up::ETCD.into(),
        role: "etcd".into(),
        killed_pid: pid,
        restarted_pid,
        detect_ms: None,
        failover_ms: None,
        recover_ms: recover.map(ms),
        missed_entries: None,
        requests: running.counts().since(counts_before),
        views,
        problems,
    })
}

/// Each group's view epoch before and after a restart (`catalog epoch 3 →
/// 3`), with a problem for a group whose view went back or is missing:
/// the views are durable (in the view record or in etcd), so a restart
/// must never lose one.
fn compare_views(before: &Health, after: &Health, problems: &mut Vec<String>) -> Vec<String> {
    let mut views = Vec::new();
    for group in Group::ALL {
        let (Some(b), Some(a)) = (view_of(before, group), view_of(after, group)) else {
            problems.push(format!("no view of the {group} group after the restart"));
            continue;
        };
        views.push(format!("{group} epoch {} → {}", b.epoch, a.epoch));
        if a.epoch < b.epoch {
            problems.push(format!(
                "the {group} view went back from epoch {} to {}",
                b.epoch, a.epoch
            ));
        }
    }
    views
}

fn view_of(h: &Health, group: Group) -> Option<&pygmy_core::unstable::view::View> {
    h.views
        .iter()
        .find(|r| r.current.group == group)
        .map(|r| &r.current)
}

/// Every replica's state, once the cluster has settled: whole, each group's
/// replicas at the same commit, no buy pending.
pub(crate) async fn settle_and_read(
    cfg: &ClusterConfig,
    inspector: &Inspector,
    patience: Duration,
) -> Result<Vec<(String, Group, State, u64)>, String> {
    let deadline = Instant::now() + patience;
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        match read_all(cfg, inspector).await {
            Ok(states) => {
                let settled = Group::ALL.iter().all(|g| {
                    let commits: BTreeSet<u64> =
                        states.iter().filter(|s| s.1 == *g).map(|s| s.3).collect();
                    commits.len() == 1
                });
                let pending = states.iter().any(|s| match &s.2 {
                    State::Orders(o) => !o.pending().is_empty(),
                    State::Catalog(_) => false,
                });
                let whole = up::health(cfg).await.is_ok_and(|h| is_whole(cfg, &h));
                if settled && !pending && whole {
                    return Ok(states);
                }
                last = format!(
                    "replicas at equal commits: {settled}, buys pending: {pending}, cluster whole: {whole}"
                );
            }
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "the cluster did not settle in {patience:?} ({last})"
    ))
}

async fn read_all(
    cfg: &ClusterConfig,
    inspector: &Inspector,
) -> Result<Vec<(String, Group, State, u64)>, String> {
    let mut states = Vec::new();
    for (group, members) in [(Group::Catalog, &cfg.catalog), (Group::Order, &cfg.order)] {
        for n in members {
            let (state, lsn) = inspector.dump(&n.name).await?;
            states.push((n.name.clone(), group, state, lsn));
        }
    }
    Ok(states)
}

pub(crate) type Checked = (Vec<GroupEnd>, Vec<ItemBalance>, Vec<u64>, usize);

/// Compares replicas, balances the books, looks for every acknowledged
/// order. The verdict is the invariant library's ([`check_settled`]); the
/// rest is the report's detail.
pub(crate) fn check_states(
    states: &[(String, Group, State, u64)],
    acknowledged: &[u64],
    problems: &mut Vec<String>,
) -> Checked {
    let named: Vec<(String, State)> = states.iter().map(|s| (s.0.clone(), s.2.clone())).collect();
    problems.extend(
        check_settled(&named, acknowledged)
            .iter()
            .map(|v| v.to_string()),
    );
    let mut groups = Vec::new();
    for group in Group::ALL {
        let members: Vec<_> = states.iter().filter(|s| s.1 == group).collect();
        groups.push(GroupEnd {
            group: group.to_string(),
            replicas: members
                .iter()
                .map(|s| ReplicaEnd {
                    name: s.0.clone(),
                    commit: s.3,
                    digest: format!("{:016x}", s.2.digest()),
                })
                .collect(),
            identical: members.windows(2).all(|w| w[0].2 == w[1].2),
        });
    }
    let catalog = states.iter().find_map(|s| match &s.2 {
        State::Catalog(c) => Some(c),
        State::Orders(_) => None,
    });
    let ledgers: Vec<_> = states
        .iter()
        .filter_map(|s| match &s.2 {
            State::Orders(o) => Some((s.0.as_str(), o)),
            State::Catalog(_) => None,
        })
        .collect();
    let (Some(catalog), Some((_, ledger))) = (catalog, ledgers.first()) else {
        return (groups, Vec::new(), Vec::new(), 0);
    };
    let books = balances(catalog, ledger);
    let mut missing: Vec<u64> = missing_orders(acknowledged, &ledgers)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    missing.sort_unstable();
    missing.dedup();
    (groups, books, missing, ledger.pending().len())
}

/// One line per round, for people.
fn round_line(r: &Round) -> String {
    let t = |v: Option<f64>| v.map_or("-".to_string(), |ms| format!("{ms:.0} ms"));
    let mut line = format!(
        "{:<10} {:<8} pid {:>7} → {:<7} detect {:>7}  failover {:>7}  recover {:>7}  {} requests, {} failed",
        r.target,
        r.role,
        r.killed_pid,
        r.restarted_pid,
        t(r.detect_ms),
        t(r.failover_ms),
        t(r.recover_ms),
        r.requests.requests,
        r.requests.failed
    );
    if let Some(m) = r.missed_entries {
        line.push_str(&format!(", {m} entries to catch up"));
    }
    if !r.views.is_empty() {
        line.push_str(&format!(", views {}", r.views.join(", ")));
    }
    line
}

impl ChaosReport {
    /// The report as text, for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        out.push_str("rounds (kill -9, restart):\n");
        for r in &self.rounds {
            out.push_str(&format!("  {}\n", round_line(r)));
        }
        let excused: u64 = self
            .rounds
            .iter()
            .filter(|r| r.role == "frontend")
            .map(|r| r.requests.failed)
            .sum();
        let several = self.load.url.contains(',');
        if several {
            out.push_str(&format!(
                "  {} requests moved to another front end (several front ends: none is excused)\n",
                self.load.failovers
            ));
        } else if self.rounds.iter().any(|r| r.role == "frontend") {
            out.push_str(&format!(
                "  {excused} requests failed while the front end was dead (expected: it is the only entry point)\n"
            ));
        }
        out.push_str(&format!(
            "  {} requests failed at other times\n",
            self.failed_requests
        ));
        out.push_str("\nload during the run:\n");
        for line in self.load.table().lines() {
            out.push_str(&format!("  {line}\n"));
        }
        out.push_str("\nreplicas at the end:\n");
        for g in &self.groups {
            out.push_str(&format!("  {}\n", g.line()));
        }
        let unbalanced = self.books.iter().filter(|b| !b.balanced).count();
        let sold: u64 = self.books.iter().map(|b| b.ordered).sum();
        let restocked: u64 = self.books.iter().map(|b| b.restocked).sum();
        if self.books.is_empty() {
            out.push_str("books and orders: not checked (the replicas could not be read)\n");
        } else {
            out.push_str(&format!(
                "books: {} items, {sold} copies in orders, {restocked} restocked; {}\n",
                self.books.len(),
                if unbalanced == 0 {
                    "every item balances (initial + restocked - stock = copies ordered)".to_string()
                } else {
                    format!("{unbalanced} items DO NOT balance")
                }
            ));
            out.push_str(&format!(
                "orders: {} acknowledged to clients, {} missing; {} buys pending\n",
                self.orders_acknowledged,
                self.orders_missing.len(),
                self.buys_pending
            ));
        }
        out.push_str(&verdict_text(self.ok, &self.problems));
        out
    }
}
