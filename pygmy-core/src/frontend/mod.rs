//! The front end: what clients talk to, and the view service of both groups.
//!
//! - **View service.** Every `heartbeat_interval` it probes every replica,
//!   sending the current views along (that is how replicas learn them). A
//!   replica that misses `misses_for_down` probes in a row is down; the
//!   transitions are logged. From the answers, `viewservice::next_view`
//!   decides whether a group needs a new view; the new view is stored
//!   durably *before* it is announced, so a restarted front end never goes
//!   back to an older view nor promotes a stale replica. A new primary asks
//!   for its view to be confirmed (`ViewReady`); the confirmation is stored
//!   durably before the primary may commit anything.
//! - **Reads** (`search`, `lookup`, orders) go to a live member of the
//!   group's current view, chosen by the balancer (round robin as in the
//!   original, or least outstanding requests); a failed read is retried on
//!   another member until the request's deadline. Lookups and searches that
//!   miss the cache go through the `batcher`: at most `read_slots` RPCs in
//!   flight per replica, and the reads that queue behind them share the
//!   next one.
//! - **Cache.** `search` and `lookup` answers are cached per key. The catalog
//!   primary pushes `(keys, lsn)` after each commit; a fill read at an older
//!   lsn than the key's last invalidation is dropped. A write answered here
//!   invalidates its item before the answer leaves, and a read answer marks
//!   the other keys of its items (see "Fresh reads"). When the catalog view
//!   changes, the whole cache is dropped (the old primary may have died with
//!   invalidations undelivered).
//! - **Writes** go only to the primary of a confirmed view. A buy carries a
//!   request id (the client's idempotency key, or a fresh one) and is retried
//!   under it until it has an answer or the deadline passes; the order
//!   service makes the retries safe. Buys go through a coalescer
//!   (`transport::coalesce`): at most `buy_slots` RPCs in flight to the
//!   order primary, and the buys that queue behind them share the next one.
//!
//! # Fresh reads (linearizable reads)
//!
//! Guarantee: every read through this front end (`search`, `lookup`,
//! `all_books`, `order`) reflects every write acknowledged before the read
//! was sent, and every state an earlier read (finished before it was sent)
//! showed, whether it is answered from the cache, a backup or the primary.
//! Per item, the answers are linearizable. How:
//!
//! - **`seen`, per group**: a commit lsn at or past every write this front
//!   end acknowledged and every answer it gave. It is raised *before* an
//!   answer leaves: by a catalog write's commit lsn, a buy's reservation
//!   lsn (catalog) and the order group's commit point when the buy was
//!   answered (order), and by the lsn every read was answered at. Lsns of
//!   one group are comparable across epochs: a committed entry keeps its
//!   lsn in every later view (a new primary adopts a log holding every
//!   committed entry and appends after it), and a commit point only grows.
//! - **A cache miss asks for `seen`**: `ReadAt { min }` / `ReadBatch { min }`
//!   (a batch asks for the highest of its reads'). A replica answers only
//!   once its commit point reaches `min`; a backup behind it waits up to
//!   `read_wait` (its next pull brings the primary's commit point, within a
//!   round trip) and then declines, and the read is retried on another
//!   member — the primary, whose commit point is never behind.
//! - **A cache hit is never older than what clients were shown.** The
//!   cache's marks (see `cache.rs`) are raised by every write this front
//!   end acknowledges (before answering it), by the primary's pushes, and
//!   by every read answer for the *other* keys of the items it shows (a
//!   lookup's answer at lsn `m` marks its topic's search, a search's marks
//!   each of its books' lookups): a value read before `m` of an item a
//!   client saw at `m` is dropped and not filled again. Values are kept
//!   only at or past their key's mark, so a hit shows each of its items at
//!   a state no older than any write acknowledged or state shown for it.
//! - **Buys** whose answer lacks what the invalidation needs (a retried buy
//!   finished earlier carries no reservation lsn; a refused buy, which may
//!   have restocked, names no topic) re-read their item before answering:
//!   at or past the lsn, or from the primary of the confirmed view when the
//!   lsn is unknown (its commit point covers every reservation).
//! - **After a start** the front end knows no acknowledged write, yet the
//!   replicas may lag: `seen` starts unknown and reads wait until the
//!   heartbeat learns it — a serving primary's commit point, or a newly
//!   confirmed primary's adopted log end (both cover every write any
//!   primary acknowledged). One heartbeat round, at start.
//!
//! Cost: a hit does exactly what it did before (one lock, one lookup); a
//! miss carries one more number, and its answer raises the marks of the
//! other keys of its items (a lookup: one; a search: one per book). Under
//! writes a backup may wait up to a pull round trip, or decline.
//!
//! # Cache leases (several front ends)
//!
//! With `leased` (several front ends; the catalog replicas run with
//! `LeaseConfig`) the guarantee extends to writes acknowledged
//! and states shown by *any* front end. Every heartbeat names this front
//! end; the catalog primary's answer grants a lease of `lease_ms` (see
//! `services/leases.rs`), which this front end counts from when it sent
//! the heartbeat. A cache hit is served only while the lease from the
//! current catalog view's confirmed primary holds; otherwise the read goes
//! to the primary (`primary_reads`), which answers only at a commit point
//! every leased front end has the invalidations of. A new lease (the
//! primary held none of ours just before) drops the whole cache at the
//! commit point it carries. Each invalidation pushed raises `seen`.
//! Order reads go to the order primary (`primary_reads`), which answers
//! them only within its tenure (`services/tenure.rs`), so a primary
//! another front end's view change deposed answers none.
//!
//! Caveat: without leases, the guarantee covers writes acknowledged by
//! this front end and states shown by it. An order read (`order`) does
//! not mark the catalog: an order found by someone other than its buyer,
//! whose buy was never acknowledged, does not make later catalog reads
//! show that buy until the primary's invalidation arrives.

pub mod coordination;
pub mod detector;
pub mod reads;
mod views;
pub mod viewservice;
mod writes;

use crate::error::{Error, Result};
use crate::frontend::coordination::{Builtin, Coordinator, Leadership, Revision, Snapshot};
use crate::frontend::detector::{Detector, Transition};
use crate::frontend::reads::balancer::{Balancer, Policy};
use crate::frontend::reads::batcher::{self, Batcher};
use crate::frontend::reads::cache::{Breakage, Cache, CacheKey, CachedValue};
use crate::frontend::viewservice::{may_confirm, next_view};
use crate::state::command::{BuyStatus, CatalogCommand, CatalogOutcome, Order};
use crate::transport::coalesce::{self, Coalescer};
use crate::transport::message::{Query, QueryResult, Refresh, ReplicaStatus, Request, Response};
use crate::transport::{Handler, Transport};
use crate::types::{Book, Group, ItemId, Lsn, NodeId, OrderId, RequestId};
use crate::view::GroupRecord;
use async_trait::async_trait;
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Longest idempotency key a client may give (keys are stored in the order
/// ledger and the catalog's admin table).
pub const MAX_KEY_LEN: usize = 200;

/// Buy RPCs in flight to the order primary by default (see
/// `transport::coalesce`): measured in docs/BENCHMARKS.md, "Buys batched
/// per hop".
pub const BUY_SLOTS: usize = 2;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

pub use crate::types::Clock;

/// Where the front end keeps its durable view records (one per group).
///
/// Contract: `save` returns only once the records are durable; `load`
/// returns what the last successful `save` stored (empty if none).
pub trait RecordStore: Send + Sync + 'static {
    fn load(&self) -> Result<Vec<GroupRecord>>;
    fn save(&self, records: &[GroupRecord]) -> Result<()>;
}

impl<F: crate::files::Fs> RecordStore for crate::files::record::RecordFile<F> {
    fn load(&self) -> Result<Vec<GroupRecord>> {
        Ok(crate::files::record::RecordFile::load(self)?.unwrap_or_default())
    }
    fn save(&self, records: &[GroupRecord]) -> Result<()> {
        crate::files::record::RecordFile::save(self, &records.to_vec())
    }
}

#[derive(Clone, Debug)]
pub struct FrontEndConfig {
    pub me: NodeId,
    pub catalog: Vec<NodeId>,
    pub order: Vec<NodeId>,
    pub heartbeat_interval: Duration,
    pub misses_for_down: u32,
    /// Deadline of one hop (one call to one replica).
    pub hop_timeout: Duration,
    /// Deadline of one buy call to the order primary (it calls the catalog).
    pub buy_timeout: Duration,
    /// Deadline of a whole client request, retries included.
    pub request_deadline: Duration,
    /// Pause before retrying when no replica could serve.
    pub retry_delay: Duration,
    /// Number of cached read results; 0 turns the cache off.
    pub cache_capacity: usize,
    pub balance: Policy,
    /// Batched-read RPCs in flight per replica (see `batcher`); reads
    /// beyond them queue and share the next RPC.
    pub read_slots: usize,
    /// Buy RPCs in flight to the order primary (see
    /// `transport::coalesce`); buys beyond them queue and share the next
    /// RPC, at most `buy_batch` to one. `buy_batch` 1: every buy alone.
    pub buy_slots: usize,
    pub buy_batch: usize,
    pub seed: u64,
    /// Send every read to the group's primary. For front ends that share
    /// the store with others (several front ends): a backup's commit point
    /// may trail a write another front end acknowledged (which this one
    /// never heard of: only catalog writes reach it, as invalidations),
    /// while a primary's covers every acknowledged write. With `leased`,
    /// catalog reads go to the primary in any case. See "Many front ends"
    /// in docs/DESIGN.md.
    pub primary_reads: bool,
    /// Serve the cache only under a lease from the current catalog
    /// primary (several front ends; the replicas run with
    /// `LeaseConfig`): see "Cache leases" in the module docs.
    /// Off (one front end): the cache is always served.
    pub leased: bool,
    /// Deliberately broken, for tests only: with `leased`, serve the cache
    /// whether or not the lease still holds.
    pub unsafe_expired_lease: bool,
    /// Deliberately broken, for tests only: promote any live replica,
    /// skipping the check that it belongs to the last confirmed view. The
    /// simulation uses it to prove its checks catch a stale primary.
    pub unsafe_promote_stale: bool,
    /// Deliberately broken, for tests only: hand a read batch's answers out
    /// shifted by one, so the simulation proves its read checks see batches.
    pub unsafe_misroute_batches: bool,
    /// Deliberately broken, for tests only: a cache that breaks its own
    /// rules (see [`Breakage`]), so the simulation proves its read checks
    /// see stale cache hits.
    pub unsafe_cache: Breakage,
    /// Deliberately broken, for tests only: store a new view without
    /// compare-and-swap (over whatever revision the coordinator holds now,
    /// not the one the decision was made from).
    pub unsafe_blind_views: bool,
    /// Deliberately broken, for tests only: once leader, keep deciding and
    /// storing views after the coordinator says another leads, with no
    /// leadership check in the store.
    pub unsafe_deposed_leader: bool,
}

impl FrontEndConfig {
    /// Defaults fit for a LAN or loopback cluster (a 1 s heartbeat, as the
    /// original's).
    pub fn new(me: NodeId, catalog: Vec<NodeId>, order: Vec<NodeId>) -> Self {
        FrontEndConfig {
            me,
            catalog,
            order,
            heartbeat_interval: Duration::from_millis(1000),
            misses_for_down: 2,
            hop_timeout: Duration::from_millis(1000),
            buy_timeout: Duration::from_millis(3000),
            request_deadline: Duration::from_millis(10_000),
            retry_delay: Duration::from_millis(20),
            cache_capacity: 10_000,
            balance: Policy::RoundRobin,
            read_slots: batcher::READ_SLOTS,
            buy_slots: BUY_SLOTS,
            buy_batch: coalesce::MAX_BATCH,
            seed: 0,
            primary_reads: false,
            leased: false,
            unsafe_expired_lease: false,
            unsafe_promote_stale: false,
            unsafe_misroute_batches: false,
            unsafe_cache: Breakage::default(),
            unsafe_blind_views: false,
            unsafe_deposed_leader: false,
        }
    }

    fn members(&self, group: Group) -> &[NodeId] {
        match group {
            Group::Catalog => &self.catalog,
            Group::Order => &self.order,
        }
    }
}

/// A read in flight on `node`, for the least-outstanding balancer.
struct Outstanding<'a, T: Transport> {
    fe: &'a FrontEnd<T>,
    node: &'a NodeId,
}

impl<T: Transport> Drop for Outstanding<'_, T> {
    fn drop(&mut self) {
        self.fe.inner.lock().balancer.finish(self.node);
    }
}

/// A successful buy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub order: Order,
}

/// What `GET /health` shows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Health {
    pub views: Vec<GroupRecord>,
    pub up: Vec<NodeId>,
    pub down: Vec<NodeId>,
    /// Replicas up whose disk is not the one the view record holds for
    /// them (new, emptied or damaged): they rebuild from an intact member.
    #[serde(default)]
    pub recovering: Vec<NodeId>,
}

impl Health {
    /// The store can serve: every group has a view confirmed by its
    /// primary, and that primary answers heartbeats. (A restarted front end
    /// holds its views from its durable record before it has heard from
    /// anyone, so a confirmed view alone is not enough.) `GET /health`
    /// answers 503 while this is false, for orchestrators' probes.
    pub fn is_ready(&self) -> bool {
        self.views.len() == Group::ALL.len()
            && self
                .views
                .iter()
                .all(|r| r.is_confirmed() && self.up.contains(&r.current.primary))
    }
}

struct Inner {
    records: BTreeMap<Group, GroupRecord>,
    status: BTreeMap<NodeId, ReplicaStatus>,
    detector: Detector,
    balancer: Balancer,
    cache: Cache,
    rng: SmallRng,
    counter: u64,
    /// When each group's current view was confirmed (see `heartbeat_round`).
    confirmed_at: BTreeMap<Group, Instant>,
    /// The lowest commit point each group's reads may be answered at.
    seen: Seen,
    /// The coordinator's revision of `records`.
    revision: Revision,
    /// The leadership this front end holds, as of its last campaign: only
    /// then does it decide new views.
    leadership: Option<Leadership>,
    /// The live front ends, as of the last registration.
    frontends: Vec<NodeId>,
    /// With `leased`: the cache lease from the catalog primary.
    lease: Option<Lease>,
}

/// A cache lease held from a catalog primary (see "Cache leases").
#[derive(Clone, Debug)]
struct Lease {
    primary: NodeId,
    epoch: crate::types::Epoch,
    /// Ends then, counted from when the heartbeat that got it was sent.
    until: Instant,
}

impl Inner {
    /// Whether the cache may be served: always without leases; with them,
    /// while the lease from the current catalog view's confirmed primary
    /// holds.
    fn may_serve_cache(&self, cfg: &FrontEndConfig) -> bool {
        if !cfg.leased || cfg.unsafe_expired_lease {
            return true;
        }
        let Some(lease) = &self.lease else {
            return false;
        };
        let current = self.records.get(&Group::Catalog).is_some_and(|r| {
            r.is_confirmed() && r.current.primary == lease.primary && r.current.epoch == lease.epoch
        });
        current && Instant::now() < lease.until
    }

    /// A refresh from the leased catalog primary: a key's value read at a
    /// released commit point, taken exactly as the answer of a read at
    /// that lsn is (`search` and `lookup` in `reads/mod.rs`): it raises
    /// `seen`, marks the other keys of the items it shows and is offered
    /// to the cache, whose fill rule drops it if an invalidation of the
    /// key at a later lsn arrived first.
    fn refreshed(&mut self, r: Refresh) {
        self.seen.raise(Group::Catalog, r.lsn);
        match (r.key, r.value) {
            (CacheKey::Lookup(id), QueryResult::Book(Some(book))) if book.id == id => {
                let shown = [CacheKey::Search(book.topic.clone())];
                self.cache.saw(&shown, r.lsn);
                self.cache
                    .fill(CacheKey::Lookup(id), CachedValue::Book(book), r.lsn);
            }
            (CacheKey::Search(topic), QueryResult::Books(books)) => {
                let shown: Vec<CacheKey> = books.iter().map(|b| CacheKey::Lookup(b.id)).collect();
                self.cache.saw(&shown, r.lsn);
                if !books.is_empty() {
                    self.cache
                        .fill(CacheKey::Search(topic), CachedValue::Books(books), r.lsn);
                }
            }
            // A book gone (nothing is cached for it), or a mismatch.
            _ => {}
        }
    }
}

/// Per group, the highest commit point this front end knows to be at or
/// past every write it acknowledged and every state a read showed: the
/// lowest commit point a read may be answered at (see "Fresh reads" in the
/// module docs). `None` until learnt from the group's primary after a
/// start: writes acknowledged before it are unknown until then.
#[derive(Debug, Default)]
struct Seen {
    catalog: Option<Lsn>,
    order: Option<Lsn>,
}

impl Seen {
    fn slot(&mut self, group: Group) -> &mut Option<Lsn> {
        match group {
            Group::Catalog => &mut self.catalog,
            Group::Order => &mut self.order,
        }
    }

    fn get(&self, group: Group) -> Option<Lsn> {
        match group {
            Group::Catalog => self.catalog,
            Group::Order => self.order,
        }
    }

    /// A commit point shown to a client (a write's or a read's): later
    /// reads must not be answered below it.
    fn raise(&mut self, group: Group, lsn: Lsn) {
        if let Some(seen) = self.slot(group) {
            *seen = (*seen).max(lsn);
        }
    }

    /// A commit point at or past every write the group ever acknowledged
    /// (a serving primary's, or a new primary's adopted log end). Returns
    /// true when this is the first: reads may start.
    fn learn(&mut self, group: Group, lsn: Lsn) -> bool {
        let slot = self.slot(group);
        let first = slot.is_none();
        *slot = Some(slot.unwrap_or(0).max(lsn));
        first
    }
}

/// Where a read may be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// Any live member of the view, chosen by the balancer.
    Balanced,
    /// Only the view's primary: its commit point covers every write it or
    /// an earlier primary acknowledged, known to this front end or not.
    Primary,
}

pub struct FrontEnd<T: Transport> {
    cfg: FrontEndConfig,
    transport: Arc<T>,
    /// Where the view records live, and who may change them.
    coordinator: Arc<dyn Coordinator>,
    clock: Clock,
    inner: Mutex<Inner>,
    /// Shares RPCs among cache misses bound for the same replica.
    batcher: Batcher,
    /// Shares RPCs among buys bound for the order primary.
    buys: Coalescer,
    /// Bumped whenever views or liveness change.
    changed: watch::Sender<u64>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl<T: Transport> FrontEnd<T> {
    /// A front end that is the only one: its view records in `store`, on
    /// its own disk (the built-in coordinator).
    pub fn new(
        cfg: FrontEndConfig,
        transport: Arc<T>,
        store: Box<dyn RecordStore>,
        clock: Clock,
    ) -> Result<Arc<Self>> {
        let builtin = Builtin::open(cfg.me.clone(), store)?;
        let initial = builtin.snapshot();
        Self::with_coordinator(cfg, transport, Arc::new(builtin), initial, clock)
    }

    /// A front end sharing its view records through `coordinator`, starting
    /// from `initial` (what `coordinator.load()` gave; the heartbeat loop
    /// keeps it up to date).
    pub fn with_coordinator(
        cfg: FrontEndConfig,
        transport: Arc<T>,
        coordinator: Arc<dyn Coordinator>,
        initial: Snapshot,
        clock: Clock,
    ) -> Result<Arc<Self>> {
        let records = initial
            .records
            .into_iter()
            .map(|r| (r.current.group, r))
            .collect();
        let replicas = cfg.catalog.iter().chain(cfg.order.iter()).cloned();
        let inner = Inner {
            records,
            status: BTreeMap::new(),
            detector: Detector::new(replicas, cfg.misses_for_down),
            balancer: Balancer::new(cfg.balance),
            cache: Cache::new(cfg.cache_capacity).breaking(cfg.unsafe_cache),
            rng: SmallRng::seed_from_u64(cfg.seed),
            counter: 0,
            confirmed_at: BTreeMap::new(),
            seen: Seen::default(),
            revision: initial.revision,
            leadership: None,
            frontends: vec![cfg.me.clone()],
            lease: None,
        };
        let (changed, _) = watch::channel(0);
        let batcher = Batcher::new(cfg.read_slots, batcher::MAX_BATCH)
            .misrouting(cfg.unsafe_misroute_batches);
        let buys = Coalescer::new(cfg.buy_slots, cfg.buy_batch);
        Ok(Arc::new(FrontEnd {
            cfg,
            transport,
            coordinator,
            clock,
            inner: Mutex::new(inner),
            batcher,
            buys,
            changed,
            task: Mutex::new(None),
        }))
    }

    /// Starts the heartbeat / view-service loop on the current tokio runtime.
    pub fn start(self: &Arc<Self>) {
        let me = self.clone();
        *self.task.lock() = Some(tokio::spawn(async move { me.run().await }));
    }

    /// Stops the heartbeat loop (for in-process clusters).
    pub fn shutdown(&self) {
        if let Some(t) = self.task.lock().take() {
            t.abort();
        }
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// The primary writes may go to: confirmed and alive.
    fn writable_primary(&self, group: Group) -> Option<NodeId> {
        let inner = self.inner.lock();
        let record = inner.records.get(&group)?;
        (record.is_confirmed() && inner.detector.is_up(&record.current.primary))
            .then(|| record.current.primary.clone())
    }

    /// Waits for a view or liveness change, at most until `deadline`.
    async fn wait_for_change(&self, deadline: Instant) -> Result<()> {
        let mut rx = self.changed.subscribe();
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Unavailable("no replica could serve in time".into()));
        }
        let pause = (deadline - now).min(self.cfg.heartbeat_interval);
        let _ = tokio::time::timeout(pause, rx.changed()).await;
        tokio::time::sleep(
            self.cfg
                .retry_delay
                .min(deadline.saturating_duration_since(Instant::now())),
        )
        .await;
        Ok(())
    }

    pub fn health(&self) -> Health {
        let inner = self.inner.lock();
        let (up, down): (Vec<NodeId>, Vec<NodeId>) = self
            .cfg
            .catalog
            .iter()
            .chain(self.cfg.order.iter())
            .cloned()
            .partition(|n| inner.detector.is_up(n));
        let recovering = up
            .iter()
            .filter(|n| inner.status.get(*n).is_some_and(|s| s.recovering))
            .cloned()
            .collect();
        Health {
            views: inner.records.values().cloned().collect(),
            up,
            down,
            recovering,
        }
    }

    /// Whether this front end leads (decides new views), as of its last
    /// campaign.
    pub fn is_leader(&self) -> bool {
        self.inner.lock().leadership.is_some()
    }

    /// The live front ends, as of the last registration with the
    /// coordinator (this one alone with the built-in coordinator).
    pub fn frontends(&self) -> Vec<NodeId> {
        self.inner.lock().frontends.clone()
    }

    /// The cache's counters (for benches and the health page).
    pub fn cache_stats(&self) -> crate::frontend::reads::cache::CacheStats {
        self.inner.lock().cache.stats()
    }

    /// Each replica's group and last heartbeat answer while it is up
    /// (`None` when it is down or has not answered yet), for metrics and
    /// the operations page. Read-only figures: nothing here decides
    /// anything.
    pub fn replica_status(&self) -> BTreeMap<NodeId, (Group, Option<ReplicaStatus>)> {
        let inner = self.inner.lock();
        let members = |group: Group, nodes: &[NodeId]| {
            nodes
                .iter()
                .map(|n| {
                    let status = inner
                        .detector
                        .is_up(n)
                        .then(|| inner.status.get(n).cloned())
                        .flatten();
                    (n.clone(), (group, status))
                })
                .collect::<Vec<_>>()
        };
        let mut all = members(Group::Catalog, &self.cfg.catalog);
        all.extend(members(Group::Order, &self.cfg.order));
        all.into_iter().collect()
    }
}

#[async_trait]
impl<T: Transport> Handler for FrontEnd<T> {
    async fn handle(&self, request: Request) -> Response {
        let result = match request {
            Request::ViewReady {
                group,
                epoch,
                commit,
                disks,
                uncertain,
            } => {
                self.view_ready(group, epoch, commit, disks, uncertain)
                    .await
            }
            Request::Invalidate { keys, lsn, refresh } => {
                let mut inner = self.inner.lock();
                inner.cache.invalidate(&keys, lsn);
                if self.cfg.leased {
                    // A write another front end may acknowledge once this
                    // arrived: reads here must not be answered below it.
                    inner.seen.raise(Group::Catalog, lsn);
                    for r in refresh {
                        inner.refreshed(r);
                    }
                }
                Ok(())
            }
            other => Err(Error::InvalidInput(format!(
                "the front end does not serve {other:?} internally"
            ))),
        };
        match result {
            Ok(()) => Response::Ok,
            Err(e) => Response::Error(e),
        }
    }
}
