//! A replica of either group: primary-backup replication with a view
//! service, as `docs/DESIGN.md` (§2–§4) describes it.
//!
//! Written once for any state machine: [`Replica`] is generic over
//! [`StateMachine`] (`state/machine.rs`), and calls the state only through
//! it — apply, digest, size, and the generic hooks of the state's *side
//! files* (files kept beside the log, such as the order ledger's archive):
//! their failure, sync before a snapshot, shipping from a mark, adoption
//! of a received copy. So nothing here knows what the state holds. The
//! messages and the snapshot file carry the store's own state type, as
//! they did before the trait; replication converts to and from it at
//! those two edges (`Into`/`TryFrom`, supertraits of `StateMachine`; the
//! module docs of `state/machine.rs` say why this intermediate step).
//! What a group does on top (its requests, reads, background work) is its
//! [`Service`]'s.
//!
//! # How it works
//!
//! - **Views.** The front end (the view service) sends every replica the
//!   current view of every group in each heartbeat. A replica accepts a view
//!   only with a higher epoch than its own, stores it durably, and from then
//!   on refuses messages of older epochs: that fences an old primary.
//!   Durable *before* it is acted on: a replica that refused the old epoch
//!   (or answered a new primary's `StartView`), crashed and came back with
//!   the older view on disk would take the old primary's messages again,
//!   and two primaries could both commit. So a view is accepted one at a
//!   time, under the `accepting` lock, from the epoch check through the
//!   save (one small file written and fsynced, `Storage::save_view`) to its
//!   adoption; otherwise an older view's save could finish after a newer
//!   one's and leave the older epoch on disk. *Cost:* a heartbeat or
//!   `StartView` that arrives while another view is being saved waits for
//!   that save (and for a log fsync in progress, which holds the storage);
//!   `accepting` is a plain mutex (nothing under it awaits), so on a
//!   multi-threaded runtime that wait blocks the worker thread. It happens
//!   only during a view change: heartbeats otherwise find `accepting` free,
//!   and reads, writes and pulls never take it, nor does the replica's own
//!   lock stay held across the save.
//! - **Writes** go to the primary of a *confirmed* view. The primary appends
//!   the command to its log at `(epoch, lsn)`; a syncer task makes the log
//!   durable (one fsync for everything appended meanwhile: group commit).
//! - **Replication is pulled.** Every other replica runs a puller that asks
//!   the primary for "the entries after my durable log end" (`Fetch`). That
//!   position doubles as the backup's acknowledgement: once every backup of
//!   the view has asked for entries after lsn `n`, and the primary's own log
//!   is synced to `n`, entries up to `n` are committed. The primary holds a
//!   caught-up `Fetch` until it has something new (long poll), so a backup
//!   learns new entries and the new commit point within one round trip.
//!   The same exchange resyncs a restarted replica: the answer is either the
//!   entries that follow, "your log diverges, cut it to lsn m" (an
//!   uncommitted suffix of an old primary), or a snapshot when the replica
//!   is behind the primary's compacted log.
//! - **Commit and apply.** Only committed entries are applied, on every
//!   replica, in log order, so reads (served by any member) never show a
//!   write that could still be lost, and every outcome is decided by the log.
//!   A client is answered only after its entry is committed and applied.
//! - **View start.** A replica that receives a view naming it primary first
//!   sends `StartView` to each backup (which accepts the view, fencing the
//!   old primary, and reports its log end), adopts the longest log among
//!   them, waits until every backup has pulled its whole log, then asks the
//!   view service to record the view as confirmed (`ViewReady`). Only then
//!   does it commit the adopted entries and serve writes.
//!
//! - **Storage faults** (the model is in `logstore.rs`). A replica reports
//!   its disk identity, and whether its log's end is *uncertain* (it
//!   restarted with data and has not caught up with a primary since: a
//!   torn, damaged or lost tail cannot be told apart). The view record
//!   keeps each confirmed member's disk, and every heartbeat carries them;
//!   a replica whose disk is not the recorded one is *recovering*: it
//!   keeps the epoch but never starts a view, answers no pull (never
//!   "diverged") and no read, until a confirmed view records its new disk.
//!   A new disk (or one whose damaged files were set aside) asks the
//!   primary for a snapshot first (`Fetch { rebuild }`), as its state is
//!   the initial one. It refuses `StartView` until the view service has
//!   told it the current views, so an old primary cannot fence it into a
//!   stale epoch. A primary counts a backup's acknowledgement only for the
//!   disk it was given with.
//!
//! # Guarantees
//!
//! - A committed entry is durable on every member of the view that
//!   committed it; the view service only promotes a member of the last
//!   confirmed view, so committed entries survive any n−1 crashes.
//! - One damaged disk loses nothing: with the storage fault model above,
//!   while another member of the last confirmed view holds its disk, no
//!   committed entry is lost; the group serves again once an intact member
//!   is up (with every other member of that view, if its log's end is
//!   uncertain), and waits otherwise.
//! - Two primaries never both commit: committing needs every backup's
//!   acknowledgement, and a backup that accepted a newer view refuses the
//!   old primary's epoch.
//!
//! # Caveats
//!
//! - A write whose primary loses its role before committing gets an
//!   "outcome unknown" error: it may still be committed by the next primary
//!   (adoption keeps uncommitted entries). Buys are safe to retry under
//!   their request id; a retried restock may apply twice.
//! - A snapshot sent to a lagging replica carries the state's side-file
//!   contents it lacks (from its [`mark`](StateMachine::mark)), all in one
//!   message. How much memory and disk a state needs is the state's
//!   business (see the module docs under `state/`).

mod backup;
mod disk;
pub mod log;
mod primary;
mod service;

pub use primary::Committed;
pub use service::{Held, Service};

use crate::error::{Error, Result};
use crate::state::command::Outcome;
use crate::state::StateMachine;
use crate::storage::Storage;
use crate::transport::message::{Query, QueryResult, ReplicaStatus, Request, Response};
use crate::transport::{Handler, Transport};
use crate::types::{Clock, Epoch, Group, Lsn, NodeId};
use crate::view::View;
use async_trait::async_trait;
use log::MemLog;
use parking_lot::{Mutex, MutexGuard};
use primary::Asked;
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// A replica's settings: replication's own (who it is, whom it talks to,
/// timeouts, snapshots, how it waits on the disk). What the services on
/// top need (the buy's deadline, cache leases) is in
/// [`ServiceConfig`](crate::services::ServiceConfig), so replication knows
/// nothing of buys or leases.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    pub me: NodeId,
    pub group: Group,
    /// The view service (the front end).
    pub frontend: NodeId,
    /// The other front ends, when several share the view records through
    /// a coordinator: a new primary whose `ViewReady` `frontend` does not
    /// take tries these in turn (any front end may store a confirmation).
    /// Empty with one front end.
    pub other_frontends: Vec<NodeId>,
    /// Deadline of one call to another node.
    pub hop_timeout: Duration,
    /// Pause before retrying a failed call.
    pub retry_delay: Duration,
    /// How long the primary holds a caught-up `Fetch` (must be well under
    /// `hop_timeout`).
    pub poll_wait: Duration,
    /// Take a snapshot (and compact the log) once this many entries, or as
    /// many entries as the state holds records if that is more, were applied
    /// since the last one. Growing the interval with the state keeps the
    /// cost of snapshots linear in the number of entries (each snapshot
    /// encodes the whole state), and replaying the log at a restart never
    /// costs more than loading the snapshot.
    pub snapshot_every: u64,
    /// Whether the snapshot interval grows with the state (see
    /// `snapshot_every`). The simulation turns it off to take snapshots
    /// often, so that compaction and snapshot installs are exercised.
    pub snapshot_scales: bool,
    /// Most entries sent in one `Fetch` answer.
    pub fetch_limit: usize,
    /// How long a read asking for a commit point this replica has not
    /// reached (`ReadAt`, `ReadBatch`) waits for it before declining. A
    /// backup learns the primary's commit point within one pull round trip,
    /// so a short wait answers most such reads; a longer lag (a partition,
    /// a resync) is declined and the front end asks another member.
    pub read_wait: Duration,
    /// How to wait on a log append and its fsync (the commit path).
    /// `Inline` by default; see [`DiskWait`].
    pub append_wait: DiskWait,
    /// How to wait on a snapshot's slow work (encoding, writing, syncing
    /// it and the state's side files), a compaction's or an install's.
    /// `Inline` by default; see [`DiskWait`].
    pub snapshot_wait: DiskWait,
    /// Deliberately broken, for the simulation's own tests: reads ignore
    /// the commit point they ask for and are answered at whatever this
    /// replica has committed (a lagging backup answers stale reads).
    /// Never set otherwise.
    pub unsafe_read_any: bool,
    /// Deliberately broken, for the simulation's own tests: snapshots are
    /// written without syncing the state's side files first (the order
    /// ledger's archive), so one can count on records a crash loses. Never
    /// set otherwise.
    pub unsafe_unsynced_side_files: bool,
    /// Deliberately broken, for the simulation's own tests: the replica
    /// trusts its disk after a restart (it never reports its log's end as
    /// uncertain), as earlier builds did. Never set otherwise.
    pub unsafe_trust_disk: bool,
}

impl ReplicaConfig {
    /// Every front end this replica knows of: `frontend`, then
    /// `other_frontends`.
    pub fn frontends(&self) -> impl Iterator<Item = &NodeId> {
        std::iter::once(&self.frontend).chain(self.other_frontends.iter())
    }

    /// Defaults fit for a LAN or loopback cluster.
    pub fn new(me: NodeId, group: Group, frontend: NodeId) -> Self {
        ReplicaConfig {
            me,
            group,
            frontend,
            other_frontends: Vec::new(),
            hop_timeout: Duration::from_millis(1000),
            retry_delay: Duration::from_millis(20),
            poll_wait: Duration::from_millis(250),
            snapshot_every: 10_000,
            snapshot_scales: true,
            unsafe_unsynced_side_files: false,
            unsafe_trust_disk: false,
            fetch_limit: 1024,
            read_wait: Duration::from_millis(50),
            append_wait: DiskWait::Inline,
            snapshot_wait: DiskWait::Inline,
            unsafe_read_any: false,
        }
    }
}

/// How a replica's task waits on slow, blocking disk work (an fsync, a
/// snapshot's encoding). The code that runs the replica chooses, because
/// it built the runtime and knows what it is: the replica never looks at
/// the runtime to decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskWait {
    /// On the task's own thread: the other tasks of that worker wait
    /// meanwhile. The only choice on a current-thread runtime (the
    /// simulation's, where it keeps a run deterministic), and the better
    /// one for appends when other workers serve meanwhile (a hand-off would
    /// only add a thread wake-up to every commit's latency).
    Inline,
    /// Through [`tokio::task::block_in_place`]: the worker hands its other
    /// tasks to another thread meanwhile, so reads and replication do not
    /// wait for the disk. Needs a multi-threaded runtime (it panics on a
    /// current-thread one).
    HandOff,
}

impl DiskWait {
    /// The choice Pygmy's own adapters make for a replica on `runtime`, as
    /// `(append_wait, snapshot_wait)`: on a multi-threaded runtime,
    /// snapshots hand off; appends hand off only with a single worker (a
    /// catalog replica's default, see `threads` in the cluster's
    /// configuration), as other workers serve meanwhile otherwise. On a
    /// current-thread runtime, both inline.
    pub fn for_runtime(runtime: &tokio::runtime::Handle) -> (DiskWait, DiskWait) {
        if runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return (DiskWait::Inline, DiskWait::Inline);
        }
        let append = if runtime.metrics().num_workers() == 1 {
            DiskWait::HandOff
        } else {
            DiskWait::Inline
        };
        (append, DiskWait::HandOff)
    }

    /// Runs `work`, waiting on it the chosen way.
    pub(crate) fn run<R>(self, work: impl FnOnce() -> R) -> R {
        match self {
            DiskWait::Inline => work(),
            DiskWait::HandOff => tokio::task::block_in_place(work),
        }
    }
}

/// A client waiting for its entry to commit: gets the outcome and the lsn.
type Waiter = oneshot::Sender<Result<(Outcome, Lsn)>>;

/// Everything a replica knows, behind one lock that is never held across
/// an `.await` (the state machines are plain structs; async code around
/// them only moves messages and bytes).
struct Inner<S> {
    /// The latest view of my group I accepted (stored durably).
    view: Option<View>,
    /// Views of the other group, to find its primary.
    others: BTreeMap<Group, View>,
    log: MemLog,
    /// The state with every entry up to `commit` applied.
    state: S,
    /// The running digest of that state (see `state::chain_digest`).
    digest: u64,
    commit: Lsn,
    /// The log is durable up to this lsn.
    synced: Lsn,
    /// Primary of the current view, confirmed by the view service.
    serving: bool,
    /// The epoch whose `start_view` this process has begun (0: none).
    started: Epoch,
    /// Primary: how far each backup of the view has durably pulled.
    matched: BTreeMap<NodeId, Lsn>,
    /// Primary: the disk each backup pulled with (a new disk voids what
    /// the old one acknowledged).
    matched_disk: BTreeMap<NodeId, u64>,
    /// My log's tail may have been lost (I restarted with data) and I have
    /// not resynchronised since: I may lack committed entries.
    uncertain: bool,
    /// The epoch whose view start adopted the longest of its backups'
    /// logs (0: none): from then on my log holds everything theirs do, so
    /// I may tell them to cut theirs even while uncertain of my own end.
    adopted: Epoch,
    /// My disk is not the one the view record holds for me: I hold no
    /// committed entries, so I never act as primary, never answer a pull
    /// or a read, until a confirmed view records this disk.
    recovering: bool,
    /// My disk is new (or was set aside): I want the whole committed state
    /// from the primary, as a snapshot, before anything else.
    rebuild: bool,
    /// I know the current epoch: from my stored view or from the view
    /// service. A replica that knows none (a new disk) refuses to be
    /// fenced into a view by a primary before the view service has told
    /// it the current one, which could be an old primary's.
    epoch_known: bool,
    waiters: BTreeMap<Lsn, Vec<Waiter>>,
    /// Set when the disk failed: the replica stops acknowledging.
    failed: Option<String>,
    /// A snapshot install is writing its files (see `install_snapshot`):
    /// a newer view waits until it has swapped them in.
    installing: bool,
}

/// A replica of a group's state machine `S` (see the module docs). `S`
/// defaults to the store's own state, so that `Replica<T>` names the
/// store's replica outside this module; nothing here depends on it.
pub struct Replica<T: Transport, S: StateMachine = crate::state::State> {
    /// Itself, to hand to the tasks it spawns.
    weak: Weak<Replica<T, S>>,
    cfg: ReplicaConfig,
    /// My disk's identity (see `Recovered::disk`).
    disk_id: u64,
    transport: Arc<T>,
    clock: Clock,
    inner: Mutex<Inner<S>>,
    storage: Mutex<Box<dyn Storage>>,
    /// Held while a newer view is checked, saved and adopted (see
    /// `observe_view`); nothing else takes it.
    accepting: Mutex<()>,
    /// Serialises everything that writes the log file.
    disk: tokio::sync::Mutex<()>,
    /// Serialises writes of the snapshot file (taken before `disk`), so a
    /// compaction's snapshot, written without `disk`, never overwrites a
    /// newer installed one.
    snapshots: tokio::sync::Mutex<()>,
    /// Bumped on every change that someone may be waiting for.
    changed: watch::Sender<u64>,
    /// Wakes the compactor when a snapshot is due.
    compact: tokio::sync::Notify,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// What the group does on top of replication (see [`Service`]).
    service: Arc<dyn Service<T, S>>,
}

impl<T: Transport, S: StateMachine> Replica<T, S> {
    /// Loads the replica's disk (or starts from `initial` on an empty one) and
    /// starts its background tasks, and its `service`'s, on the current
    /// tokio runtime. `files` opens the state's side files, if it keeps
    /// any (see [`StateMachine::attach`]). `Replica::start` (in
    /// `crate::services`) starts one with its group's service.
    pub fn start_with(
        cfg: ReplicaConfig,
        transport: Arc<T>,
        mut storage: Box<dyn Storage>,
        initial: S,
        mut files: S::Files,
        clock: Clock,
        service: Arc<dyn Service<T, S>>,
    ) -> Result<Arc<Self>> {
        if initial.group() != cfg.group {
            return Err(Error::InvalidInput(format!(
                "initial state is for the {} group, replica {} is in {}",
                initial.group(),
                cfg.me,
                cfg.group
            )));
        }
        let mut recovered = storage.load()?;
        let (state, base, digest) = loop {
            // The snapshot file holds the store's state (see
            // `state/machine.rs`).
            let (mut state, base, digest) = match recovered.snapshot.clone() {
                Some(s) => match s.try_map(S::try_from) {
                    Ok(s) => (s.state, s.pos, s.digest),
                    Err(_) => {
                        return Err(Error::Storage(format!(
                            "replica {}: the stored snapshot is not of my kind of state",
                            cfg.me
                        )))
                    }
                },
                None => {
                    let digest = initial.digest();
                    (initial.clone(), crate::types::LogPos::ZERO, digest)
                }
            };
            // Cut the side files back to what the snapshot covers: the log
            // replays the rest. Side files that do not match the snapshot
            // are damage like any other: set aside, start empty.
            if let Err(problem) = state.attach(&mut files)? {
                if recovered.new_disk {
                    return Err(Error::Storage(problem));
                }
                recovered = storage.set_aside(&problem)?;
                continue;
            }
            break (state, base, digest);
        };
        if let Some(damage) = &recovered.damage {
            tracing::error!(
                node = %cfg.me,
                damage = %damage,
                "disk damaged: its files were set aside; recovering from an intact member"
            );
        }
        // A restart with data: the log's tail may be gone (a torn write, or
        // a lost or damaged tail that cannot be told from one).
        let uncertain = !recovered.new_disk && !cfg.unsafe_trust_disk;
        let (disk, rebuild) = (recovered.disk, recovered.new_disk);
        let epoch_known = recovered.view.is_some();
        let log = MemLog::new(base, recovered.entries);
        let synced = log.last().lsn;
        tracing::info!(
            node = %cfg.me,
            view = ?recovered.view.as_ref().map(|v| v.epoch),
            snapshot = %base,
            end = %log.last(),
            disk,
            new_disk = rebuild,
            uncertain,
            "replica loaded"
        );
        let inner = Inner {
            view: recovered.view,
            others: BTreeMap::new(),
            log,
            state,
            digest,
            commit: base.lsn,
            synced,
            serving: false,
            started: 0,
            matched: BTreeMap::new(),
            matched_disk: BTreeMap::new(),
            uncertain,
            adopted: 0,
            recovering: false,
            rebuild,
            epoch_known,
            waiters: BTreeMap::new(),
            failed: None,
            installing: false,
        };
        let (changed, _) = watch::channel(0);
        let replica = Arc::new_cyclic(|weak| Replica {
            weak: weak.clone(),
            cfg,
            disk_id: disk,
            transport,
            clock,
            inner: Mutex::new(inner),
            storage: Mutex::new(storage),
            accepting: Mutex::new(()),
            disk: tokio::sync::Mutex::new(()),
            snapshots: tokio::sync::Mutex::new(()),
            changed,
            compact: tokio::sync::Notify::new(),
            tasks: Mutex::new(Vec::new()),
            service: service.clone(),
        });
        let mut tasks = vec![
            tokio::spawn(replica.clone().syncer()),
            tokio::spawn(replica.clone().puller()),
            tokio::spawn(replica.clone().compactor()),
        ];
        tasks.extend(service.spawn(replica.clone()));
        *replica.tasks.lock() = tasks;
        Ok(replica)
    }

    /// Stops the background tasks (for in-process clusters).
    pub fn shutdown(&self) {
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
        // Nothing will commit any more: whoever waits for a commit gets
        // "outcome unknown" now rather than never (a task waiting forever
        // would keep the replica, and its files, alive).
        let mut inner = self.inner.lock();
        inner.serving = false;
        fail_waiters(&mut inner, 0);
    }

    pub fn id(&self) -> &NodeId {
        &self.cfg.me
    }

    /// This replica's status, as a heartbeat answers it.
    pub fn status(&self) -> ReplicaStatus {
        let inner = self.inner.lock();
        ReplicaStatus {
            node: self.cfg.me.clone(),
            group: self.cfg.group,
            epoch: inner.view.as_ref().map_or(0, |v| v.epoch),
            serving: inner.serving,
            ready: inner.failed.is_none(),
            end: inner.log.pos_at(inner.synced).unwrap_or(inner.log.base()),
            commit: inner.commit,
            digest: inner.digest,
            disk: self.disk_id,
            uncertain: inner.uncertain,
            recovering: inner.recovering,
            lease_ms: 0,
            lease_new: false,
        }
    }

    /// Takes in what a heartbeat carries (the views, and the disks the
    /// view record holds) and answers with this replica's status.
    pub fn heartbeat(
        &self,
        views: Vec<View>,
        disks: Option<BTreeMap<NodeId, u64>>,
    ) -> Result<ReplicaStatus> {
        if let Some(disks) = disks {
            self.observe_disks(&disks);
        }
        self.observe_views(views)?;
        Ok(self.status())
    }

    /// A copy of the committed state (for checks and tests).
    pub fn state(&self) -> S {
        self.inner.lock().state.clone()
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn epoch(inner: &Inner<S>) -> Epoch {
        inner.view.as_ref().map_or(0, |v| v.epoch)
    }

    fn is_primary(&self, inner: &Inner<S>) -> bool {
        inner
            .view
            .as_ref()
            .is_some_and(|v| v.primary == self.cfg.me)
    }

    fn not_primary(&self, inner: &Inner<S>) -> Error {
        let hint = inner
            .view
            .as_ref()
            .map(|v| v.primary.clone())
            .filter(|p| p != &self.cfg.me);
        Error::NotPrimary { hint }
    }

    /// Accepts the views a heartbeat or `StartView` carries.
    fn observe_views(&self, views: Vec<View>) -> Result<()> {
        for view in views {
            if view.group == self.cfg.group {
                self.observe_view(view)?;
            } else {
                let mut inner = self.inner.lock();
                let newer = inner
                    .others
                    .get(&view.group)
                    .is_none_or(|v| v.epoch < view.epoch);
                if newer {
                    inner.others.insert(view.group, view);
                    drop(inner);
                    self.bump();
                }
            }
        }
        Ok(())
    }

    /// Learns from the view service which disk its record holds for me: if
    /// it holds one and mine is not it, I am recovering (see `Inner`).
    fn observe_disks(&self, disks: &BTreeMap<NodeId, u64>) {
        let mut inner = self.inner.lock();
        inner.epoch_known = true;
        let recorded = disks.get(&self.cfg.me).copied();
        let recovering = recorded.is_some_and(|d| d != self.disk_id);
        if recovering != inner.recovering {
            if recovering {
                tracing::warn!(
                    node = %self.cfg.me,
                    disk = self.disk_id,
                    recorded = ?recorded,
                    "my disk is not the one the view record holds for me: recovering (never primary, no source of truth) until rebuilt"
                );
                inner.serving = false;
                fail_waiters(&mut inner, 0);
            } else {
                tracing::info!(node = %self.cfg.me, disk = self.disk_id, "the view record holds my disk: recovered");
            }
            inner.recovering = recovering;
            drop(inner);
            self.bump();
        }
    }

    /// Accepts a newer view of my group: stores it, then takes my role in it.
    fn observe_view(&self, view: View) -> Result<()> {
        // One view at a time from the check below to its adoption, so the
        // view saved is still the newest when adopted (see "Views" in the
        // module docs for why, and what the wait costs a heartbeat); the
        // replica's lock, which requests wait on, is not held across the
        // save's fsync.
        let _accepting = self.accepting.lock();
        let mut inner = self.inner.lock();
        let current = Self::epoch(&inner);
        // A recovering replica holds no committed entries: it keeps the
        // epoch (to refuse older ones) but never starts a view.
        let lead = view.primary == self.cfg.me && !inner.recovering;
        if view.epoch == current && lead && inner.started < current {
            // I restarted as the primary of my current view, maybe before
            // it was confirmed: the view service waits for me to confirm it,
            // so start it again (it is safe to redo: see `start_view`).
            inner.started = current;
            drop(inner);
            if let Some(me) = self.weak.upgrade() {
                tokio::spawn(async move { me.start_view(view).await });
            }
            return Ok(());
        }
        if view.epoch <= current {
            return Ok(());
        }
        if inner.installing {
            // A snapshot install is writing its files: it must swap them in
            // before a view change (see `install_snapshot`). Deferred, as if
            // this message came late: the view service sends the view again
            // with its next heartbeat, a new primary retries `StartView`
            // (which the epoch check in `dispatch` refuses meanwhile).
            return Ok(());
        }
        // Durable before acting on it: after a restart the replica must still
        // refuse the old epoch.
        drop(inner);
        let saved = self.storage.lock().save_view(&view);
        let mut inner = self.inner.lock();
        if let Err(e) = saved {
            inner.failed = Some(e.to_string());
            return Err(e);
        }
        // `recovering` may have changed while the view was saved.
        let lead = view.primary == self.cfg.me && !inner.recovering;
        tracing::info!(node = %self.cfg.me, epoch = view.epoch, primary = %view.primary, "accepted view");
        if view.primary == self.cfg.me && !lead {
            tracing::warn!(node = %self.cfg.me, epoch = view.epoch, "named primary while recovering: not starting the view");
        }
        let primary = lead;
        inner.epoch_known = true;
        inner.view = Some(view.clone());
        inner.serving = false;
        if primary {
            inner.started = view.epoch;
        }
        inner.matched.clear();
        inner.matched_disk.clear();
        if !primary {
            // Entries still waiting may be committed by the next primary or
            // lost; the caller cannot know which.
            fail_waiters(&mut inner, 0);
            self.service.stepped_down();
        }
        drop(inner);
        self.bump();
        if let (true, Some(me)) = (primary, self.weak.upgrade()) {
            tokio::spawn(async move { me.start_view(view).await });
        }
        Ok(())
    }

    /// Answers a read from the committed state (`Request::Read`).
    pub fn read(&self, query: Query) -> Result<Response> {
        let inner = self.readable()?;
        if query == Query::Dump {
            // A dump carries the state's side files whole: read without
            // holding the replica (the clone reads them as of its mark).
            let (state, lsn) = (inner.state.clone(), inner.commit);
            drop(inner);
            let state = state.shipping(0).map_err(Error::Storage)?;
            return Ok(Response::Read {
                result: QueryResult::State(Box::new(state.into())),
                lsn,
            });
        }
        let (result, lsn) = Self::answered(&inner, self.service.answer(&inner.state, query))?;
        Ok(Response::Read { result, lsn })
    }

    /// Answers a batch of reads from one state, under one lock (see
    /// `batcher`): the answers any of them would get alone at this moment.
    pub fn read_batch(&self, queries: Vec<Query>) -> Result<Response> {
        if let Some(q) = queries.iter().find(|q| !q.batchable()) {
            return Err(Error::InvalidInput(format!("{q:?} cannot be batched")));
        }
        let inner = self.readable()?;
        let results = queries
            .into_iter()
            .map(|query| self.service.answer(&inner.state, query))
            .collect();
        let (results, lsn) = Self::answered(&inner, results)?;
        Ok(Response::ReadBatch { results, lsn })
    }

    /// The replica, locked for a read, unless its disk failed.
    fn readable(&self) -> Result<MutexGuard<'_, Inner<S>>> {
        let inner = self.inner.lock();
        if let Some(f) = &inner.failed {
            return Err(Error::Unavailable(format!("replica disk failed: {f}")));
        }
        // A new or damaged disk's state is the initial one, not the store's.
        if inner.recovering || (inner.rebuild && !inner.serving) {
            return Err(Error::Unavailable(
                "replica is rebuilding its disk from an intact member".into(),
            ));
        }
        Ok(inner)
    }

    /// What was read from `inner`, with the commit lsn it was read at;
    /// refused if the state's side files failed on the way, as the answer
    /// may then be wrong.
    fn answered<R>(inner: &Inner<S>, read: Result<R>) -> Result<(R, Lsn)> {
        let read = read?;
        match inner.state.failure() {
            Some(f) => Err(Error::Unavailable(format!("replica disk failed: {f}"))),
            None => Ok((read, inner.commit)),
        }
    }

    /// Waits until this replica's commit point reaches `min` (a read's
    /// freshness bound, see `Request::ReadAt`), at most `read_wait`; then
    /// declines with a retryable error naming the lag.
    pub async fn caught_up(&self, min: Lsn) -> Result<()> {
        if self.cfg.unsafe_read_any {
            return Ok(());
        }
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + self.cfg.read_wait;
        loop {
            let commit = self.inner.lock().commit;
            if commit >= min {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return Err(Error::Unavailable(format!(
                    "{} has committed up to {commit}, the read needs {min}; ask another member",
                    self.cfg.me
                )));
            }
        }
    }

    async fn dispatch(&self, request: Request) -> Result<Response> {
        let request = match self.service.handle(self, request).await {
            Ok(served) => return served,
            Err(request) => request,
        };
        match request {
            Request::Heartbeat { views, disks, .. } => {
                Ok(Response::Status(self.heartbeat(views, disks)?))
            }
            Request::StartView { view } => {
                if view.group != self.cfg.group {
                    return Err(Error::InvalidInput("view of another group".into()));
                }
                if !self.inner.lock().epoch_known {
                    return Err(Error::Unavailable(
                        "new disk: waiting to hear the current views from the view service".into(),
                    ));
                }
                let epoch = view.epoch;
                self.observe_view(view)?;
                let inner = self.inner.lock();
                let current = Self::epoch(&inner);
                if current != epoch {
                    return Err(Error::StaleEpoch {
                        got: epoch,
                        current,
                    });
                }
                Ok(Response::LogEnd {
                    end: inner.log.pos_at(inner.synced).unwrap_or(inner.log.base()),
                })
            }
            Request::Fetch {
                epoch,
                from,
                after,
                commit,
                limit,
                wait_ms,
                mark,
                disk,
                rebuild,
            } => {
                let wait = Duration::from_millis(wait_ms).min(self.cfg.poll_wait);
                let asked = Asked {
                    after,
                    known_commit: commit,
                    limit,
                    mark,
                    disk,
                    rebuild,
                };
                self.serve_fetch(epoch, from, asked, wait).await
            }
            Request::Read(query) => self.read(query),
            Request::ReadAt { query, min } => {
                self.caught_up(min).await?;
                self.read(query)
            }
            Request::ReadBatch { queries, min } => {
                self.caught_up(min).await?;
                self.read_batch(queries)
            }
            Request::ViewReady { .. } | Request::Invalidate { .. } => Err(Error::InvalidInput(
                "view-service message sent to a replica".into(),
            )),
            // The group's service serves the rest, or refuses them.
            _ => Err(Error::InvalidInput(format!(
                "not served by the {} group",
                self.cfg.group
            ))),
        }
    }
}

/// Fails every waiter for an lsn above `above`: their entries are gone from
/// this log, or may be committed by someone else.
fn fail_waiters<S>(inner: &mut Inner<S>, above: Lsn) {
    let gone = inner.waiters.split_off(&(above + 1));
    for (_, waiters) in gone {
        for w in waiters {
            let _ = w.send(Err(Error::Unavailable(
                "primary changed; outcome unknown, retry with the same request id".into(),
            )));
        }
    }
}

#[async_trait]
impl<T: Transport, S: StateMachine> Handler for Replica<T, S> {
    async fn handle(&self, request: Request) -> Response {
        if let Request::Batch { requests } = request {
            return crate::transport::coalesce::answer(self, requests).await;
        }
        match self.dispatch(request).await {
            Ok(r) => r,
            Err(e) => Response::Error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::memfs::MemFs;
    use crate::state::catalog::Catalog;
    use crate::state::State;
    use crate::storage::logstore::LogStore;
    use crate::transport::inproc::InProcTransport;

    /// A newer view that arrives while a snapshot install writes its files
    /// (`installing`, see `install_snapshot`) is deferred, as if its
    /// heartbeat came late, and accepted once the install is done.
    #[tokio::test]
    async fn a_newer_view_waits_for_an_install_in_progress() {
        let me = NodeId::from("catalog-1");
        let storage = LogStore::open(MemFs::new(), "catalog-1", 7).expect("memory store opens");
        let net = InProcTransport::new();
        let cfg = ReplicaConfig::new(me.clone(), Group::Catalog, NodeId::from("frontend"));
        let replica = Replica::start(
            cfg,
            &Default::default(),
            net.endpoint(me.clone()),
            Box::new(storage),
            State::Catalog(Catalog::builtin()),
            None,
            Arc::new(|| 0),
        )
        .expect("replica starts");
        // I am a backup in the new view: accepting it starts no view.
        let view = View {
            group: Group::Catalog,
            epoch: 1,
            primary: NodeId::from("catalog-2"),
            backups: vec![me],
        };
        let heartbeat = Request::Heartbeat {
            views: vec![view],
            disks: None,
            from: None,
        };
        replica.inner.lock().installing = true;
        replica.handle(heartbeat.clone()).await;
        assert_eq!(replica.status().epoch, 0, "accepted a view mid-install");
        replica.inner.lock().installing = false;
        replica.handle(heartbeat).await;
        assert_eq!(replica.status().epoch, 1);
        replica.shutdown();
    }
}
