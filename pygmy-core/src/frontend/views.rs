//! The view service's driving: the heartbeat loop that probes every
//! replica, decides the next view of each group (by the rules of
//! `viewservice.rs`), stores it durably and announces it, and records a
//! new primary's confirmation (`ViewReady`).

use super::*;

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
        // Taken before `inner` (as `view_ready` does): see `saving`.
        let _saving = self.saving.lock();
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
            let record = GroupRecord {
                current: view.clone(),
                confirmed,
                disks,
            };
            let mut all = inner.records.clone();
            all.insert(group, record.clone());
            let all: Vec<_> = all.into_values().collect();
            // Saved (and synced) without the lock every client request
            // takes; `saving` keeps the records from changing meanwhile.
            drop(inner);
            let saved = self.store.save(&all);
            inner = self.inner.lock();
            if let Err(e) = saved {
                // Not durable, so not announced.
                tracing::error!(error = %e, "cannot store the view record");
                continue;
            }
            inner.records.insert(group, record);
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
    pub(super) fn view_ready(
        &self,
        group: Group,
        epoch: u64,
        commit: Lsn,
        disks: BTreeMap<NodeId, u64>,
    ) -> Result<()> {
        // Taken before `inner`: see `saving`.
        let _saving = self.saving.lock();
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
            let current = record.current.clone();
            // The disks of the view's members, as they pulled the whole log
            // (a primary of an older build sends none: then none are known).
            let disks: BTreeMap<NodeId, u64> = disks
                .into_iter()
                .filter(|(n, _)| current.contains(n))
                .collect();
            let mut all = inner.records.clone();
            if let Some(r) = all.get_mut(&group) {
                r.confirmed = Some(current);
                r.disks = disks;
            }
            // Saved (and synced) without the lock every client request
            // takes; `saving` keeps the records from changing meanwhile.
            drop(inner);
            self.store
                .save(&all.values().cloned().collect::<Vec<_>>())?;
            inner = self.inner.lock();
            inner.records = all;
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
}

/// Node names for a log line: `catalog-2, catalog-3`.
fn names(nodes: &[NodeId]) -> String {
    let names: Vec<&str> = nodes.iter().map(|n| n.0.as_str()).collect();
    names.join(", ")
}
