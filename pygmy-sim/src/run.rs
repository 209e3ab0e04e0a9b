//! One simulation run: build the cluster under turmoil, start the clients,
//! apply the seed's fault schedule, heal, let the cluster go quiet, collect
//! every replica's state, and check the invariants of `docs/DESIGN.md` (§8).
//!
//! Everything random comes from the seed (turmoil's network and disk, the
//! fault schedule, the clients' choices), so a seed replays exactly: the
//! run's trace — faults applied and every answer clients got — hashes to the
//! same value every time.
//!
//! # Determinism across runs in one process
//!
//! One piece of state is shared by every tokio runtime of a process: the
//! counter that numbers tasks. It decides an outcome here: when a host
//! crashes, turmoil drops its runtime, and tokio shuts the runtime's tasks
//! down shard by shard, the shard being the task id modulo a power of two
//! (4 for turmoil's current-thread runtimes). Dropping a task drops its
//! sockets, and each closed simulated socket sends a message whose latency
//! is drawn from the seed's random number generator: so the order of those
//! drops, and with it everything after the crash, followed the task ids a
//! run happened to get — which depended on what else the process had run,
//! and with simulations on several threads, on how those threads
//! interleaved. (That is why some seeds ended differently with `--jobs`
//! above 1.) So [`run_with`]:
//!
//! - runs one simulation at a time per process ([`ONE_AT_A_TIME`]), and
//! - first advances the counter to a multiple of [`TASK_ID_ALIGN`], so the
//!   ids a run gets, modulo any shard count up to it, do not depend on what
//!   ran before.
//!
//! Parallel runs use processes instead of threads: [`run_many`] with more
//! than one job starts worker processes (`pygmy-sim --seed N --summary`).

use crate::cluster::{self, ClusterOptions, TOKEN};
use crate::faults::{self, Fault, Schedule};
use crate::net::SimConnector;
use crate::storage::StorageFaults;
use crate::workload::{self, WorkloadOptions};
use parking_lot::Mutex;
use pygmy_core::invariants::{
    self as check, check_view_history, History, ItemState, Recorder, Violation,
};
use pygmy_core::unstable::frontend::coordination::model::Model;
use pygmy_core::unstable::state::command::Order;
use pygmy_core::unstable::state::{State, StateMachine};
use pygmy_core::unstable::transport::message::{
    Query, QueryResult, ReplicaStatus, Request, Response,
};
use pygmy_core::unstable::transport::Transport;
use pygmy_core::unstable::types::{Group, NodeId};
use pygmy_net::HttpTransport;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// The harness's own invariant: no host panicked and turmoil reported no
/// error. (The invariants of Pygmy itself are named in
/// [`pygmy_core::invariants`].)
pub const NO_PANIC: &str = "no crash or panic";
/// The one host of every client and of the checker, which reads every
/// replica's final state once the clients are done.
///
/// One host, not one per client: turmoil 0.7 steps every host on every
/// 1 ms tick whether or not it has work, entering its tokio runtime, and
/// for each host stepped walks every link of the network (one per pair of
/// hosts), so a seed's cost grew with hosts × links — with eight clients
/// as hosts of their own, 13 hosts and 78 links while they ran, and that
/// machinery was most of the run's instructions (27 % fewer on seed 0 and
/// 41 % fewer on seed 1 as one host, counted by callgrind). As tasks of one host, each client keeps its own
/// HTTP client and so its own connections to the front ends, its own
/// random stream and its own history; what they share is the one link
/// from this host to each front end (see `clients_then_checker` for
/// what that changes).
pub const CLIENTS: &str = "clients";

/// The harness's own invariant: the run got far enough to collect the final
/// state of every replica.
pub const RUN_COMPLETES: &str = "run completes";

/// How a run is shaped.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub cluster: ClusterOptions,
    pub clients: usize,
    /// Faults happen inside this window of simulated time.
    pub fault_window: (Duration, Duration),
    /// How many faults the schedule draws.
    pub faults: usize,
    /// Everything is healed at this time.
    pub heal_at: Duration,
    /// Operations invoked this long after healing must complete...
    pub settle: Duration,
    /// ...successfully within this bound (invariant 5).
    pub bound: Duration,
    /// Clients start no new operation after this time.
    pub stop_at: Duration,
    /// A client stops retrying an operation after this long (its outcome
    /// is then unknown, as for a client that went away).
    pub give_up_after: Duration,
    /// Whether the schedule adds storage faults (see `storage.rs`).
    pub storage_faults: bool,
    /// Whether [`run_seed`] adds slow links drawn from the seed to its
    /// schedule (see [`faults::add_slow_links`]; `--no-slow-links`).
    pub slow_links: bool,
    /// Whether [`run_seed`] makes some seeds congested (see [`Load`];
    /// `--no-congestion`).
    pub congestion: bool,
}

impl SimOptions {
    /// The `pygmy-sim` options, after `--seed N`, that replay a run with
    /// these options: every one that differs from the default and has a
    /// command-line switch (the deliberate breakage included).
    pub fn replay_args(&self) -> Vec<String> {
        let default = SimOptions::default();
        let mut args = Vec::new();
        if let Some(b) = self.cluster.broken() {
            args.extend(["--break".to_string(), b.to_string()]);
        }
        if self.clients != default.clients {
            args.extend(["--clients".to_string(), self.clients.to_string()]);
        }
        if self.cluster.frontends != default.cluster.frontends {
            args.extend([
                "--frontends".to_string(),
                self.cluster.frontends.to_string(),
            ]);
        }
        if !self.slow_links {
            args.push("--no-slow-links".to_string());
        }
        if !self.congestion {
            args.push("--no-congestion".to_string());
        }
        args
    }
}

/// The load a seed runs under, drawn by [`run_seed`] from the seed (a
/// stream of its own) unless `SimOptions::congestion` is off: half the
/// seeds are *congested*, with twice the clients (more reads of one book
/// in flight together, with writes between them) and a slow path (see
/// [`Load::slow_path`]). Stale reads from a cache that orders its fills
/// wrongly need both; with four clients and links alike they are rare.
/// (Sending most operations to one hot item was tried too: it made those
/// races rarer, as more reads hit the cache, and was dropped.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Load {
    pub clients: usize,
    /// A congested run's path is slow too (unless slow links are switched
    /// off): the front end's link to the catalog's first primary, for the
    /// whole fault window, while every other link stays fast — answers of
    /// one replica overtaken by the other's, the race of the cache's
    /// "never replace a newer value" rule.
    pub slow_path: bool,
}

/// The latency of a congested run's slow path, each way.
const SLOW_PATH_MS: u64 = 25;

impl Load {
    pub fn draw(seed: u64, opts: &SimOptions) -> Load {
        use rand::{Rng, SeedableRng};
        let plain = Load {
            clients: opts.clients,
            slow_path: false,
        };
        if !opts.congestion {
            return plain;
        }
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed ^ 0xc04e_57ed);
        if !rng.gen_bool(0.5) {
            return plain;
        }
        Load {
            clients: opts.clients * 2,
            slow_path: true,
        }
    }
}

/// The items the clients use (few, so they contend).
const ITEMS: [u64; 3] = [1, 2, 3];

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            cluster: ClusterOptions {
                replicas: 2,
                stock: 12,
                lying_disk: false,
                promote_stale: false,
                forget_pending: false,
                unsynced_archive: false,
                misroute_batches: false,
                skip_reconcile: false,
                stale_fills: false,
                older_fill_wins: false,
                read_any: false,
                restock_too_many: false,
                ignore_admin_keys: false,
                trust_damage: false,
                frontends: 1,
                blind_views: false,
                deposed_leader: false,
                shared_cache: false,
                expired_lease: false,
                no_lease_wait: false,
                untenured_order_reads: false,
                untenured_catalog_reads: false,
                coordinator: None,
                storage: StorageFaults::default(),
            },
            storage_faults: true,
            slow_links: true,
            congestion: true,
            clients: 4,
            fault_window: (Duration::from_millis(1500), Duration::from_secs(9)),
            faults: 5,
            heal_at: Duration::from_secs(9),
            settle: Duration::from_secs(3),
            bound: Duration::from_secs(3),
            stop_at: Duration::from_secs(15),
            give_up_after: Duration::from_secs(6),
        }
    }
}

/// What one run found.
#[derive(Debug)]
pub struct Report {
    pub seed: u64,
    pub schedule: Schedule,
    pub violations: Vec<Violation>,
    /// Faults applied and answers given, one line each.
    pub trace: Vec<String>,
    pub operations: usize,
    pub simulated: Duration,
    /// The deliberate breakage the run had, as `pygmy-sim --break` names it.
    pub broken: Option<&'static str>,
    /// The `pygmy-sim` options after `--seed N` that replay the run
    /// ([`SimOptions::replay_args`], plus the scripted schedule's switch
    /// if `pygmy-sim` ran one).
    pub replay_args: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// A hash of the trace: equal for two runs of the same seed (given the
    /// same build; see the crate docs on `tokio_unstable`).
    pub fn trace_digest(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for line in &self.trace {
            for b in line.bytes().chain(std::iter::once(b'\n')) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }
}

/// What the checker client collected after healing.
#[derive(Default)]
struct Final {
    states: Vec<(NodeId, ReplicaStatus, State)>,
    errors: Vec<String>,
}

/// Runs one seed: its drawn fault schedule (with slow links unless
/// switched off) under its drawn [`Load`].
pub fn run_seed(seed: u64, opts: &SimOptions) -> Report {
    let nodes = opts.cluster.nodes();
    let mut schedule = faults::draw(seed, &nodes, opts.fault_window, opts.faults);
    if opts.storage_faults {
        let members = Group::ALL
            .iter()
            .map(|g| (*g, opts.cluster.members(*g)))
            .collect();
        crate::storage::add_to(&mut schedule, seed, &members, opts.fault_window);
    }
    let load = Load::draw(seed, opts);
    if load.slow_path && opts.slow_links {
        // The congested run's slow path: the front end's link to the
        // catalog's first primary, over the whole fault window.
        let (fe, far) = (
            opts.cluster.frontend_names()[0].clone(),
            opts.cluster.members(Group::Catalog)[0].0.clone(),
        );
        schedule.events.push((
            opts.fault_window.0,
            Fault::SlowLink(fe.clone(), far.clone(), SLOW_PATH_MS),
        ));
        schedule
            .events
            .push((opts.fault_window.1, Fault::FastLink(fe, far)));
        schedule.events.sort_by_key(|(at, _)| *at);
    }
    if opts.slow_links {
        let groups: Vec<Vec<String>> = Group::ALL
            .iter()
            .map(|g| opts.cluster.members(*g).into_iter().map(|n| n.0).collect())
            .collect();
        faults::add_slow_links(
            &mut schedule,
            seed,
            &opts.cluster.frontend_names(),
            &groups,
            opts.fault_window,
        );
    }
    let drawn = SimOptions {
        clients: load.clients,
        ..opts.clone()
    };
    let mut report = run_with(seed, &drawn, schedule);
    // The drawn load comes back from the seed: the replay names the
    // options as given.
    report.replay_args = opts.replay_args();
    report
}

/// Only one simulation runs at a time in a process (see the module docs).
pub static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Task ids are aligned to this before every run (see the module docs): a
/// multiple of every shard count tokio may use for a current-thread runtime.
pub const TASK_ID_ALIGN: u64 = 64;

/// Advances tokio's process-wide task counter until the next task gets an
/// id that is a multiple of [`TASK_ID_ALIGN`].
fn align_task_ids() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime to number tasks");
    for _ in 0..=TASK_ID_ALIGN {
        let id = rt.spawn(async {}).id().to_string();
        let id: u64 = id.parse().expect("tokio task ids print as numbers");
        if id % TASK_ID_ALIGN == TASK_ID_ALIGN - 1 {
            return;
        }
    }
}

/// Runs one seed with a given fault schedule (scripted scenarios use this).
pub fn run_with(seed: u64, opts: &SimOptions, schedule: Schedule) -> Report {
    let _alone = ONE_AT_A_TIME.lock();
    align_task_ids();
    let mut sim = turmoil::Builder::new()
        .simulation_duration(opts.stop_at + Duration::from_secs(60))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(MIN_LATENCY)
        .max_message_latency(MAX_LATENCY)
        .repair_rate(0.05)
        .rng_seed(seed)
        .build();
    // This run's own queue of storage faults and view of the record.
    let mut cluster_opts = opts.cluster.clone();
    cluster_opts.storage = StorageFaults::new(seed);
    let storage = cluster_opts.storage.clone();
    if cluster_opts.frontends > 1 {
        cluster_opts.coordinator = Some(Model::new(cluster::LEASE));
    }
    let coordinator = cluster_opts.coordinator.clone();
    cluster::add_hosts(&mut sim, &cluster_opts, seed);

    let recorder = Recorder::new();
    let items = ITEMS.to_vec();
    let workload = WorkloadOptions {
        frontends: cluster_opts.frontend_names(),
        clients: opts.clients,
        stop_at: opts.stop_at,
        give_up_after: opts.give_up_after,
        items: items.clone(),
        topics: vec!["distributed systems".into(), "graduate school".into()],
    };
    let mut trace = Vec::new();
    if opts.clients != SimOptions::default().clients {
        trace.push(format!("load: {} clients", opts.clients));
    }
    // Every client, and then the checker, are tasks of one host (see
    // [`CLIENTS`]).
    let fin = Arc::new(Mutex::new(None::<Final>));
    sim.client(
        CLIENTS,
        clients_then_checker(
            opts.clients,
            seed,
            workload,
            recorder.clone(),
            opts.cluster.clone(),
            fin.clone(),
        ),
    );

    let mut violations = Vec::new();
    let mut pending: std::collections::VecDeque<_> = schedule.events.iter().cloned().collect();
    let mut crashed: BTreeSet<String> = BTreeSet::new();
    let mut links = Links::default();
    let mut healed = false;
    loop {
        let now = sim.elapsed();
        while pending.front().is_some_and(|(at, _)| *at <= now) {
            let (_, fault) = pending.pop_front().expect("checked above");
            if let Fault::Damage(node, damage) = &fault {
                // Only on a replica that is down (the model's "while down").
                if crashed.contains(node) {
                    storage.queue(node, damage.clone());
                    trace.push(format!("{:.3}s {fault}", now.as_secs_f64()));
                }
                continue;
            }
            apply(
                &mut sim,
                coordinator.as_ref(),
                &fault,
                &mut crashed,
                &mut links,
                &mut trace,
                now,
            );
        }
        if !healed && now >= opts.heal_at {
            healed = true;
            pending.clear();
            if let Some(model) = &coordinator {
                model.heal();
            }
            heal(
                &mut sim,
                &nodes_of(opts),
                &[CLIENTS.to_string()],
                &mut crashed,
                &mut links,
                &mut trace,
                now,
            );
        }
        let stepped = sim.step();
        if let Some(model) = &coordinator {
            // The storage fault model asks the coordinator's records.
            storage.publish(&model.records());
        }
        for line in storage.take_log() {
            trace.push(format!("{:.3}s {line}", sim.elapsed().as_secs_f64()));
        }
        match stepped {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                violations.push(Violation::new(NO_PANIC, format!("simulation error: {e}")));
                break;
            }
        }
    }
    let simulated = sim.elapsed();
    let history = recorder.snapshot();
    for e in history.events() {
        trace.push(format!("{e}"));
    }
    let collected = fin.lock().take();
    if let Some(model) = &coordinator {
        let stores = model.history();
        trace.push(format!("coordinator: {} stores", stores.len()));
        violations.extend(check_view_history(&stores));
    }
    match collected {
        Some(f) => check_all(opts, &history, &f, &mut violations, &mut trace),
        None if violations.is_empty() => violations.push(Violation::new(
            RUN_COMPLETES,
            "the checker never collected the final state",
        )),
        None => {}
    }
    Report {
        seed,
        schedule,
        violations,
        trace,
        operations: history.len(),
        simulated,
        broken: opts.cluster.broken(),
        replay_args: opts.replay_args(),
    }
}

fn nodes_of(opts: &SimOptions) -> Vec<String> {
    opts.cluster.nodes()
}

/// The normal message latency of every link.
const MIN_LATENCY: Duration = Duration::from_micros(200);
const MAX_LATENCY: Duration = Duration::from_millis(2);

/// Links given a latency of their own. turmoil keeps a link's own setting
/// for good once set, so a slowed link, when back to normal, must follow
/// every later change of the global latency by hand.
#[derive(Default)]
struct Links {
    /// Every link ever slowed, and whether it is slow now.
    tuned: BTreeMap<(String, String), bool>,
    /// The global maximum latency now.
    max: Option<Duration>,
}

impl Links {
    fn set_max(&mut self, sim: &turmoil::Sim<'_>, max: Duration) {
        self.max = Some(max);
        sim.set_max_message_latency(max);
        for ((a, b), slow) in &self.tuned {
            if !slow {
                sim.set_link_max_message_latency(a.as_str(), b.as_str(), max);
            }
        }
    }

    /// A link's key, the same whichever end is named first: a link slowed
    /// as `b <-> a` must not be tuned back to the global maximum (below its
    /// slow minimum, which turmoil cannot draw a latency from) as `a <-> b`.
    fn key(a: &str, b: &str) -> (String, String) {
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        (a.to_string(), b.to_string())
    }

    fn slow(&mut self, sim: &turmoil::Sim<'_>, a: &str, b: &str, ms: u64) {
        sim.set_link_latency(a, b, Duration::from_millis(ms));
        self.tuned.insert(Self::key(a, b), true);
    }

    fn normal(&mut self, sim: &turmoil::Sim<'_>, a: &str, b: &str) {
        if let Some(slow) = self.tuned.get_mut(&Self::key(a, b)) {
            *slow = false;
            // Sets both ends of the range, then the maximum of today.
            sim.set_link_latency(a, b, MIN_LATENCY);
            sim.set_link_max_message_latency(a, b, self.max.unwrap_or(MAX_LATENCY));
        }
    }
}

fn apply(
    sim: &mut turmoil::Sim<'_>,
    coordinator: Option<&Model>,
    fault: &Fault,
    crashed: &mut BTreeSet<String>,
    links: &mut Links,
    trace: &mut Vec<String>,
    now: Duration,
) {
    // The coordinator is a model, not a host: its faults go to the model.
    // A cut between it and a front end cuts that front end off (both ways:
    // an etcd client needs its answers); a cut to a replica means nothing.
    fn coordinator_fault<'a>(a: &'a String, b: &'a String) -> Option<&'a String> {
        if a == cluster::COORDINATOR {
            Some(b)
        } else if b == cluster::COORDINATOR {
            Some(a)
        } else {
            None
        }
    }
    if let Some(model) = coordinator {
        let handled = match fault {
            Fault::Crash(n) if n == cluster::COORDINATOR => {
                model.crash();
                true
            }
            Fault::Restart(n) if n == cluster::COORDINATOR => {
                model.restart();
                true
            }
            Fault::Partition(a, b) | Fault::PartitionOneWay(a, b) => {
                match coordinator_fault(a, b) {
                    Some(other) => {
                        model.cut_off(&NodeId::new(other), true);
                        true
                    }
                    None => false,
                }
            }
            Fault::Repair(a, b) => match coordinator_fault(a, b) {
                Some(other) => {
                    model.cut_off(&NodeId::new(other), false);
                    true
                }
                None => false,
            },
            _ => false,
        };
        if handled {
            trace.push(format!("{:.3}s {fault}", now.as_secs_f64()));
            return;
        }
    }
    match fault {
        Fault::Crash(n) => {
            if !crashed.insert(n.clone()) {
                return;
            }
            sim.crash(n.as_str());
        }
        Fault::Restart(n) => {
            if !crashed.remove(n) {
                return;
            }
            sim.bounce(n.as_str());
        }
        Fault::Partition(a, b) => sim.partition(a.as_str(), b.as_str()),
        Fault::PartitionOneWay(a, b) => sim.partition_oneway(a.as_str(), b.as_str()),
        Fault::Repair(a, b) => sim.repair(a.as_str(), b.as_str()),
        Fault::Loss(p) => sim.set_fail_rate(*p),
        Fault::Latency(ms) => links.set_max(sim, Duration::from_millis(*ms)),
        Fault::Calm => {
            sim.set_fail_rate(0.0);
            links.set_max(sim, MAX_LATENCY);
        }
        Fault::SlowLink(a, b, ms) => links.slow(sim, a, b, *ms),
        Fault::FastLink(a, b) => links.normal(sim, a, b),
        // Queued by the run loop, which knows the run's storage faults.
        Fault::Damage(..) => {}
    }
    trace.push(format!("{:.3}s {fault}", now.as_secs_f64()));
}

/// Undoes every fault: restarts crashed nodes, repairs every link —
/// clients' links too, since random message loss breaks any link and
/// turmoil mends a randomly broken link only when traffic happens to retry
/// it (`clients`: every host that is not a cluster node, [`CLIENTS`]).
fn heal(
    sim: &mut turmoil::Sim<'_>,
    nodes: &[String],
    clients: &[String],
    crashed: &mut BTreeSet<String>,
    links: &mut Links,
    trace: &mut Vec<String>,
    now: Duration,
) {
    apply(sim, None, &Fault::Calm, crashed, links, trace, now);
    let slow: Vec<(String, String)> = links
        .tuned
        .iter()
        .filter(|(_, slow)| **slow)
        .map(|(link, _)| link.clone())
        .collect();
    for (a, b) in slow {
        apply(
            sim,
            None,
            &Fault::FastLink(a, b),
            crashed,
            links,
            trace,
            now,
        );
    }
    for n in std::mem::take(crashed) {
        sim.bounce(n.as_str());
    }
    let mut everyone: Vec<String> = nodes
        .iter()
        .filter(|n| *n != cluster::COORDINATOR)
        .cloned()
        .collect();
    everyone.extend(clients.iter().cloned());
    for a in &everyone {
        for b in &everyone {
            if a < b {
                sim.repair(a.as_str(), b.as_str());
            }
        }
    }
    trace.push(format!("{:.3}s heal", now.as_secs_f64()));
}

/// The [`CLIENTS`] host: every client as a task of its own, and once all
/// are done, the checker's [`collect`] into `fin`.
///
/// What sharing a host changes in the network: turmoil's random message
/// loss ([`Fault::Loss`]) breaks a link at a given rate per message sent
/// on it, and a broken link drops what is in flight until a later message
/// repairs it. With one link from the clients to a front end, a break
/// drops the requests and answers of every client in flight on it at
/// once, rather than one client's. The faults the cluster sees are the
/// same kinds — a request lost before the front end, an answer lost after
/// a commit, a dead connection, then the retry under the same key — at the
/// same rate per message; partitions and crashes name cluster nodes only
/// (`faults::draw`), so no client had a fault of its own besides loss.
/// (The deliberately broken builds that need a lost answer to a client
/// are still caught: `forget-pending` on 12 of seeds 0..60 against 13
/// before, `ignore-admin-keys` on 2 of 60..160 against 6; see
/// docs/BENCHMARKS.md, "Clients as tasks of one host".)
async fn clients_then_checker(
    clients: usize,
    seed: u64,
    workload: WorkloadOptions,
    recorder: Recorder,
    cluster: ClusterOptions,
    fin: Arc<Mutex<Option<Final>>>,
) -> turmoil::Result {
    let tasks: Vec<_> = (0..clients)
        .map(|id| {
            let (w, rec) = (workload.clone(), recorder.clone());
            tokio::task::spawn_local(workload::client(id, seed, w, rec))
        })
        .collect();
    for (id, task) in tasks.into_iter().enumerate() {
        task.await
            .map_err(|e| format!("client {id}: {e}"))?
            .map_err(|e| format!("client {id}: {e}"))?;
    }
    *fin.lock() = Some(collect(&cluster).await);
    Ok(())
}

/// Reads every replica's status and state once they have converged (or the
/// deadline passed): commit and digest equal within each group, no buy
/// left pending, no reservation left remembered.
async fn collect(opts: &ClusterOptions) -> Final {
    let transport = HttpTransport::new(SimConnector, opts.addrs(), TOKEN);
    let replicas: Vec<NodeId> = Group::ALL.iter().flat_map(|g| opts.members(*g)).collect();
    let mut last = Final::default();
    for _ in 0..60 {
        let mut f = Final::default();
        for node in &replicas {
            match fetch_state(&transport, node).await {
                Ok((status, state)) => f.states.push((node.clone(), status, state)),
                Err(e) => f.errors.push(format!("{node}: {e}")),
            }
        }
        let settled = f.errors.is_empty()
            && Group::ALL.iter().all(|g| {
                let of: Vec<_> = f.states.iter().filter(|(_, s, _)| s.group == *g).collect();
                of.windows(2)
                    .all(|w| (w[0].1.commit, w[0].1.digest) == (w[1].1.commit, w[1].1.digest))
            })
            && f.states.iter().all(|(_, _, state)| match state {
                State::Orders(l) => l.pending().is_empty(),
                State::Catalog(c) => c.remembered() == 0,
            });
        if settled {
            return f;
        }
        last = f;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    last
}

async fn fetch_state(
    transport: &HttpTransport<SimConnector>,
    node: &NodeId,
) -> pygmy_core::Result<(ReplicaStatus, State)> {
    let timeout = Duration::from_secs(1);
    let mut status = match transport
        .call(
            node,
            Request::Heartbeat {
                views: vec![],
                disks: None,
                from: None,
            },
            timeout,
        )
        .await?
    {
        Response::Status(s) => s,
        other => {
            return Err(pygmy_core::unstable::transport::unexpected(
                "status", &other,
            ))
        }
    };
    match transport
        .call(node, Request::Read(Query::Dump), timeout)
        .await?
    {
        Response::Read {
            result: QueryResult::State(state),
            lsn,
        } => {
            // The state is the one at the dump's commit point, which may be
            // past the status's if a command committed in between.
            status.commit = lsn;
            Ok((status, *state))
        }
        other => Err(pygmy_core::unstable::transport::unexpected("dump", &other)),
    }
}

fn check_all(
    opts: &SimOptions,
    history: &History,
    fin: &Final,
    violations: &mut Vec<Violation>,
    trace: &mut Vec<String>,
) {
    for e in &fin.errors {
        violations.push(Violation::new(
            check::CONVERGED,
            format!("replica unreachable after healing: {e}"),
        ));
    }
    let initial_books = opts.cluster.catalog().all();
    let mut catalogs = Vec::new();
    let mut ledgers = Vec::new();
    for (node, status, state) in &fin.states {
        trace.push(format!(
            "final {node} epoch {} commit {} digest {:016x}",
            status.epoch, status.commit, status.digest
        ));
        match state {
            State::Catalog(c) => catalogs.push((node.clone(), c.clone())),
            State::Orders(o) => ledgers.push((node.clone(), o.clone())),
        }
    }
    // 3. Convergence, per group.
    for group in Group::ALL {
        let digests: Vec<_> = fin
            .states
            .iter()
            .filter(|(_, s, _)| s.group == group)
            // The digest of the state itself, not the running digest the
            // replica reports: this checks the data, not the bookkeeping.
            .map(|(n, s, state)| (n.0.clone(), s.commit, state.digest()))
            .collect();
        if let Err(v) = check::check_converged(&digests) {
            violations.push(v);
        }
    }
    // Buys still pending after quiescence would break conservation too;
    // name them first, it is the more useful message.
    let by_name = ledgers.iter().map(|(n, l)| (n.as_str(), l));
    violations.extend(check::check_buys_finished(by_name).err());
    // The catalog forgets the reservations of finished buys: once none is
    // pending, it remembers none (its memory is bounded by buys in flight).
    let by_name = catalogs.iter().map(|(n, c)| (n.as_str(), c));
    violations.extend(check::check_reservations_forgotten(by_name).err());
    // 2. Acknowledged orders on every order replica, once.
    let acked = history.acked_orders();
    let replicas: Vec<(String, Vec<Order>)> = ledgers
        .iter()
        .map(|(n, l)| (n.0.clone(), l.orders()))
        .collect();
    if let Err(v) = check::check_orders(&acked, &replicas) {
        violations.push(v);
    }
    // 1. Stock: non-negative, conserved.
    if let (Some((_, catalog)), Some((_, ledger))) = (catalogs.first(), ledgers.first()) {
        let books = catalog.all();
        let stock: Vec<_> = books
            .iter()
            .filter_map(|b| catalog.stock_ledger(b.id).map(|l| (b.id, l)))
            .collect();
        if let Err(v) = check::check_stock(&books, &stock, &ledger.orders()) {
            violations.push(v);
        }
        // 4. Linearizable buys per item, and reads of no lost write.
        let initial: BTreeMap<_, _> = initial_books.iter().map(|b| (b.id, b.count)).collect();
        let policy = catalog.policy().restock_on_empty;
        match check::check_linearizable_ending_at(history, &initial, policy, &books) {
            Ok(lin) => {
                if let Err(v) = check::check_reads_not_lost(history, &lin) {
                    violations.push(v);
                }
            }
            Err(v) => violations.push(v),
        }
    }
    // 4c. The whole history per item, reads included, is linearizable;
    // order reads find acknowledged orders.
    if let Some((_, catalog)) = catalogs.first() {
        let state = |b: &pygmy_core::unstable::types::Book| ItemState {
            stock: b.count,
            cost: b.cost,
        };
        let initial = initial_books.iter().map(|b| (b.id, state(b))).collect();
        let finals = catalog.all().iter().map(|b| (b.id, state(b))).collect();
        let policy = catalog.policy().restock_on_empty;
        if let Err(v) = check::check_fresh_reads(history, &initial, &finals, policy) {
            violations.push(v);
        }
    }
    if let Err(v) = check::check_order_reads(history) {
        violations.push(v);
    }
    // 4b. Price changes: no acknowledged or observed price change lost.
    let initial_costs: BTreeMap<_, _> = initial_books.iter().map(|b| (b.id, b.cost)).collect();
    let final_books: Vec<(String, Vec<_>)> = catalogs
        .iter()
        .map(|(n, c)| (n.0.clone(), c.all()))
        .collect();
    if let Err(v) = check::check_prices(history, &initial_costs, &final_books) {
        violations.push(v);
    }
    // 5. After healing and settling, every request completes in the bound.
    // Requests invoked before then may be pending still, but not a bound
    // after it (give or take one client exchange begun before).
    let from = (opts.heal_at + opts.settle).as_nanos() as u64;
    let bound = opts.bound.as_nanos() as u64;
    let grace = workload::EXCHANGE_TIMEOUT.as_nanos() as u64;
    violations.extend(check::check_completion(history, from, bound, grace).err());
}

/// A readable account of a failed run.
pub fn describe(report: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "seed {} FAILED", report.seed);
    if let Some(load) = report.trace.first().filter(|l| l.starts_with("load:")) {
        let _ = writeln!(s, "{load}");
    }
    let _ = writeln!(s, "fault schedule:\n{}", report.schedule);
    for v in &report.violations {
        let _ = writeln!(s, "violated: {v}");
    }
    let _ = write!(
        s,
        "replay: cargo run --release -p pygmy-sim -- --seed {}",
        report.seed
    );
    for arg in &report.replay_args {
        let _ = write!(s, " {arg}");
    }
    s
}

/// What a run of one seed comes to, as [`run_many`] hands it on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub seed: u64,
    pub passed: bool,
    pub trace_digest: u64,
    /// The history's length: operations the clients invoked (see
    /// [`Report::operations`]), so a change that makes runs cheaper can
    /// show it did not make them shorter.
    pub operations: usize,
    /// [`describe`] of a failed run; empty when it passed.
    pub description: String,
}

impl Summary {
    pub fn of(report: &Report) -> Self {
        Summary {
            seed: report.seed,
            passed: report.passed(),
            trace_digest: report.trace_digest(),
            operations: report.operations,
            description: if report.passed() {
                String::new()
            } else {
                describe(report)
            },
        }
    }

    /// The worker's output: `seed N passed|failed digest HEX operations K`,
    /// then the description.
    pub fn to_lines(&self) -> String {
        let verdict = if self.passed { "passed" } else { "failed" };
        let mut s = format!(
            "seed {} {verdict} digest {:016x} operations {}\n",
            self.seed, self.trace_digest, self.operations
        );
        if !self.passed {
            s.push_str(&self.description);
            s.push('\n');
        }
        s
    }

    /// Reads what [`Summary::to_lines`] wrote.
    pub fn from_lines(out: &str) -> Option<Self> {
        let (first, rest) = out.split_once('\n').unwrap_or((out, ""));
        let words: Vec<&str> = first.split_whitespace().collect();
        let ["seed", seed, verdict, "digest", digest, "operations", operations] = words[..] else {
            return None;
        };
        Some(Summary {
            seed: seed.parse().ok()?,
            passed: verdict == "passed",
            trace_digest: u64::from_str_radix(digest, 16).ok()?,
            operations: operations.parse().ok()?,
            description: rest.trim_end().to_string(),
        })
    }
}

/// Where [`run_many`] runs seeds.
#[derive(Clone, Debug)]
pub enum Jobs {
    /// In this process, one after the other.
    Serial,
    /// In up to `jobs` worker processes at once, each running
    /// `exe --seed N --summary` (plus `args`, e.g. `--break NAME`): the
    /// `pygmy-sim` binary. Processes, not threads, so that no run shares
    /// tokio's task counter with another (see the module docs).
    Processes {
        exe: std::path::PathBuf,
        jobs: usize,
        args: Vec<String>,
    },
}

/// Runs `seeds`; `each` sees every summary as it finishes. Returns
/// `(seed, passed)` in seed order. A worker that cannot be started or
/// dies is a failed seed, with the reason as its description.
pub fn run_many(
    seeds: std::ops::Range<u64>,
    jobs: &Jobs,
    opts: &SimOptions,
    each: impl Fn(&Summary) + Sync,
) -> Vec<(u64, bool)> {
    let (exe, jobs, args) = match jobs {
        Jobs::Serial => {
            return seeds
                .map(|seed| {
                    let summary = Summary::of(&run_seed(seed, opts));
                    each(&summary);
                    (seed, summary.passed)
                })
                .collect()
        }
        Jobs::Processes { exe, jobs, args } => (exe, *jobs, args),
    };
    let next = std::sync::atomic::AtomicU64::new(seeds.start);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if seed >= seeds.end {
                    return;
                }
                let summary = run_in_worker(exe, args, seed);
                each(&summary);
                results.lock().push((seed, summary.passed));
            });
        }
    });
    let mut results = results.into_inner();
    results.sort();
    results
}

/// Runs one seed in a worker process.
fn run_in_worker(exe: &std::path::Path, args: &[String], seed: u64) -> Summary {
    let failed = |why: String| Summary {
        seed,
        passed: false,
        trace_digest: 0,
        operations: 0,
        description: format!("seed {seed} FAILED\nworker: {why}"),
    };
    let out = std::process::Command::new(exe)
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--summary")
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output();
    match out {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            match Summary::from_lines(&text) {
                Some(summary) if summary.seed == seed => summary,
                _ => failed(format!(
                    "{} exited with {} and printed {text:?}",
                    exe.display(),
                    out.status
                )),
            }
        }
        Err(e) => failed(format!("cannot start {}: {e}", exe.display())),
    }
}
