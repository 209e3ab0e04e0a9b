//! The view service's driving: the heartbeat loop that probes every
//! replica, decides the next view of each group (by the rules of
//! `viewservice.rs`), stores it durably and announces it, and records a
//! new primary's confirmation (`ViewReady`).
//!
//! The records live behind the [`Coordinator`] (see `coordination/`):
//! every round this front end campaigns for the leadership and registers as
//! live; only while it leads does it decide new views, and it stores them
//! by compare-and-swap on the revision it decided from and on its
//! leadership. A front end that does not lead reloads the records every
//! round and installs a newer revision. A failed store is never announced;
//! a conflict reloads. While the coordinator cannot be reached, the front
//! end keeps serving under the views it holds.

use super::*;
use crate::frontend::coordination::Guard;
use crate::view::View;

impl<T: Transport> FrontEnd<T> {
    pub(super) async fn run(self: Arc<Self>) {
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
        let reloaded = self.coordinate().await;
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
                from: Some(self.cfg.me.clone()),
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
        let (liveness_changed, learnt, plan) = {
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
                        if self.cfg.leased && s.lease_ms > 0 {
                            Self::leased(&mut inner, &s, probed_at);
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
            // Only the leader decides new views (see the module docs).
            let mut decided: Vec<View> = Vec::new();
            let leadership = inner.leadership;
            for group in Group::ALL {
                if leadership.is_none() {
                    break;
                }
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
                if let Some(view) = next_view(record.as_ref(), group, members, &status) {
                    decided.push(view);
                }
            }
            let plan = match (leadership, decided.is_empty()) {
                (Some(leadership), false) => {
                    let mut records = inner.records.clone();
                    for view in &decided {
                        let (confirmed, disks) = records
                            .get(&view.group)
                            .map(|r| (r.confirmed.clone(), r.disks.clone()))
                            .unwrap_or_default();
                        records.insert(
                            view.group,
                            GroupRecord {
                                current: view.clone(),
                                confirmed,
                                disks,
                            },
                        );
                    }
                    let records: Vec<GroupRecord> = records.into_values().collect();
                    Some((leadership, inner.revision, records, decided))
                }
                _ => None,
            };
            (liveness_changed, learnt, plan)
        };
        let mut announced = false;
        if let Some((leadership, expected, records, decided)) = plan {
            // Durable (in the coordinator) before anyone hears of it.
            match self.store_views(leadership, expected, &records).await {
                Ok(revision) => {
                    let mut inner = self.inner.lock();
                    self.install(&mut inner, Snapshot { records, revision }, None);
                    for view in &decided {
                        tracing::info!(
                            target: "heartbeat",
                            group = %view.group,
                            epoch = view.epoch,
                            primary = %view.primary,
                            backups = %names(&view.backups),
                            "new view"
                        );
                    }
                    announced = true;
                }
                Err(e) => {
                    // Not stored, so not announced; decide again from the
                    // records as they are now.
                    tracing::warn!(target: "heartbeat", error = %e, "cannot store the new views");
                    self.reload().await;
                }
            }
        }
        if announced || liveness_changed || learnt || reloaded {
            self.bump();
        }
        announced
    }

    /// A heartbeat sent at `sent` was answered with a lease (see "Cache
    /// leases" in the module docs): kept if it comes from the current
    /// catalog view's primary; a new one drops the cache first.
    fn leased(inner: &mut Inner, s: &ReplicaStatus, sent: Instant) {
        let current = inner.records.get(&Group::Catalog).is_some_and(|r| {
            s.group == Group::Catalog
                && s.serving
                && r.current.primary == s.node
                && r.current.epoch == s.epoch
        });
        if !current {
            return;
        }
        let same = |l: &Lease| l.primary == s.node && l.epoch == s.epoch;
        if s.lease_new || !inner.lease.as_ref().is_some_and(same) {
            // The primary held no lease of ours just before, or gave one
            // this front end did not take (its views were behind): it may
            // have skipped invalidations up to its commit point.
            inner.cache.invalidate_all(s.commit);
            inner.seen.raise(Group::Catalog, s.commit);
        }
        let until = sent + Duration::from_millis(s.lease_ms);
        let renewed = inner
            .lease
            .as_ref()
            .is_some_and(|l| same(l) && l.until >= until);
        if !renewed {
            inner.lease = Some(Lease {
                primary: s.node.clone(),
                epoch: s.epoch,
                until,
            });
        }
    }

    /// Campaigns for the leadership, registers this front end as live, and
    /// reloads the records. Returns true when newer records were installed.
    async fn coordinate(&self) -> bool {
        let campaign = self.coordinator.campaign().await;
        let frontends = self.coordinator.register().await;
        {
            let mut inner = self.inner.lock();
            let held = inner.leadership;
            let now = match &campaign {
                Ok(l) => *l,
                // Unknown: decide nothing until it is known again (a store
                // would fail meanwhile anyway).
                Err(_) => None,
            };
            let now = match (now, held) {
                // The deliberately broken mode keeps acting as leader.
                (None, Some(h)) if self.cfg.unsafe_deposed_leader => Some(h),
                _ => now,
            };
            if now.is_some() != held.is_some() {
                match (&campaign, now) {
                    (_, Some(l)) => {
                        tracing::info!(target: "heartbeat", term = l.term, "leading: this front end decides the views")
                    }
                    (Ok(_), None) => {
                        tracing::info!(target: "heartbeat", "another front end leads")
                    }
                    (Err(e), None) => {
                        tracing::warn!(target: "heartbeat", error = %e, "the coordinator cannot be reached: no view changes until it can")
                    }
                }
            }
            inner.leadership = now;
            if let Ok(f) = frontends {
                inner.frontends = f;
            }
        }
        // Every round, the leader too: a confirmation may have been stored
        // by another front end (an etcd implementation may answer this from
        // a watch).
        self.reload().await
    }

    /// Stores decided views: by compare-and-swap on `expected` and the
    /// leadership (the deliberately broken modes skip one or the other).
    async fn store_views(
        &self,
        leadership: Leadership,
        expected: Revision,
        records: &[GroupRecord],
    ) -> Result<Revision> {
        let mut expected = expected;
        if self.cfg.unsafe_blind_views {
            expected = self.coordinator.load().await?.revision;
        }
        let guard = if self.cfg.unsafe_deposed_leader {
            Guard::Revision
        } else {
            Guard::Leader(leadership)
        };
        self.coordinator.store(guard, expected, records).await
    }

    /// Loads the records and installs them if newer. Returns true when it
    /// did.
    async fn reload(&self) -> bool {
        match self.coordinator.load().await {
            Ok(snapshot) => {
                let mut inner = self.inner.lock();
                self.install(&mut inner, snapshot, None)
            }
            Err(e) => {
                tracing::debug!(target: "heartbeat", error = %e, "cannot load the view records");
                false
            }
        }
    }

    /// Installs `snapshot` if it is newer than the records held. A newly
    /// confirmed catalog view drops the cache (at `commit`, the new
    /// primary's adopted log end, when known). Returns true when installed.
    fn install(&self, inner: &mut Inner, snapshot: Snapshot, commit: Option<Lsn>) -> bool {
        if snapshot.revision <= inner.revision {
            return false;
        }
        let records: BTreeMap<Group, GroupRecord> = snapshot
            .records
            .into_iter()
            .map(|r| (r.current.group, r))
            .collect();
        for (group, record) in &records {
            let before = inner
                .records
                .get(group)
                .and_then(|r| r.confirmed.as_ref())
                .map(|c| c.epoch);
            let now = record.confirmed.as_ref().map(|c| c.epoch);
            if now.is_some() && now != before {
                inner.confirmed_at.insert(*group, Instant::now());
                if *group == Group::Catalog {
                    // Invalidations the old primary committed but never
                    // delivered are lost with it: start the cache afresh.
                    let floor = commit.or(inner.seen.get(Group::Catalog)).unwrap_or(0);
                    inner.cache.invalidate_all(floor);
                }
            }
        }
        inner.records = records;
        inner.revision = snapshot.revision;
        true
    }

    /// The record the view service decides from. In the deliberately broken
    /// mode, every member looks like it was in the confirmed view.
    pub(super) fn as_decided(&self, record: &GroupRecord) -> GroupRecord {
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
    pub(super) async fn view_ready(
        &self,
        group: Group,
        epoch: u64,
        commit: Lsn,
        disks: BTreeMap<NodeId, u64>,
        uncertain: Option<bool>,
    ) -> Result<()> {
        // Another front end may have stored this view since this one last
        // loaded the records: load them before answering.
        let behind = {
            let inner = self.inner.lock();
            inner
                .records
                .get(&group)
                .is_none_or(|r| r.current.epoch < epoch)
        };
        if behind {
            self.reload().await;
        }
        let (expected, records) = {
            let inner = self.inner.lock();
            let record = match inner.records.get(&group) {
                Some(r) if r.current.epoch > epoch => {
                    return Err(Error::StaleEpoch {
                        got: epoch,
                        current: r.current.epoch,
                    })
                }
                Some(r) if r.current.epoch == epoch => r,
                // Not learnt yet (the coordinator unreachable): ask again.
                _ => {
                    return Err(Error::Unavailable(format!(
                        "this front end does not know view {epoch} of {group} yet"
                    )))
                }
            };
            // A primary unsure of its log's tail (it restarted) confirms only a
            // view that holds every member that may have committed entries it
            // lost (see `viewservice::may_confirm`); the view service replaces
            // its view meanwhile.
            // The primary's own word on its uncertainty, sent with the
            // request; the last heartbeat of it may be from before it
            // restarted. (A primary of an older build sends none: then the
            // heartbeat.)
            let uncertain = uncertain.unwrap_or_else(|| {
                inner
                    .status
                    .get(&record.current.primary)
                    .is_none_or(|s| s.uncertain)
            });
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
            if record.is_confirmed() {
                drop(inner);
                self.bump();
                return Ok(());
            }
            let current = record.current.clone();
            // The disks of the view's members, as they pulled the whole log
            // (a primary of an older build sends none: then none are known).
            let disks: BTreeMap<NodeId, u64> = disks
                .into_iter()
                .filter(|(n, _)| current.contains(n))
                .collect();
            let mut records = inner.records.clone();
            if let Some(r) = records.get_mut(&group) {
                r.confirmed = Some(current);
                r.disks = disks;
            }
            (
                inner.revision,
                records.into_values().collect::<Vec<GroupRecord>>(),
            )
        };
        // A confirmation chooses nothing: the revision alone guards it (see
        // `coordination/mod.rs`).
        match self
            .coordinator
            .store(Guard::Revision, expected, &records)
            .await
        {
            Ok(revision) => {
                let mut inner = self.inner.lock();
                let snapshot = Snapshot { records, revision };
                self.install(&mut inner, snapshot, Some(commit));
                // The new primary's adopted log end holds every committed
                // entry.
                inner.seen.learn(group, commit);
                tracing::info!(target: "heartbeat", %group, epoch, "view confirmed");
            }
            Err(Error::Conflict(why)) => {
                // The records changed since: the primary asks again, and
                // is answered from the records as they are now.
                self.reload().await;
                return Err(Error::Unavailable(why));
            }
            Err(e) => return Err(e),
        }
        self.bump();
        Ok(())
    }
}

/// Node names for a log line: `catalog-2, catalog-3`.
fn names(nodes: &[NodeId]) -> String {
    let names: Vec<&str> = nodes.iter().map(|n| n.0.as_str()).collect();
    names.join(", ")
}
