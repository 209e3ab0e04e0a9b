//! The catalog group's service: catalog commands, catalog reads, and
//! keeping the front ends' caches honest.
//!
//! The catalog primary records, for every committed change, the cache keys
//! it makes stale (the item's lookup and its topic's search) with the
//! change's lsn, as it applies the change (under the replica's lock, in log
//! order). Its pusher delivers them to the front end as `Invalidate
//! { keys, lsn }`, in order, merging what piled up meanwhile, and retrying
//! until delivered. A replica that stops serving drops what it had not
//! delivered: the next primary's pushes (and the front end's own rules, see
//! `frontend/reads/cache.rs`) take over.
//!
//! With cache leases (`LeaseConfig`, several front ends) the
//! primary grants leases in its heartbeat answers, pushes to every leased
//! front end with one pusher each, and holds a write's answer and a read's
//! answer until their lsn is released (see `leases.rs` for the rules and
//! why they keep reads linearizable across front ends). It answers a read
//! only while every backup of its view still fetches from it in its epoch
//! (`Leases::may_grant`, as for granting), so a deposed primary that a
//! front end with stale views still reaches answers none of its misses
//! (`leases.rs`, "A deposed primary answers no read"). Without, nothing
//! waits: the one front end raises its own marks before answering a write.

use crate::error::{Error, Result};
use crate::replication::{Replica, ReplicaConfig, Service};
use crate::services::leases::{LeaseConfig, Leases, Periods};
use crate::state::command::{CatalogCommand, Command, Outcome};
use crate::state::State;
use crate::transport::message::{Query, QueryResult, Request, Response};
use crate::transport::Transport;
use crate::types::{CacheKey, Group, Lsn, NodeId};
use crate::view::View;
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The catalog group's service (see the module docs).
pub struct CatalogService {
    /// Catalog primary without leases: invalidations not yet delivered to
    /// the front end. Taken only with the replica held (see
    /// [`Replica::held`]), after it.
    outbox: Mutex<Vec<(Vec<CacheKey>, Lsn)>>,
    /// Catalog primary with leases: the leases and what each front end
    /// lacks. Taken after the replica when both are (never before it).
    leases: Option<Mutex<Leases>>,
    /// Bumped when a lease or a push changes what is released.
    wake: watch::Sender<u64>,
}

impl CatalogService {
    /// The service of a catalog replica configured by `cfg`, with cache
    /// leases granted to `cfg.frontends()` when `leases` is set.
    pub fn new(cfg: &ReplicaConfig, leases: Option<LeaseConfig>) -> Self {
        let leases = leases.map(|l| {
            let periods = Periods {
                lease: l.lease,
                margin: l.margin,
                hop: cfg.hop_timeout,
            };
            Mutex::new(
                Leases::new(cfg.frontends(), periods, l.unsafe_no_wait)
                    .with_unsafe_untenured_reads(l.unsafe_untenured_reads),
            )
        });
        CatalogService {
            outbox: Mutex::new(Vec::new()),
            leases,
            wake: watch::channel(0).0,
        }
    }

    fn wake(&self) {
        self.wake.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// The cache keys a committed catalog command makes stale: the item's lookup
/// and its topic's search.
fn invalidation_keys(state: &State, cmd: &CatalogCommand) -> Vec<CacheKey> {
    let item = match cmd {
        CatalogCommand::Reserve { item, .. }
        | CatalogCommand::Restock { item, .. }
        | CatalogCommand::SetPrice { item, .. } => *item,
        CatalogCommand::AddBook { book } => book.id,
        CatalogCommand::Keyed { change, .. } => return invalidation_keys(state, change),
        // Changes no book.
        CatalogCommand::Forget { .. } | CatalogCommand::Fence { .. } => return Vec::new(),
    };
    let State::Catalog(catalog) = state else {
        return Vec::new();
    };
    match catalog.lookup(item) {
        Some(book) => vec![CacheKey::Lookup(item), CacheKey::Search(book.topic)],
        None => vec![CacheKey::Lookup(item)],
    }
}

/// Most books a catalog may hold for a leased primary to refresh `search`
/// values: a search scans every book, and the refresh is taken on the
/// apply path, under the replica's lock, for every commit. Above it only
/// `lookup` values are refreshed (a search misses once per front end
/// after each change of its topic, as without refreshes).
const REFRESH_SEARCH_MAX_BOOKS: usize = 256;

/// The values of `keys` in `state`, as the reads of them would answer: what
/// a leased primary's refreshes carry (see `leases.rs`, "Refreshes").
fn refresh_values(state: &State, keys: &[CacheKey]) -> Vec<(CacheKey, QueryResult)> {
    let State::Catalog(catalog) = state else {
        return Vec::new();
    };
    keys.iter()
        .filter_map(|key| {
            let value = match key {
                CacheKey::Lookup(id) => QueryResult::Book(catalog.lookup(*id)),
                CacheKey::Search(topic) if catalog.len() <= REFRESH_SEARCH_MAX_BOOKS => {
                    QueryResult::Books(catalog.search(topic))
                }
                CacheKey::Search(_) => return None,
            };
            Some((key.clone(), value))
        })
        .collect()
}

impl CatalogService {
    /// Catalog primary: delivers invalidations to the front end, in order.
    async fn pusher<T: Transport>(self: Arc<Self>, r: Arc<Replica<T>>) {
        let mut rx = r.subscribe();
        loop {
            let batch = {
                let held = r.held();
                let mut outbox = self.outbox.lock();
                if held.serving() {
                    std::mem::take(&mut *outbox)
                } else {
                    outbox.clear();
                    Vec::new()
                }
            };
            if batch.is_empty() {
                if rx.changed().await.is_err() {
                    return;
                }
                continue;
            }
            let lsn = batch.iter().map(|(_, l)| *l).max().unwrap_or(0);
            let mut keys: Vec<_> = batch.iter().flat_map(|(k, _)| k.iter().cloned()).collect();
            keys.sort();
            keys.dedup();
            let request = Request::Invalidate {
                keys,
                lsn,
                refresh: Vec::new(),
            };
            let cfg = r.config();
            let delivered = r
                .transport()
                .call(&cfg.frontend, request, cfg.hop_timeout)
                .await;
            if delivered.is_err() {
                // Put them back in front, to be merged with newer ones.
                {
                    let held = r.held();
                    if held.serving() {
                        let mut outbox = self.outbox.lock();
                        let newer = std::mem::replace(&mut *outbox, batch);
                        outbox.extend(newer);
                    }
                }
                tokio::time::sleep(cfg.retry_delay).await;
            }
        }
    }
}

/// Waits for a change of either channel; false when one is closed (the
/// replica or the service is going away).
async fn changed(a: &mut watch::Receiver<u64>, b: &mut watch::Receiver<u64>) -> bool {
    tokio::select! {
        r = a.changed() => r.is_ok(),
        r = b.changed() => r.is_ok(),
    }
}

impl CatalogService {
    /// Catalog primary with leases: delivers invalidations to front end
    /// `fe`, in order, while it holds a lease (and probes it while it is
    /// unreachable).
    async fn lease_pusher<T: Transport>(self: Arc<Self>, r: Arc<Replica<T>>, fe: NodeId) {
        let Some(leases) = &self.leases else {
            return;
        };
        let mut wake = self.wake.subscribe();
        let mut changes = r.subscribe();
        loop {
            wake.borrow_and_update();
            changes.borrow_and_update();
            let push = {
                let held = r.held();
                let now = Instant::now();
                let mut l = leases.lock();
                if held.serving() {
                    l.serving(held.epoch(), now);
                    let push = l.to_push(&fe, now);
                    if push.is_some() {
                        l.pushing(&fe, now);
                    }
                    push.map(|p| (p, held.epoch()))
                } else {
                    None
                }
            };
            let Some((push, epoch)) = push else {
                if !changed(&mut wake, &mut changes).await {
                    return;
                }
                continue;
            };
            let cfg = r.config();
            let answer = r.transport().call(&fe, push.request, cfg.hop_timeout).await;
            let ok = matches!(answer, Ok(Response::Ok));
            {
                let held = r.held();
                if held.serving() && held.epoch() == epoch {
                    let mut l = leases.lock();
                    if ok {
                        l.delivered(&fe, push.lsn, push.refreshed, Instant::now());
                    } else {
                        l.failed(&fe);
                    }
                }
            }
            self.wake();
            if !ok {
                tokio::time::sleep(cfg.retry_delay).await;
            }
        }
    }

    /// With leases: waits until `lsn` is released (every leased front end
    /// has its invalidations up to it, or has lost its lease, and a new
    /// primary's takeover is over). Fails if the replica stops serving
    /// meanwhile. Without leases: at once.
    async fn released<T: Transport>(&self, r: &Replica<T>, lsn: Lsn) -> Result<()> {
        let Some(leases) = &self.leases else {
            return Ok(());
        };
        let mut wake = self.wake.subscribe();
        let mut changes = r.subscribe();
        loop {
            wake.borrow_and_update();
            changes.borrow_and_update();
            let next = {
                let held = r.held();
                if !held.serving() {
                    return Err(Error::Unavailable(
                        "the catalog primary lost its role before the answer was released; retry"
                            .into(),
                    ));
                }
                let now = Instant::now();
                let mut l = leases.lock();
                l.serving(held.epoch(), now);
                match l.released(lsn, now) {
                    Ok(()) => return Ok(()),
                    Err(next) => next,
                }
            };
            tokio::select! {
                r = wake.changed() => r.map_err(|_| Error::Unavailable("shutting down".into()))?,
                r = changes.changed() => r.map_err(|_| Error::Unavailable("shutting down".into()))?,
                _ = tokio::time::sleep_until(next) => {}
            }
        }
    }

    /// A heartbeat from front end `fe`, with leases: answered with this
    /// replica's status and, from a serving primary that may grant (see
    /// [`Leases::may_grant`]), a lease.
    fn heartbeat<T: Transport>(
        &self,
        r: &Replica<T>,
        views: Vec<View>,
        disks: Option<BTreeMap<NodeId, u64>>,
        fe: &NodeId,
    ) -> Result<Response> {
        let status = r.heartbeat(views, disks)?;
        let Some(leases) = &self.leases else {
            return Ok(Response::Status(status));
        };
        let granted = {
            let held = r.held();
            let now = Instant::now();
            let mut l = leases.lock();
            let epoch = held.epoch();
            let backups = held.view().map(|v| v.backups.as_slice()).unwrap_or(&[]);
            if held.serving() && l.may_grant(epoch, backups, now) {
                l.serving(epoch, now);
                let ms = l.granted_ms();
                l.grant(fe, now).map(|new| (new, ms, epoch))
            } else {
                None
            }
        };
        let Some((new, ms, epoch)) = granted else {
            return Ok(Response::Status(status));
        };
        // Read after the grant: every entry committed after this status was
        // queued for `fe` (see `Leases::fresh`).
        let mut status = r.status();
        if status.serving && status.epoch == epoch {
            if new {
                if let Some(leases) = &self.leases {
                    leases.lock().fresh(fe, status.commit);
                }
            }
            status.lease_ms = ms;
            status.lease_new = new;
        }
        self.wake();
        Ok(Response::Status(status))
    }

    /// A front end's read, with leases: answered by the serving primary
    /// only, once its lsn is released, and only if, once it is, this
    /// replica is still the serving primary of the epoch it read in and
    /// every backup still follows it ([`Leases::may_grant`]: see
    /// `leases.rs`, "A deposed primary answers no read"); else declined,
    /// and the front end asks again.
    async fn leased_read<T: Transport>(
        &self,
        r: &Replica<T>,
        request: Request,
    ) -> Result<Response> {
        let not_primary = || {
            Error::Unavailable(
                "with cache leases, the catalog primary answers reads; ask it".into(),
            )
        };
        let epoch = {
            let held = r.held();
            if !held.serving() {
                return Err(not_primary());
            }
            held.epoch()
        };
        let answer = match request {
            Request::ReadAt { query, min } => {
                r.caught_up(min).await?;
                r.read(query)?
            }
            Request::ReadBatch { queries, min } => {
                r.caught_up(min).await?;
                r.read_batch(queries)?
            }
            other => {
                return Err(Error::InvalidInput(format!("{other:?} is not a read")));
            }
        };
        let lsn = match &answer {
            Response::Read { lsn, .. } | Response::ReadBatch { lsn, .. } => *lsn,
            _ => 0,
        };
        self.released(r, lsn).await?;
        let Some(leases) = &self.leases else {
            return Ok(answer);
        };
        let held = r.held();
        if !held.serving() || held.epoch() != epoch {
            return Err(not_primary());
        }
        let backups = held.view().map(|v| v.backups.as_slice()).unwrap_or(&[]);
        let l = leases.lock();
        // Deliberately broken: the old check, `serving` and `released` only.
        if !l.unsafe_untenured_reads() && !l.may_grant(epoch, backups, Instant::now()) {
            return Err(Error::Unavailable(format!(
                "catalog primary of epoch {epoch}: a backup has not fetched within the lease \
                 period, so a newer view may exist; retry"
            )));
        }
        Ok(answer)
    }
}

#[async_trait]
impl<T: Transport> Service<T> for CatalogService {
    async fn handle(
        &self,
        r: &Replica<T>,
        request: Request,
    ) -> std::result::Result<Result<Response>, Request> {
        let leased = self.leases.is_some();
        Ok(match request {
            Request::Heartbeat {
                views,
                disks,
                from: Some(fe),
            } if leased => self.heartbeat(r, views, disks, &fe),
            Request::Fetch {
                epoch, ref from, ..
            } if leased => {
                // A backup still in my epoch: see `Leases::may_grant`.
                if let Some(leases) = &self.leases {
                    let held = r.held();
                    if held.epoch() == epoch {
                        leases.lock().heard(from, epoch, Instant::now());
                    }
                }
                return Err(request);
            }
            Request::ReadAt { .. } | Request::ReadBatch { .. } if leased => {
                self.leased_read(r, request).await
            }
            Request::Catalog(command) => match r.submit(Command::Catalog(command)).await {
                Ok((Outcome::Catalog(outcome), lsn)) => match self.released(r, lsn).await {
                    Ok(()) => Ok(Response::Catalog { outcome, lsn }),
                    Err(e) => Err(e),
                },
                Ok((other, _)) => Err(Error::Transport(format!("unexpected outcome {other:?}"))),
                Err(e) => Err(e),
            },
            Request::Buy { .. } => Err(Error::InvalidInput("buy sent to a catalog replica".into())),
            other => return Err(other),
        })
    }

    fn answer(&self, state: &State, query: Query) -> Result<QueryResult> {
        Ok(match (state, query) {
            (State::Catalog(c), Query::Search { topic }) => QueryResult::Books(c.search(&topic)),
            (State::Catalog(c), Query::Lookup { id }) => QueryResult::Book(c.lookup(id)),
            (State::Catalog(c), Query::AllBooks) => QueryResult::Books(c.all()),
            (_, q) => {
                return Err(Error::InvalidInput(format!(
                    "{q:?} is not served by the {} group",
                    Group::Catalog
                )))
            }
        })
    }

    fn committed(&self, state: &State, command: &Command, lsn: Lsn) {
        if let Command::Catalog(cmd) = command {
            let keys = invalidation_keys(state, cmd);
            if keys.is_empty() {
                return;
            }
            match &self.leases {
                Some(leases) => {
                    let now = Instant::now();
                    let mut l = leases.lock();
                    let values = if l.any_leased(now) {
                        refresh_values(state, &keys)
                    } else {
                        Vec::new()
                    };
                    l.committed(keys, values, lsn, now);
                    drop(l);
                    self.wake();
                }
                None => self.outbox.lock().push((keys, lsn)),
            }
        }
    }

    fn stepped_down(&self) {
        self.outbox.lock().clear();
        if let Some(leases) = &self.leases {
            leases.lock().stepped_down();
        }
    }

    fn spawn(self: Arc<Self>, replica: Arc<Replica<T>>) -> Vec<JoinHandle<()>> {
        match &self.leases {
            Some(leases) => {
                let frontends: Vec<NodeId> = leases.lock().frontends().cloned().collect();
                frontends
                    .into_iter()
                    .map(|fe| tokio::spawn(self.clone().lease_pusher(replica.clone(), fe)))
                    .collect()
            }
            None => vec![tokio::spawn(self.pusher(replica))],
        }
    }
}
