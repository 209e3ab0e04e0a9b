//! The primary's side: accepting writes, committing them, starting a view,
//! and answering `Fetch` (which any replica does, for resync and adoption).

use super::{Inner, Replica};
use crate::error::{Error, Result};
use crate::state::command::{Command, Entry, Outcome};
use crate::state::{Snapshot, StateMachine};
use crate::transport::message::{Fetched, Request, Response};
use crate::transport::Transport;
use crate::types::{Epoch, LogPos, Lsn, NodeId};
use crate::view::View;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

use super::log::FetchAnswer;

/// What a backup's `Fetch` asks for.
pub(super) struct Asked {
    /// The end of its log.
    pub after: LogPos,
    /// The commit point it knows.
    pub known_commit: Lsn,
    /// Most entries to send.
    pub limit: usize,
    /// How far its state's side files go (see `StateMachine::mark`).
    pub mark: u64,
    /// Its disk's identity.
    pub disk: u64,
    /// It wants the whole committed state (its disk is new).
    pub rebuild: bool,
}

/// An appended entry's commit, to wait on (see [`Replica::append`]).
pub struct Committed(oneshot::Receiver<Result<(Outcome, Lsn)>>);

impl Committed {
    /// Its outcome and lsn once committed and applied.
    pub async fn wait(self) -> Result<(Outcome, Lsn)> {
        self.0.await.unwrap_or_else(|_| {
            Err(Error::Unavailable(
                "replica stopped; outcome unknown, retry with the same request id".into(),
            ))
        })
    }
}

impl<T: Transport, S: StateMachine> Replica<T, S> {
    /// Appends a command and returns its position at once, with what to
    /// wait on for its commit (see `Replica::append`).
    pub(super) fn append_entry(&self, command: Command) -> Result<(LogPos, Committed)> {
        let (pos, rx) = {
            let mut inner = self.inner.lock();
            if let Some(f) = &inner.failed {
                return Err(Error::Unavailable(format!("replica disk failed: {f}")));
            }
            if !inner.serving {
                return Err(self.not_primary(&inner));
            }
            let epoch = Self::epoch(&inner);
            let pos = LogPos::new(epoch, inner.log.last().lsn + 1);
            inner.log.push(Entry { pos, command });
            let (tx, rx) = oneshot::channel();
            inner.waiters.entry(pos.lsn).or_default().push(tx);
            (pos, rx)
        };
        // Wakes the syncer and the long-polling backups.
        self.bump();
        Ok((pos, Committed(rx)))
    }

    /// Makes appended entries durable as they come, many per fsync.
    pub(super) async fn syncer(self: Arc<Self>) {
        let mut rx = self.changed.subscribe();
        loop {
            let pending = {
                let inner = self.inner.lock();
                inner.failed.is_none() && inner.synced < inner.log.last().lsn
            };
            if pending {
                if self.flush().await.is_err() {
                    return;
                }
                continue;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Advances the commit point to what the primary's own disk and every
    /// backup of the view hold, and applies what became committed.
    pub(super) fn recompute_commit(&self, inner: &mut Inner<S>) {
        if !inner.serving {
            return;
        }
        let Some(view) = inner.view.as_ref() else {
            return;
        };
        let mut target = inner.synced;
        for b in &view.backups {
            target = target.min(inner.matched.get(b).copied().unwrap_or(0));
        }
        self.apply_to(inner, target);
    }

    /// Applies committed entries up to `target` and answers their waiters.
    pub(super) fn apply_to(&self, inner: &mut Inner<S>, target: Lsn) {
        let target = target.min(inner.log.last().lsn);
        if inner.state.failure().is_some() {
            return;
        }
        while inner.commit < target {
            let lsn = inner.commit + 1;
            let Some(entry) = inner.log.get(lsn).cloned() else {
                break;
            };
            let outcome = inner.state.apply(lsn, &entry.command);
            if let Some(e) = inner.state.failure() {
                // The outcome may be wrong (a side-file record not found):
                // answer nobody, and acknowledge nothing from now on.
                self.fail(inner, Error::Storage(e));
                return;
            }
            inner.digest = crate::state::chain_digest(inner.digest, &entry.command);
            inner.commit = lsn;
            if inner.serving {
                self.service.committed(&inner.state, &entry.command, lsn);
            }
            if let Some(waiters) = inner.waiters.remove(&lsn) {
                for w in waiters {
                    let _ = w.send(Ok((outcome.clone(), lsn)));
                }
            }
        }
        if self.snapshot_due(inner) {
            self.compact.notify_one();
        }
    }

    /// Becomes the primary of `view`: fences the backups, adopts the longest
    /// log among them, waits until they hold the whole log, has the view
    /// confirmed, and only then serves.
    ///
    /// A primary that restarted runs this again for the same epoch: each
    /// step is safe to repeat (fencing and adoption are idempotent, the wait
    /// covers whatever the backups hold now, and confirming a confirmed view
    /// changes nothing), and it only serves after all of them.
    pub(super) async fn start_view(self: Arc<Self>, view: View) {
        tracing::info!(node = %self.cfg.me, epoch = view.epoch, "starting view as primary");
        // 1. Fence every backup and learn its log end.
        let mut ends = Vec::new();
        for b in &view.backups {
            loop {
                if !self.still_in(&view) {
                    return;
                }
                let req = Request::StartView { view: view.clone() };
                match self.transport.call(b, req, self.cfg.hop_timeout).await {
                    Ok(Response::LogEnd { end }) => {
                        ends.push((b.clone(), end));
                        break;
                    }
                    Err(Error::StaleEpoch { current, .. }) if current > view.epoch => return,
                    _ => tokio::time::sleep(self.cfg.retry_delay).await,
                }
            }
        }
        // 2. Adopt the longest log. Entries only a backup holds were never
        // committed (every committed entry is on every member of the last
        // confirmed view, this replica included), so this keeps as many
        // acknowledged-or-not writes as possible; it is not needed for safety,
        // and a failure here is not fatal.
        // Unless my log's end is uncertain (I restarted; its tail may be
        // lost): then the longest log may hold committed entries I lack,
        // and I must not serve without it.
        if let Some((b, end)) = ends.iter().max_by_key(|(_, end)| *end) {
            let (mine, uncertain) = {
                let inner = self.inner.lock();
                (inner.log.last(), inner.uncertain)
            };
            if *end > mine {
                let adopted = self.catch_up_from(b, view.epoch, false).await;
                if let (true, Err(e)) = (uncertain, adopted) {
                    tracing::warn!(node = %self.cfg.me, epoch = view.epoch, error = %e, "could not adopt a longer log while unsure of my own: not serving");
                    return;
                }
            }
        }
        {
            let mut inner = self.inner.lock();
            if !self.still_in_locked(&inner, &view) {
                return;
            }
            inner.adopted = view.epoch;
        }
        // 3. Own log durable, then wait until every backup pulled all of it.
        if self.flush().await.is_err() {
            return;
        }
        let target = self.inner.lock().log.last().lsn;
        let mut rx = self.changed.subscribe();
        loop {
            {
                let inner = self.inner.lock();
                if !self.still_in_locked(&inner, &view) {
                    return;
                }
                let done = view
                    .backups
                    .iter()
                    .all(|b| inner.matched.get(b).copied().unwrap_or(0) >= target);
                if done && inner.synced >= target {
                    break;
                }
            }
            let _ = tokio::time::timeout(self.cfg.poll_wait, rx.changed()).await;
        }
        // 4. Ask the view service to record the view as confirmed. Until it
        // has, nothing new is committed: the view service must know which
        // replicas hold committed entries before any exist. With several
        // front ends, one that does not answer (or cannot reach the
        // coordinator) is followed by the next.
        let frontends: Vec<NodeId> = std::iter::once(self.cfg.frontend.clone())
            .chain(self.cfg.other_frontends.iter().cloned())
            .collect();
        let mut attempt = 0usize;
        loop {
            if !self.still_in(&view) {
                return;
            }
            let (disks, uncertain) = {
                let inner = self.inner.lock();
                let mut disks = inner.matched_disk.clone();
                disks.retain(|b, _| view.backups.contains(b));
                disks.insert(self.cfg.me.clone(), self.disk_id);
                (disks, inner.uncertain)
            };
            // My own uncertainty, as of now: the front end's heartbeat of
            // me may be from before I restarted.
            let req = Request::ViewReady {
                group: view.group,
                epoch: view.epoch,
                commit: target,
                disks,
                uncertain: Some(uncertain),
            };
            match self
                .transport
                .call(
                    &frontends[attempt % frontends.len()],
                    req,
                    self.cfg.hop_timeout,
                )
                .await
            {
                Ok(_) => break,
                Err(Error::StaleEpoch { .. }) => return,
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(self.cfg.retry_delay).await
                }
            }
        }
        // 5. Serve.
        {
            let mut inner = self.inner.lock();
            if !self.still_in_locked(&inner, &view) {
                return;
            }
            inner.serving = true;
            // Every backup holds my whole log, which is the longest of the
            // view's: nothing committed is missing from it.
            inner.uncertain = false;
            inner.rebuild = false;
            self.recompute_commit(&mut inner);
            tracing::info!(node = %self.cfg.me, epoch = view.epoch, commit = inner.commit, "serving as primary");
        }
        self.bump();
    }

    fn still_in(&self, view: &View) -> bool {
        let inner = self.inner.lock();
        self.still_in_locked(&inner, view)
    }

    fn still_in_locked(&self, inner: &Inner<S>, view: &View) -> bool {
        inner.failed.is_none() && inner.view.as_ref().map(|v| v.epoch) == Some(view.epoch)
    }

    /// Answers `Fetch`: the entries after `after`, a divergence point, or a
    /// snapshot. When this replica is the primary and the asker a backup of
    /// its view, `after` is also the backup's acknowledgement.
    pub(super) async fn serve_fetch(
        &self,
        epoch: Epoch,
        from: NodeId,
        asked: Asked,
        wait: Duration,
    ) -> Result<Response> {
        let Asked {
            after,
            known_commit,
            limit,
            mark,
            disk,
            rebuild,
        } = asked;
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let acked = {
                let mut inner = self.inner.lock();
                let current = Self::epoch(&inner);
                if epoch != current {
                    return Err(Error::StaleEpoch {
                        got: epoch,
                        current,
                    });
                }
                if inner.recovering {
                    // My log is no source of truth: an answer such as
                    // "your log diverges" would cut committed entries.
                    return Err(Error::Unavailable(
                        "recovering: my disk is new or was damaged; not a source of truth".into(),
                    ));
                }
                // A backup on a new disk: what its old one acknowledged is
                // gone, so its acknowledgement restarts from what it asks.
                if inner.matched_disk.get(&from) != Some(&disk) {
                    inner.matched_disk.insert(from.clone(), disk);
                    if let Some(m) = inner.matched.get_mut(&from) {
                        *m = (*m).min(after.lsn);
                    }
                }
                // My log's tail may be lost: an asker whose log is not a
                // prefix of mine may hold committed entries I lack, so I
                // never tell it to cut or replace its log.
                let foreign = after.lsn >= inner.log.base().lsn && !inner.log.contains(after);
                let my_backup = inner.adopted == epoch
                    && inner
                        .view
                        .as_ref()
                        .is_some_and(|v| v.backups.contains(&from));
                if inner.uncertain && foreign && !rebuild && !my_backup {
                    return Err(Error::Unavailable(
                        "my log's end is uncertain (I restarted): not a source of truth for yours"
                            .into(),
                    ));
                }
                let answer = if rebuild {
                    FetchAnswer::Snapshot
                } else {
                    inner.log.answer(after, limit.max(1))
                };
                match answer {
                    FetchAnswer::Entries(entries) => {
                        let mut acked = false;
                        if self.is_primary(&inner)
                            && inner
                                .view
                                .as_ref()
                                .is_some_and(|v| v.backups.contains(&from))
                        {
                            let m = inner.matched.entry(from.clone()).or_insert(0);
                            if after.lsn > *m {
                                *m = after.lsn;
                                acked = true;
                                self.recompute_commit(&mut inner);
                            }
                        }
                        let fresh = !entries.is_empty() || inner.commit > known_commit;
                        if fresh || tokio::time::Instant::now() >= deadline {
                            let commit = inner.commit;
                            drop(inner);
                            if acked {
                                self.bump();
                            }
                            return Ok(Response::Fetched(Fetched::Entries { entries, commit }));
                        }
                        acked
                    }
                    FetchAnswer::Diverged(truncate_to) => {
                        return Ok(Response::Fetched(Fetched::Diverged { truncate_to }))
                    }
                    FetchAnswer::Snapshot => {
                        // The asker is behind my compacted log. Any committed
                        // state will do, so send the current one: no old
                        // snapshot needs to stay in memory for this rare case.
                        let Some(pos) = inner.log.pos_at(inner.commit) else {
                            return Err(Error::Unavailable(
                                "my commit point is not in my log".into(),
                            ));
                        };
                        let (state, digest) = (inner.state.clone(), inner.digest);
                        drop(inner);
                        // The clone reads its side files as of its mark, so
                        // they are read without holding the replica.
                        let state = state.shipping(mark).map_err(Error::Storage)?;
                        let snapshot = Snapshot { pos, state, digest }.map(S::into);
                        return Ok(Response::Fetched(Fetched::Snapshot(Box::new(snapshot))));
                    }
                }
            };
            if acked {
                self.bump();
            }
            // Long poll: nothing new yet; wait for a change or the deadline.
            let _ = tokio::time::timeout_at(deadline, rx.changed()).await;
        }
    }
}
