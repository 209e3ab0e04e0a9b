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
//!   service makes the retries safe.
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
//! Caveat: the guarantee covers writes acknowledged by this front end and
//! states shown by it. An order read (`order`) does not mark the catalog:
//! an order found by someone other than its buyer, whose buy was never
//! acknowledged, does not make later catalog reads show that buy until the
//! primary's invalidation arrives.

use crate::balancer::{Balancer, Policy};
use crate::batcher::{self, Batcher};
use crate::cache::{Breakage, Cache, CacheKey, CachedValue};
use crate::command::{BuyStatus, CatalogCommand, CatalogOutcome, Order};
use crate::detector::{Detector, Transition};
use crate::error::{Error, Result};
use crate::message::{Query, QueryResult, ReplicaStatus, Request, Response};
use crate::transport::{Handler, Transport};
use crate::types::{Book, Group, ItemId, Lsn, NodeId, OrderId, RequestId};
use crate::view::GroupRecord;
use crate::viewservice::{may_confirm, next_view};
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
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Milliseconds since the Unix epoch (a real clock in pygmy-net, sim time in pygmy-sim).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Where the front end keeps its durable view records (one per group).
///
/// Contract: `save` returns only once the records are durable; `load`
/// returns what the last successful `save` stored (empty if none).
pub trait RecordStore: Send + Sync + 'static {
    fn load(&self) -> Result<Vec<GroupRecord>>;
    fn save(&self, records: &[GroupRecord]) -> Result<()>;
}

impl<F: crate::fs::Fs> RecordStore for crate::record::RecordFile<F> {
    fn load(&self) -> Result<Vec<GroupRecord>> {
        Ok(crate::record::RecordFile::load(self)?.unwrap_or_default())
    }
    fn save(&self, records: &[GroupRecord]) -> Result<()> {
        crate::record::RecordFile::save(self, &records.to_vec())
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
    pub seed: u64,
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
            seed: 0,
            unsafe_promote_stale: false,
            unsafe_misroute_batches: false,
            unsafe_cache: Breakage::default(),
        }
    }

    fn members(&self, group: Group) -> &[NodeId] {
        match group {
            Group::Catalog => &self.catalog,
            Group::Order => &self.order,
        }
    }
}

/// Node names for a log line: `catalog-2, catalog-3`.
fn names(nodes: &[NodeId]) -> String {
    let names: Vec<&str> = nodes.iter().map(|n| n.0.as_str()).collect();
    names.join(", ")
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
    store: Box<dyn RecordStore>,
    clock: Clock,
    inner: Mutex<Inner>,
    /// Shares RPCs among cache misses bound for the same replica.
    batcher: Batcher,
    /// Bumped whenever views or liveness change.
    changed: watch::Sender<u64>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl<T: Transport> FrontEnd<T> {
    pub fn new(
        cfg: FrontEndConfig,
        transport: Arc<T>,
        store: Box<dyn RecordStore>,
        clock: Clock,
    ) -> Result<Arc<Self>> {
        let records = store
            .load()?
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
        };
        let (changed, _) = watch::channel(0);
        let batcher = Batcher::new(cfg.read_slots, batcher::MAX_BATCH)
            .misrouting(cfg.unsafe_misroute_batches);
        Ok(Arc::new(FrontEnd {
            cfg,
            transport,
            store,
            clock,
            inner: Mutex::new(inner),
            batcher,
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

    async fn run(self: Arc<Self>) {
        loop {
            let started = Instant::now();
            let view_changed = self.heartbeat_round().await;
            // After a view change, announce it right away instead of a tick later.
            if !view_changed {
                tokio::time::sleep_until(started + self.cfg.heartbeat_interval).await;
            }
        }
    }

    /// Probes every replica once, then lets the view service react.
    /// Returns true when a new view was announced.
    pub async fn heartbeat_round(&self) -> bool {
        let (views, disks) = {
            let inner = self.inner.lock();
            let views: Vec<_> = inner.records.values().map(|r| r.current.clone()).collect();
            let disks: BTreeMap<NodeId, u64> = inner
                .records
                .values()
                .flat_map(|r| r.disks.iter().map(|(n, d)| (n.clone(), *d)))
                .collect();
            (views, disks)
        };
        let probed_at = Instant::now();
        let mut probes = JoinSet::new();
        for node in self.cfg.catalog.iter().chain(self.cfg.order.iter()) {
            let transport = self.transport.clone();
            let node = node.clone();
            let request = Request::Heartbeat {
                views: views.clone(),
                disks: Some(disks.clone()),
            };
            let timeout = self.cfg.heartbeat_interval.min(self.cfg.hop_timeout);
            probes.spawn(async move {
                let reply = transport.call(&node, request, timeout).await;
                (node, reply)
            });
        }
        let mut replies = BTreeMap::new();
        while let Some(joined) = probes.join_next().await {
            if let Ok((node, reply)) = joined {
                replies.insert(node, reply);
            }
        }
        let mut inner = self.inner.lock();
        let mut liveness_changed = false;
        for (node, reply) in replies {
            let ok = match reply {
                Ok(Response::Status(mut s)) if s.node == node => {
                    // A primary starts serving only once its view is
                    // confirmed. A probe sent before the confirmation
                    // arrived cannot show that, and must not be read as
                    // "the primary restarted and lost its role", or every
                    // confirmation would race into a needless view change.
                    let raced = inner
                        .confirmed_at
                        .get(&s.group)
                        .is_some_and(|at| *at >= probed_at);
                    if raced {
                        s.serving = true;
                    }
                    let was = inner.status.get(&node).is_some_and(|p| p.recovering);
                    if s.recovering && !was {
                        tracing::warn!(
                            target: "heartbeat",
                            node = %node,
                            disk = s.disk,
                            recorded = ?disks.get(&node),
                            "replica's disk is not the one the view record holds (new, emptied or damaged): it is recovering, and holds no committed entries until rebuilt from an intact member"
                        );
                    }
                    inner.status.insert(node.clone(), s);
                    true
                }
                _ => false,
            };
            match inner.detector.record(&node, ok) {
                Some(Transition::Up(n)) => {
                    liveness_changed = true;
                    tracing::info!(target: "heartbeat", node = %n, "replica is up");
                }
                Some(Transition::Down(n)) => {
                    liveness_changed = true;
                    tracing::warn!(target: "heartbeat", node = %n, "replica is down");
                }
                None => {}
            }
        }
        // A serving primary of the current, confirmed view has committed
        // every write any primary of its group acknowledged: reads may be
        // asked for its commit point (the first time, this is what lets
        // reads start after the front end started).
        let mut learnt = false;
        for group in Group::ALL {
            let Some(record) = inner.records.get(&group) else {
                continue;
            };
            let primary = &record.current.primary;
            let serving = record.is_confirmed() && inner.detector.is_up(primary);
            let commit = inner
                .status
                .get(primary)
                .filter(|s| serving && s.serving && s.epoch == record.current.epoch)
                .map(|s| s.commit);
            if let Some(commit) = commit {
                learnt |= inner.seen.learn(group, commit);
            }
        }
        let mut announced = false;
        for group in Group::ALL {
            let members = self.cfg.members(group);
            let status: BTreeMap<NodeId, Option<ReplicaStatus>> = members
                .iter()
                .map(|m| {
                    let s = if inner.detector.is_up(m) {
                        inner.status.get(m).cloned()
                    } else {
                        None
                    };
                    (m.clone(), s)
                })
                .collect();
            let record = inner.records.get(&group).map(|r| self.as_decided(r));
            let Some(view) = next_view(record.as_ref(), group, members, &status) else {
                continue;
            };
            let (confirmed, disks) = inner
                .records
                .get(&group)
                .map(|r| (r.confirmed.clone(), r.disks.clone()))
                .unwrap_or_default();
            let previous = inner.records.insert(
                group,
                GroupRecord {
                    current: view.clone(),
                    confirmed,
                    disks,
                },
            );
            let all: Vec<_> = inner.records.values().cloned().collect();
            if let Err(e) = self.store.save(&all) {
                // Not durable, so not announced.
                tracing::error!(error = %e, "cannot store the view record");
                match previous {
                    Some(p) => inner.records.insert(group, p),
                    None => inner.records.remove(&group),
                };
                continue;
            }
            tracing::info!(
                target: "heartbeat",
                %group,
                epoch = view.epoch,
                primary = %view.primary,
                backups = %names(&view.backups),
                "new view"
            );
            announced = true;
        }
        drop(inner);
        if announced || liveness_changed || learnt {
            self.bump();
        }
        announced
    }

    /// The record the view service decides from. In the deliberately broken
    /// mode, every member looks like it was in the confirmed view.
    fn as_decided(&self, record: &GroupRecord) -> GroupRecord {
        let mut record = record.clone();
        if self.cfg.unsafe_promote_stale {
            if let Some(confirmed) = record.confirmed.as_mut() {
                for m in self.cfg.members(record.current.group) {
                    if !confirmed.contains(m) {
                        confirmed.backups.push(m.clone());
                    }
                }
            }
        }
        record
    }

    /// Records a new primary's confirmation of its view, durably.
    fn view_ready(
        &self,
        group: Group,
        epoch: u64,
        commit: Lsn,
        disks: BTreeMap<NodeId, u64>,
    ) -> Result<()> {
        let mut inner = self.inner.lock();
        let Some(record) = inner.records.get(&group) else {
            return Err(Error::StaleEpoch {
                got: epoch,
                current: 0,
            });
        };
        if record.current.epoch != epoch {
            return Err(Error::StaleEpoch {
                got: epoch,
                current: record.current.epoch,
            });
        }
        // A primary unsure of its log's tail (it restarted) confirms only a
        // view that holds every member that may have committed entries it
        // lost (see `viewservice::may_confirm`); the view service replaces
        // its view meanwhile.
        let uncertain = inner
            .status
            .get(&record.current.primary)
            .is_none_or(|s| s.uncertain);
        let on_intact_disk = |n: &NodeId| {
            let s = inner.status.get(n).filter(|_| inner.detector.is_up(n))?;
            Some(!s.recovering && record.disk_matches(n, s.disk))
        };
        if !record.is_confirmed() && uncertain && !may_confirm(record, &on_intact_disk) {
            return Err(Error::Unavailable(format!(
                "{} may lack committed entries (its log's tail is uncertain) and its view lacks members that hold them",
                record.current.primary
            )));
        }
        if !record.is_confirmed() {
            let previous = (record.confirmed.clone(), record.disks.clone());
            let current = record.current.clone();
            // The disks of the view's members, as they pulled the whole log
            // (a primary of an older build sends none: then none are known).
            let disks: BTreeMap<NodeId, u64> = disks
                .into_iter()
                .filter(|(n, _)| current.contains(n))
                .collect();
            if let Some(r) = inner.records.get_mut(&group) {
                r.confirmed = Some(current);
                r.disks = disks;
            }
            let all: Vec<_> = inner.records.values().cloned().collect();
            if let Err(e) = self.store.save(&all) {
                if let Some(r) = inner.records.get_mut(&group) {
                    (r.confirmed, r.disks) = previous;
                }
                return Err(e);
            }
            inner.confirmed_at.insert(group, Instant::now());
            // The new primary's adopted log end holds every committed entry.
            inner.seen.learn(group, commit);
            tracing::info!(target: "heartbeat", %group, epoch, "view confirmed");
            if group == Group::Catalog {
                // Invalidations the old primary committed but never delivered
                // are lost with it: start the cache afresh.
                inner.cache.invalidate_all(commit);
            }
        }
        drop(inner);
        self.bump();
        Ok(())
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

    /// A read of committed state from a live member of `group`'s view, at
    /// a commit point of at least the group's `seen` (and `at_least`): it
    /// reflects every write this front end acknowledged and every state a
    /// read showed before it was sent. The caller raises `seen` to the
    /// answer's lsn before it answers its client.
    async fn read(
        &self,
        group: Group,
        query: Query,
        route: Route,
        at_least: Lsn,
    ) -> Result<(QueryResult, Lsn)> {
        let deadline = Instant::now() + self.cfg.request_deadline;
        let mut tried: Vec<NodeId> = Vec::new();
        loop {
            let pick = {
                let mut guard = self.inner.lock();
                let inner = &mut *guard;
                // Unknown until the group's primary told us its commit
                // point (after a start): wait for the heartbeat to learn it.
                let min = inner.seen.get(group).map(|seen| seen.max(at_least));
                let (detector, balancer) = (&inner.detector, &mut inner.balancer);
                let record = inner.records.get(&group);
                let candidates = record
                    .into_iter()
                    .flat_map(|r| {
                        // A primary's commit point covers every write only
                        // once its view is confirmed (and `seen` learnt
                        // its adopted log end).
                        let primary = &r.current.primary;
                        let confirmed = r.is_confirmed();
                        r.current.members().filter(move |m| {
                            route == Route::Balanced || (confirmed && *m == primary)
                        })
                    })
                    .filter(|m| detector.is_up(m));
                let pick = match min {
                    Some(min) => balancer.pick(candidates, &tried).map(|n| (n, min)),
                    None => None,
                };
                if let Some((node, _)) = &pick {
                    inner.balancer.start(node);
                }
                pick
            };
            let Some((node, min)) = pick else {
                self.wait_for_change(deadline).await?;
                tried.clear();
                continue;
            };
            let reply = {
                // Ends the read's count on drop too: a caller that goes away
                // mid-read must not leave the node looking busy forever.
                let _outstanding = Outstanding {
                    fe: self,
                    node: &node,
                };
                let timeout = self.cfg.hop_timeout;
                if Batcher::batchable(&query) {
                    let transport = self.transport.as_ref();
                    self.batcher
                        .read(transport, &node, query.clone(), min, timeout)
                        .await
                } else {
                    let request = Request::ReadAt {
                        query: query.clone(),
                        min,
                    };
                    match self.transport.call(&node, request, timeout).await {
                        Ok(Response::Read { result, lsn }) => Ok((result, lsn)),
                        Ok(other) => Err(crate::transport::unexpected("read", &other)),
                        Err(e) => Err(e),
                    }
                }
            };
            match reply {
                Ok(answer) => return Ok(answer),
                Err(e) if e.is_retryable() => tried.push(node),
                Err(e) => return Err(e),
            }
        }
    }

    fn cached(&self, key: &CacheKey) -> Option<CachedValue> {
        self.inner.lock().cache.get(key)
    }

    /// `search(topic)`: the books of a topic (empty when the topic is unknown).
    pub async fn search(&self, topic: &str) -> Result<Vec<Book>> {
        let key = CacheKey::Search(topic.to_string());
        if let Some(CachedValue::Books(books)) = self.cached(&key) {
            return Ok(books);
        }
        let query = Query::Search {
            topic: topic.to_string(),
        };
        match self.read(Group::Catalog, query, Route::Balanced, 0).await? {
            (QueryResult::Books(books), lsn) => {
                let shown: Vec<CacheKey> = books.iter().map(|b| CacheKey::Lookup(b.id)).collect();
                let mut inner = self.inner.lock();
                inner.seen.raise(Group::Catalog, lsn);
                inner.cache.saw(&shown, lsn);
                if !books.is_empty() {
                    inner
                        .cache
                        .fill(key, CachedValue::Books(books.clone()), lsn);
                }
                Ok(books)
            }
            (other, _) => Err(Error::Transport(format!(
                "unexpected search result {other:?}"
            ))),
        }
    }

    /// `lookup(id)`: one book, with its stock and cost.
    pub async fn lookup(&self, id: ItemId) -> Result<Book> {
        let key = CacheKey::Lookup(id);
        if let Some(CachedValue::Book(book)) = self.cached(&key) {
            return Ok(book);
        }
        let query = Query::Lookup { id };
        match self.read(Group::Catalog, query, Route::Balanced, 0).await? {
            (QueryResult::Book(Some(book)), lsn) => {
                let shown = [CacheKey::Search(book.topic.clone())];
                let mut inner = self.inner.lock();
                inner.seen.raise(Group::Catalog, lsn);
                inner.cache.saw(&shown, lsn);
                inner.cache.fill(key, CachedValue::Book(book.clone()), lsn);
                Ok(book)
            }
            (QueryResult::Book(None), lsn) => {
                self.inner.lock().seen.raise(Group::Catalog, lsn);
                Err(Error::NotFound(format!("item {id} not found")))
            }
            (other, _) => Err(Error::Transport(format!(
                "unexpected lookup result {other:?}"
            ))),
        }
    }

    /// Every book (uncached; for admin views and checks).
    pub async fn all_books(&self) -> Result<Vec<Book>> {
        let read = self.read(Group::Catalog, Query::AllBooks, Route::Balanced, 0);
        match read.await? {
            (QueryResult::Books(books), lsn) => {
                let mut shown: Vec<CacheKey> =
                    books.iter().map(|b| CacheKey::Lookup(b.id)).collect();
                shown.extend(books.iter().map(|b| CacheKey::Search(b.topic.clone())));
                let mut inner = self.inner.lock();
                inner.seen.raise(Group::Catalog, lsn);
                inner.cache.saw(&shown, lsn);
                Ok(books)
            }
            (other, _) => Err(Error::Transport(format!("unexpected result {other:?}"))),
        }
    }

    /// One order by id.
    pub async fn order(&self, id: OrderId) -> Result<Order> {
        let query = Query::Order { id };
        let (result, lsn) = self.read(Group::Order, query, Route::Balanced, 0).await?;
        self.inner.lock().seen.raise(Group::Order, lsn);
        match result {
            QueryResult::Order(Some(order)) => Ok(order),
            QueryResult::Order(None) => Err(Error::NotFound(format!("order {id} not found"))),
            other => Err(Error::Transport(format!("unexpected result {other:?}"))),
        }
    }

    /// A fresh request id for a buy without an idempotency key: time,
    /// a counter and randomness, so ids differ across front-end restarts.
    fn new_request_id(&self) -> RequestId {
        let mut inner = self.inner.lock();
        inner.counter += 1;
        let salt: u64 = inner.rng.gen();
        format!("fe-{}-{}-{:016x}", (self.clock)(), inner.counter, salt)
    }

    /// `buy(id)`: buys `qty` copies exactly once per request id.
    ///
    /// A key used before for another buy (item or quantity) is refused as
    /// `KeyReused`, and one whose other buy is still running on the order
    /// primary as `Conflict`; neither buys anything (see `replica/buy.rs`).
    pub async fn buy(&self, id: ItemId, qty: u64, key: Option<String>) -> Result<Receipt> {
        if qty == 0 {
            return Err(Error::InvalidInput("qty must be at least 1".into()));
        }
        let request = match key {
            Some(k) if k.is_empty() || k.len() > MAX_KEY_LEN => {
                return Err(Error::InvalidInput(format!(
                    "Idempotency-Key must be 1 to {MAX_KEY_LEN} characters"
                )))
            }
            Some(k) => k,
            None => self.new_request_id(),
        };
        let deadline = Instant::now() + self.cfg.request_deadline;
        loop {
            let Some(primary) = self.writable_primary(Group::Order) else {
                self.wait_for_change(deadline).await?;
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let call = Request::Buy {
                request: request.clone(),
                item: id,
                qty,
            };
            let reply = self
                .transport
                .call(&primary, call, self.cfg.buy_timeout.min(left))
                .await;
            match reply {
                Ok(Response::Buy {
                    status: BuyStatus::Done(done),
                    catalog_lsn,
                    lsn,
                }) => {
                    self.inner.lock().seen.raise(Group::Order, lsn);
                    self.bought(id, &done, catalog_lsn).await.map_err(|e| {
                        Error::Unavailable(format!(
                            "buy {request} is done but its effect could not be confirmed \
                             ({e}); retry with the same Idempotency-Key"
                        ))
                    })?;
                    return done.map(|order| Receipt { order }).map_err(Error::from);
                }
                Ok(Response::Buy { .. }) => {}
                Ok(other) => return Err(crate::transport::unexpected("buy", &other)),
                Err(e) if e.is_retryable() => {}
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                return Err(Error::Unavailable(format!(
                    "buy {request} not finished in time; retry with the same Idempotency-Key"
                )));
            }
            tokio::time::sleep(self.cfg.retry_delay).await;
        }
    }

    /// Before a buy's answer leaves: later reads of its item must show
    /// what the buy did to it. With the reservation's commit lsn and the
    /// item's topic (a successful buy's order names it), that is one
    /// invalidation. A refused buy may have restocked its item (the
    /// original's rule) and names no topic, and a buy finished earlier (a
    /// retry) comes without the lsn: then the item is read afresh, at or
    /// past the lsn, or from the primary when the lsn is unknown (a serving
    /// primary has committed every reservation), and invalidated at that
    /// read's lsn.
    async fn bought(
        &self,
        id: ItemId,
        done: &std::result::Result<Order, crate::command::Rejection>,
        catalog_lsn: Option<Lsn>,
    ) -> Result<()> {
        use crate::command::Rejection;
        match (done, catalog_lsn) {
            (Ok(order), Some(lsn)) => {
                self.invalidate_item(order.item_id, Some(order.topic.clone()), lsn);
                Ok(())
            }
            (Ok(order), None) => self.reread_item(order.item_id, None).await,
            (Err(Rejection::OutOfStock(_)), at) => self.reread_item(id, at).await,
            // Nothing changed.
            (Err(_), _) => Ok(()),
        }
    }

    /// Reads `item` at or past `at` (from the primary if `None`), and
    /// invalidates its keys at the lsn read.
    async fn reread_item(&self, item: ItemId, at: Option<Lsn>) -> Result<()> {
        let (route, at_least) = match at {
            Some(lsn) => (Route::Balanced, lsn),
            None => (Route::Primary, 0),
        };
        let query = Query::Lookup { id: item };
        let (result, lsn) = self.read(Group::Catalog, query, route, at_least).await?;
        let topic = match result {
            QueryResult::Book(book) => book.map(|b| b.topic),
            other => {
                return Err(Error::Transport(format!(
                    "unexpected lookup result {other:?}"
                )))
            }
        };
        self.invalidate_item(item, topic, lsn);
        Ok(())
    }

    /// Drops an item's cached reads before a write's answer leaves, and
    /// raises the catalog's `seen` to the write's commit lsn.
    fn invalidate_item(&self, item: ItemId, topic: Option<String>, lsn: Lsn) {
        let mut keys = vec![CacheKey::Lookup(item)];
        if let Some(t) = topic {
            keys.push(CacheKey::Search(t));
        }
        let mut inner = self.inner.lock();
        inner.seen.raise(Group::Catalog, lsn);
        inner.cache.invalidate(&keys, lsn);
    }

    /// A catalog change through the catalog primary. Retried only while it
    /// certainly was not applied (`NotPrimary`, no primary yet).
    async fn catalog_write(&self, command: CatalogCommand) -> Result<Book> {
        let deadline = Instant::now() + self.cfg.request_deadline;
        loop {
            let Some(primary) = self.writable_primary(Group::Catalog) else {
                self.wait_for_change(deadline).await?;
                continue;
            };
            let reply = self
                .transport
                .call(
                    &primary,
                    Request::Catalog(command.clone()),
                    self.cfg.hop_timeout,
                )
                .await;
            match reply {
                Ok(Response::Catalog {
                    outcome: CatalogOutcome::Changed(changed),
                    lsn,
                }) => {
                    if let Ok(book) = &changed {
                        self.invalidate_item(book.id, Some(book.topic.clone()), lsn);
                    }
                    return changed.map_err(Error::from);
                }
                Ok(other) => return Err(crate::transport::unexpected("catalog write", &other)),
                Err(Error::NotPrimary { .. }) | Err(Error::StaleEpoch { .. }) => {
                    if Instant::now() >= deadline {
                        return Err(Error::Unavailable("no catalog primary".into()));
                    }
                    tokio::time::sleep(self.cfg.retry_delay).await;
                }
                Err(e) if e.is_retryable() => {
                    return Err(Error::Unavailable(format!(
                        "catalog write outcome unknown ({e}); check the book before retrying"
                    )))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Adds `qty` copies; once per `key` (see [`FrontEnd::set_price`]).
    pub async fn restock(&self, id: ItemId, qty: u64, key: Option<String>) -> Result<Book> {
        self.catalog_write(keyed(CatalogCommand::Restock { item: id, qty }, key)?)
            .await
    }

    /// Sets the price. With a `key` the change applies once however often
    /// it is retried (a retry gets the first answer; the key with another
    /// change is refused as `KeyReused`), as buys do; the catalog keeps
    /// the newest keys (see `catalog.rs`).
    pub async fn set_price(&self, id: ItemId, cost: u64, key: Option<String>) -> Result<Book> {
        self.catalog_write(keyed(CatalogCommand::SetPrice { item: id, cost }, key)?)
            .await
    }

    /// Adds a book; once per `key` (see [`FrontEnd::set_price`]).
    pub async fn add_book(&self, book: Book, key: Option<String>) -> Result<Book> {
        self.catalog_write(keyed(CatalogCommand::AddBook { book }, key)?)
            .await
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

    /// The cache's counters (for benches and the health page).
    pub fn cache_stats(&self) -> crate::cache::CacheStats {
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
            } => self.view_ready(group, epoch, commit, disks),
            Request::Invalidate { keys, lsn } => {
                self.inner.lock().cache.invalidate(&keys, lsn);
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

/// `change` under the client's idempotency `key`, if any.
fn keyed(change: CatalogCommand, key: Option<String>) -> Result<CatalogCommand> {
    match key {
        None => Ok(change),
        Some(k) if k.is_empty() || k.len() > MAX_KEY_LEN => Err(Error::InvalidInput(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} characters"
        ))),
        Some(key) => Ok(CatalogCommand::Keyed {
            key,
            change: Box::new(change),
        }),
    }
}
