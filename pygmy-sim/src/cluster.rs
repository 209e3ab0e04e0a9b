//! The cluster's hosts under turmoil: a front end and the replicas of both
//! groups, each built by a factory that turmoil calls again on every boot —
//! whatever must survive a crash lives on the host's simulated disk.
//!
//! Each host runs exactly what `pygmy-net` ships: the hyper server and the
//! pooled hyper client, over turmoil's TCP, and the storage format over
//! turmoil's file system.

use crate::net::{SimConnector, SimListener};
use crate::simfs::SimFs;
use crate::storage::{PublishedRecords, StorageFaults, DATA};
use pygmy_core::unstable::files::record::RecordFile;
use pygmy_core::unstable::files::{Fs, FsFile};
use pygmy_core::unstable::frontend::coordination::model::Model;
use pygmy_core::unstable::frontend::coordination::Coordinator;
use pygmy_core::unstable::frontend::{Clock, FrontEnd, FrontEndConfig};
use pygmy_core::unstable::replication::{Replica, ReplicaConfig};
use pygmy_core::unstable::services::{leases::LeaseConfig, ServiceConfig};
use pygmy_core::unstable::state::archive;
use pygmy_core::unstable::state::catalog::{Catalog, CatalogPolicy};
use pygmy_core::unstable::state::orders::OrderLedger;
use pygmy_core::unstable::state::State;
use pygmy_core::unstable::storage::logstore::LogStore;
use pygmy_core::unstable::storage::Storage;
use pygmy_core::unstable::transport::Handler;
use pygmy_core::unstable::types::{Book, Group, NodeId};
use pygmy_net::{serve, App, HttpTransport, PublicApi};
use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The token replicas and the front end use among themselves.
pub const TOKEN: &str = "sim-internal-token";
/// The admin token (restocks, price changes).
pub const ADMIN: &str = "sim-admin-token";
pub const FRONTEND: &str = "frontend";
pub const FRONTEND_PORT: u16 = 8010;
/// The coordination service's name in fault schedules (it is a model in
/// memory, not a host: its faults are applied to the model, see `run.rs`).
pub const COORDINATOR: &str = "coordinator";
/// The coordinator's lease period with several front ends.
pub const LEASE: Duration = Duration::from_millis(500);
/// The catalog primary's cache lease with several front ends (four
/// heartbeat intervals), and its drift margin.
pub const CACHE_LEASE: Duration = Duration::from_millis(400);
pub const CACHE_LEASE_MARGIN: Duration = Duration::from_millis(40);

/// How the cluster is built and timed.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Replicas per group.
    pub replicas: usize,
    /// Copies of each book at the start (small, so books sell out).
    pub stock: u64,
    /// Deliberately broken: the disk reports syncs it did not do.
    pub lying_disk: bool,
    /// Deliberately broken: the view service promotes any live replica,
    /// skipping the check that it belongs to the last confirmed view.
    pub promote_stale: bool,
    /// Deliberately broken: the order primary has the catalog forget the
    /// reservations of pending buys too.
    pub forget_pending: bool,
    /// Deliberately broken: order replicas write snapshots without first
    /// syncing the archive of finished buys the snapshot counts on.
    pub unsynced_archive: bool,
    /// Deliberately broken: the front end hands each read of a batch the
    /// next one's answer.
    pub misroute_batches: bool,
    /// Deliberately broken: a new order primary neither fences the catalog
    /// nor records the buys an old one reserved for but lost.
    pub skip_reconcile: bool,
    /// Deliberately broken: the front end's cache keeps fills read before
    /// their key's mark.
    pub stale_fills: bool,
    /// Deliberately broken: the front end's cache lets a fill replace a
    /// value read later than it.
    pub older_fill_wins: bool,
    /// Deliberately broken: replicas answer reads at whatever they have
    /// committed, ignoring the minimum commit point a read asks for.
    pub read_any: bool,
    /// Deliberately broken: every buy refused for lack of stock restocks
    /// the item, not only one that finds it sold out.
    pub restock_too_many: bool,
    /// Deliberately broken: the catalog applies a retried admin change
    /// again, ignoring its idempotency key.
    pub ignore_admin_keys: bool,
    /// Deliberately broken: replicas trust a damaged disk, as earlier
    /// builds did (cut the log at the first bad record, keep one disk
    /// identity whatever happens to the disk, never doubt a log's tail).
    pub trust_damage: bool,
    /// Front ends (1: the built-in coordinator, as `pygmy up`; more: they
    /// share the views through a model of etcd, [`Model`]).
    pub frontends: usize,
    /// Deliberately broken (several front ends): views stored without
    /// compare-and-swap.
    pub blind_views: bool,
    /// Deliberately broken (several front ends): a deposed leader keeps
    /// changing views.
    pub deposed_leader: bool,
    /// Deliberately broken (several front ends): every front end keeps its
    /// cache and reads from any member, as one front end alone may.
    pub shared_cache: bool,
    /// Deliberately broken (several front ends): a front end serves its
    /// cache after its lease from the catalog primary ran out.
    pub expired_lease: bool,
    /// Deliberately broken (several front ends): the catalog primary
    /// acknowledges without waiting out the lease of a front end it cannot
    /// reach.
    pub no_lease_wait: bool,
    /// Deliberately broken (several front ends): the order primary answers
    /// order reads without its tenure (`services/tenure.rs`), so a deposed
    /// one a front end with stale views still reaches answers them.
    pub untenured_order_reads: bool,
    /// Deliberately broken (several front ends): the catalog primary
    /// answers reads without checking that every backup still follows it
    /// (`LeaseConfig::unsafe_untenured_reads`), so a deposed one a front
    /// end with stale views still reaches answers its misses.
    pub untenured_catalog_reads: bool,
    /// The run's coordination service, with several front ends (`run`
    /// gives each run its own).
    pub coordinator: Option<Model>,
    /// Damage queued for crashed replicas, and the run's view record (see
    /// `storage.rs`). `run` gives each run its own.
    pub storage: StorageFaults,
}

impl ClusterOptions {
    /// The deliberate breakage, as `pygmy-sim --break` names it.
    pub fn broken(&self) -> Option<&'static str> {
        [
            (self.lying_disk, "lying-disk"),
            (self.promote_stale, "promote-stale"),
            (self.forget_pending, "forget-pending"),
            (self.unsynced_archive, "unsynced-archive"),
            (self.misroute_batches, "misroute-batches"),
            (self.skip_reconcile, "skip-reconcile"),
            (self.stale_fills, "stale-fills"),
            (self.older_fill_wins, "older-fill-wins"),
            (self.read_any, "read-any"),
            (self.restock_too_many, "restock-too-many"),
            (self.ignore_admin_keys, "ignore-admin-keys"),
            (self.trust_damage, "trust-damaged-disk"),
            (self.blind_views, "blind-views"),
            (self.deposed_leader, "deposed-leader"),
            (self.shared_cache, "shared-cache"),
            (self.expired_lease, "expired-lease"),
            (self.no_lease_wait, "no-lease-wait"),
            (self.untenured_order_reads, "untenured-order-reads"),
            (self.untenured_catalog_reads, "untenured-catalog-reads"),
        ]
        .into_iter()
        .find_map(|(on, name)| on.then_some(name))
    }

    /// The front ends' names: `frontend`, then `frontend-2`, ….
    pub fn frontend_names(&self) -> Vec<String> {
        (1..=self.frontends.max(1))
            .map(|i| match i {
                1 => FRONTEND.to_string(),
                i => format!("{FRONTEND}-{i}"),
            })
            .collect()
    }

    /// Every node fault schedules may name (the coordinator too, with
    /// several front ends).
    pub fn nodes(&self) -> Vec<String> {
        let mut nodes = self.frontend_names();
        if self.frontends > 1 {
            nodes.push(COORDINATOR.to_string());
        }
        for group in Group::ALL {
            for i in 1..=self.replicas {
                nodes.push(format!("{group}-{i}"));
            }
        }
        nodes
    }

    pub fn members(&self, group: Group) -> Vec<NodeId> {
        (1..=self.replicas)
            .map(|i| NodeId(format!("{group}-{i}")))
            .collect()
    }

    /// Every node's `host:port`.
    pub fn addrs(&self) -> BTreeMap<NodeId, String> {
        let mut addrs = BTreeMap::new();
        for fe in self.frontend_names() {
            addrs.insert(NodeId::new(&fe), format!("{fe}:{FRONTEND_PORT}"));
        }
        for (g, group) in Group::ALL.iter().enumerate() {
            for (i, m) in self.members(*group).into_iter().enumerate() {
                let port = FRONTEND_PORT + 1 + (g * self.replicas + i) as u16;
                addrs.insert(m.clone(), format!("{}:{port}", m.0));
            }
        }
        addrs
    }

    /// The catalog the simulation starts from: the original's seven books,
    /// with `stock` copies each.
    pub fn catalog(&self) -> Catalog {
        let books: Vec<Book> = Catalog::builtin()
            .all()
            .into_iter()
            .map(|b| Book {
                count: self.stock,
                ..b
            })
            .collect();
        let policy = CatalogPolicy {
            unsafe_restock_any_refusal: self.restock_too_many,
            unsafe_ignore_admin_keys: self.ignore_admin_keys,
            ..CatalogPolicy::default()
        };
        Catalog::from_books(books, policy).expect("the built-in books are valid")
    }
}

/// Simulated time in milliseconds, for order timestamps.
pub fn sim_clock() -> Clock {
    Arc::new(|| turmoil::sim_elapsed().map_or(0, |d| d.as_millis() as u64))
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(FRONTEND_PORT)
}

/// Timings for a simulated LAN: fast heartbeats so failover fits in a
/// short run.
pub fn frontend_config(opts: &ClusterOptions, seed: u64) -> FrontEndConfig {
    frontend_config_of(opts, seed, FRONTEND)
}

/// The configuration of front end `name`.
pub fn frontend_config_of(opts: &ClusterOptions, seed: u64, name: &str) -> FrontEndConfig {
    let mut cfg = FrontEndConfig::new(
        NodeId::new(name),
        opts.members(Group::Catalog),
        opts.members(Group::Order),
    );
    cfg.heartbeat_interval = Duration::from_millis(100);
    cfg.misses_for_down = 3;
    cfg.hop_timeout = Duration::from_millis(500);
    cfg.buy_timeout = Duration::from_millis(1500);
    cfg.request_deadline = Duration::from_millis(3000);
    cfg.cache_capacity = 64;
    cfg.seed = seed;
    // One batched-read RPC in flight per replica (the default, set here so
    // a change of default does not quietly stop the runs from batching):
    // with a handful of clients, reads then share RPCs often.
    cfg.read_slots = 1;
    // Likewise one buy RPC in flight to the order primary: buys then share
    // RPCs (`transport::coalesce`), and the order primary's reservations
    // for a shared RPC's buys share RPCs to the catalog primary.
    cfg.buy_slots = 1;
    cfg.unsafe_promote_stale = opts.promote_stale;
    cfg.unsafe_misroute_batches = opts.misroute_batches;
    cfg.unsafe_cache = pygmy_core::unstable::frontend::reads::cache::Breakage {
        keep_stale_fills: opts.stale_fills,
        older_fill_wins: opts.older_fill_wins,
    };
    if opts.frontends > 1 && !opts.shared_cache {
        // Cache leases (see docs/DESIGN.md, "Many front ends"): the cache
        // is served under a lease from the catalog primary, and reads go
        // to the primaries.
        cfg.leased = true;
        cfg.primary_reads = true;
        cfg.unsafe_expired_lease = opts.expired_lease;
    }
    cfg.unsafe_blind_views = opts.blind_views;
    cfg.unsafe_deposed_leader = opts.deposed_leader;
    cfg
}

pub fn replica_config(node: NodeId, group: Group) -> ReplicaConfig {
    let mut cfg = ReplicaConfig::new(node, group, NodeId::new(FRONTEND));
    cfg.hop_timeout = Duration::from_millis(500);
    cfg.poll_wait = Duration::from_millis(200);
    // Small, so snapshots, compaction and snapshot installs happen in runs.
    cfg.snapshot_every = 64;
    cfg.snapshot_scales = false;
    cfg.fetch_limit = 32;
    cfg
}

/// The services' settings of every replica, with the run's broken modes.
pub fn service_config(opts: &ClusterOptions) -> ServiceConfig {
    let mut cfg = ServiceConfig::default();
    cfg.order.buy_deadline = Duration::from_millis(1000);
    cfg.order.finish_interval = Duration::from_millis(300);
    cfg.order.unsafe_forget_pending = opts.forget_pending;
    cfg.order.unsafe_skip_reconcile = opts.skip_reconcile;
    cfg.order.unsafe_untenured_order_reads = opts.untenured_order_reads;
    if opts.frontends > 1 && !opts.shared_cache {
        // The catalog's primary grants every front end a lease.
        cfg.leases = Some(LeaseConfig {
            lease: CACHE_LEASE,
            margin: CACHE_LEASE_MARGIN,
            unsafe_no_wait: opts.no_lease_wait,
            unsafe_untenured_reads: opts.untenured_catalog_reads,
        });
    }
    cfg
}

fn transport(opts: &ClusterOptions) -> Arc<HttpTransport<SimConnector>> {
    Arc::new(HttpTransport::new(SimConnector, opts.addrs(), TOKEN))
}

/// Boots front end `name` (called by turmoil on every start).
pub async fn frontend_host(opts: ClusterOptions, seed: u64, name: String) -> turmoil::Result {
    let cfg = frontend_config_of(&opts, seed ^ fnv(&name), &name);
    let fe = match &opts.coordinator {
        Some(model) => {
            let client = model.client(NodeId::new(&name));
            // Unreachable at boot: start with nothing; the heartbeat loop
            // loads the records once it can (and decides nothing before).
            let initial = client.load().await.unwrap_or_default();
            FrontEnd::with_coordinator(
                cfg,
                transport(&opts),
                Arc::new(client),
                initial,
                sim_clock(),
            )?
        }
        None => builtin_frontend(&opts, cfg)?,
    };
    fe.start();
    let app = App::new(fe.clone() as Arc<dyn Handler>, TOKEN)
        .with_public(fe as Arc<dyn PublicApi>, ADMIN);
    serve_forever(FRONTEND_PORT, app).await
}

/// A seed of each front end's own (the first keeps the run's seed).
fn fnv(name: &str) -> u64 {
    if name == FRONTEND {
        return 0;
    }
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The one front end, its view records on its disk.
fn builtin_frontend(
    opts: &ClusterOptions,
    cfg: pygmy_core::unstable::frontend::FrontEndConfig,
) -> pygmy_core::Result<Arc<FrontEnd<HttpTransport<SimConnector>>>> {
    let records = PublishedRecords {
        store: RecordFile::new(disk(opts), "/data/views"),
        faults: opts.storage.clone(),
    };
    FrontEnd::new(cfg, transport(opts), Box::new(records), sim_clock())
}

/// Serves `app` on `port` of the current host until the host crashes.
async fn serve_forever(port: u16, app: App) -> turmoil::Result {
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?;
    serve(
        SimListener(listener),
        Arc::new(app),
        std::future::pending::<()>(),
    )
    .await;
    Ok(())
}

/// Boots a replica (called by turmoil on every start).
pub async fn replica_host(opts: ClusterOptions, node: NodeId, group: Group) -> turmoil::Result {
    // Damage done to the disk while the replica was down lands now.
    opts.storage.apply_pending(&node, group);
    let disk_id = opts.storage.disk_id(&node, opts.trust_damage);
    let store = if opts.trust_damage {
        LogStore::open_trusting_damage(disk(&opts), DATA, disk_id)?
    } else {
        LogStore::open(disk(&opts), DATA, disk_id)?
    };
    let storage: Box<dyn Storage> = Box::new(store);
    let initial = match group {
        Group::Catalog => State::Catalog(opts.catalog()),
        Group::Order => State::Orders(OrderLedger::new()),
    };
    let port = port_of(&opts.addrs()[&node]);
    let mut cfg = replica_config(node, group);
    if opts.frontends > 1 {
        // Every replica knows every front end (see `service_config` for
        // the catalog's leases).
        let names = opts.frontend_names();
        cfg.other_frontends = names[1..].iter().map(NodeId::new).collect();
    }
    cfg.unsafe_unsynced_side_files = opts.unsynced_archive;
    cfg.unsafe_read_any = opts.read_any;
    cfg.unsafe_trust_disk = opts.trust_damage;
    let archive = archive::opener(disk(&opts), DATA);
    let replica = Replica::start(
        cfg,
        &service_config(&opts),
        transport(&opts),
        storage,
        initial,
        Some(archive),
        sim_clock(),
    )?;
    serve_forever(port, App::new(replica as Arc<dyn Handler>, TOKEN)).await
}

/// Registers every host of the cluster on `sim`.
pub fn add_hosts(sim: &mut turmoil::Sim<'_>, opts: &ClusterOptions, seed: u64) {
    for name in opts.frontend_names() {
        let o = opts.clone();
        let n = name.clone();
        sim.host(name.as_str(), move || {
            frontend_host(o.clone(), seed, n.clone())
        });
    }
    for group in Group::ALL {
        for node in opts.members(group) {
            let o = opts.clone();
            let name = node.0.clone();
            sim.host(name.as_str(), move || {
                replica_host(o.clone(), node.clone(), group)
            });
        }
    }
}

/// The disk a host writes to: turmoil's, honest or (deliberately) lying.
fn disk(opts: &ClusterOptions) -> MaybeLying {
    MaybeLying {
        lying: opts.lying_disk,
    }
}

/// [`SimFs`], or a broken one whose syncs do nothing — "a storage that
/// reports a sync it did not do" — to prove the checks catch it.
#[derive(Clone, Copy)]
pub struct MaybeLying {
    lying: bool,
}

pub struct MaybeLyingFile {
    file: <SimFs as Fs>::File,
    lying: bool,
}

impl FsFile for MaybeLyingFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.append(bytes)
    }
    fn sync(&mut self) -> io::Result<()> {
        if self.lying {
            return Ok(());
        }
        self.file.sync()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
}

impl Fs for MaybeLying {
    type File = MaybeLyingFile;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        SimFs.create_dir_all(dir)
    }
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        SimFs.read(path)
    }
    fn open_append(&self, path: &Path) -> io::Result<Self::File> {
        Ok(MaybeLyingFile {
            file: SimFs.open_append(path)?,
            lying: self.lying,
        })
    }
    fn write_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        SimFs.write_synced(path, bytes)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        SimFs.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        SimFs.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.lying {
            return Ok(());
        }
        SimFs.sync_dir(dir)
    }
}
