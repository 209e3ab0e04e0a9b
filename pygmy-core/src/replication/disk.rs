//! Everything that writes a replica's log file, in one place. Each of these
//! runs under the `disk` lock, so the file and the in-memory log change
//! together: the file (with `log.prev` while a snapshot is written) always
//! holds exactly the in-memory log up to `synced` (and, while `truncate`
//! cuts a divergent suffix, that suffix past `synced`, which nothing counts
//! on). No fsync here runs under the replica's lock (reads and heartbeats
//! wait on that one): `install_snapshot` says how it keeps a view change
//! out while it writes.

use super::{fail_waiters, Inner, Replica};
use crate::error::{Error, Result};
use crate::state::{Snapshot, StateMachine};
use crate::transport::Transport;
use crate::types::{Epoch, LogPos, Lsn};
use std::sync::Arc;

impl<T: Transport, S: StateMachine> Replica<T, S> {
    /// Makes the in-memory log durable: writes what follows `synced`, then
    /// one fsync for all of it (group commit).
    pub(super) async fn flush(&self) -> Result<()> {
        let _disk = self.disk.lock().await;
        let (entries, last) = {
            let inner = self.inner.lock();
            check_failed(&inner)?;
            let last = inner.log.last().lsn;
            if inner.synced >= last {
                return Ok(());
            }
            (inner.log.range(inner.synced, last), last)
        };
        let written = {
            let mut storage = self.storage.lock();
            self.cfg
                .append_wait
                .run(|| storage.append(&entries).and_then(|_| storage.sync()))
        };
        let mut inner = self.inner.lock();
        if let Err(e) = written {
            return Err(self.fail(&mut inner, e));
        }
        inner.synced = last;
        self.recompute_commit(&mut inner);
        drop(inner);
        self.bump();
        Ok(())
    }

    /// Cuts the log after `lsn` (never below the commit point), durably —
    /// unless the log no longer ends at `asked_after` or the view moved past
    /// `epoch` since the peer was asked (its answer is stale then).
    pub(super) async fn truncate(&self, lsn: Lsn, epoch: Epoch, asked_after: LogPos) -> Result<()> {
        let _disk = self.disk.lock().await;
        let mut inner = self.inner.lock();
        check_failed(&inner)?;
        if moved(&inner, epoch, asked_after) {
            return Ok(());
        }
        let lsn = lsn.max(inner.commit);
        if lsn >= inner.log.last().lsn {
            return Ok(());
        }
        tracing::info!(node = %self.cfg.me, from = %inner.log.last(), to = lsn, "truncating divergent log suffix");
        inner.log.truncate_after(lsn);
        fail_waiters(&mut inner, lsn);
        let cut_file = inner.synced > lsn;
        // The file is cut without the replica's lock (which reads and
        // heartbeats wait on), under `disk` only: nothing else writes the
        // file meanwhile. Until the cut is durable, `synced` already says
        // `lsn`, so nothing counts on the suffix still in the file (a crash
        // meanwhile finds it, as one before the cut would).
        inner.synced = inner.synced.min(lsn);
        drop(inner);
        if cut_file {
            let cut = {
                let mut storage = self.storage.lock();
                self.cfg
                    .append_wait
                    .run(|| storage.truncate_after(lsn).and_then(|_| storage.sync()))
            };
            if let Err(e) = cut {
                return Err(self.fail(&mut self.inner.lock(), e));
            }
        }
        self.bump();
        Ok(())
    }

    /// Replaces everything with a snapshot from the primary (this replica
    /// was behind its compacted log), unless the answer is stale (see
    /// `truncate`).
    ///
    /// The file and the in-memory log and state must change as one with
    /// respect to a view change: were a view accepted between the check
    /// and the swap, it could start a view (`start_view`) from the log
    /// this install then replaces, or the install would have to undo a
    /// snapshot already on disk. Yet the disk work (the side files'
    /// records and sync, the log's cut, the snapshot's write and fsync)
    /// must not hold the replica's lock, which reads and heartbeats wait
    /// on. So it goes in three steps:
    ///
    /// 1. Under `accepting` and the replica's lock: check that the answer
    ///    still applies, and set `installing`. From then on `observe_view`
    ///    defers a newer view (it takes `accepting` and finds the flag):
    ///    as if the heartbeat or `StartView` carrying it were late, which
    ///    the protocol tolerates (the view service resends it with the
    ///    next heartbeat; a new primary retries `StartView`).
    /// 2. With no lock a request waits on: the disk work. Only `snapshots`
    ///    and `disk` are held, which no request takes, and `storage`, which
    ///    only `observe_view` (deferring now) and those two's holders take.
    ///    Nothing else changes the log or the state meanwhile: every log
    ///    writer holds `disk`, or is the one pull at a time (this one's);
    ///    entries are applied on a backup only by that pull, and a primary
    ///    serves only after its own `flush`, which waits for `disk`.
    /// 3. Under the replica's lock: swap the log and state in, clear the
    ///    flag.
    ///
    /// No `.await` lies between 1 and 3, so the future cannot be dropped
    /// (a task aborted) with the flag left set.
    pub(super) async fn install_snapshot(
        &self,
        mut snapshot: Snapshot<S>,
        epoch: Epoch,
        asked_after: LogPos,
    ) -> Result<()> {
        let _snapshots = self.snapshots.lock().await;
        let _disk = self.disk.lock().await;
        // 1. Check, and hold newer views off.
        let (current, synced) = {
            let _accepting = self.accepting.lock();
            let mut inner = self.inner.lock();
            check_failed(&inner)?;
            if moved(&inner, epoch, asked_after) {
                return Ok(());
            }
            // A rebuild takes the snapshot whatever its position: my state
            // is the initial one, not the store's.
            let behind = snapshot.pos.lsn > inner.commit || inner.rebuild;
            if !behind || snapshot.state.group() != self.cfg.group {
                return Ok(());
            }
            inner.installing = true;
            // O(1): the state's maps are persistent.
            (inner.state.clone(), inner.synced)
        };
        // 2. The disk work.
        tracing::info!(node = %self.cfg.me, at = %snapshot.pos, "installing snapshot");
        let written = self
            .cfg
            .snapshot_wait
            .run(|| self.write_installed(&mut snapshot, &current, synced));
        drop(current);
        // 3. Swap.
        let mut inner = self.inner.lock();
        inner.installing = false;
        match written {
            Err(e) => return Err(self.fail(&mut inner, e)),
            Ok(false) => return Ok(()),
            Ok(true) => {}
        }
        fail_waiters(&mut inner, 0);
        inner.log.reset(snapshot.pos);
        inner.digest = snapshot.digest;
        inner.commit = snapshot.pos.lsn;
        inner.synced = snapshot.pos.lsn;
        inner.state = snapshot.state;
        // Rebuilt: I hold the committed state, as of the primary's commit.
        inner.rebuild = false;
        inner.uncertain = false;
        drop(inner);
        self.bump();
        Ok(())
    }

    /// The disk work of `install_snapshot` (step 2 there): puts the
    /// received state on my side files and makes them durable before a
    /// snapshot counts on them, cuts my log (durable up to `synced`), then
    /// writes the snapshot. `Ok(false)`: the state does not fit my side
    /// files (see [`StateMachine::adopt`]); nothing was written.
    fn write_installed(
        &self,
        snapshot: &mut Snapshot<S>,
        current: &S,
        synced: Lsn,
    ) -> Result<bool> {
        if !snapshot.state.adopt(current).map_err(Error::Storage)? {
            return Ok(false);
        }
        if let Some(sync) = snapshot.state.syncer()? {
            sync()?;
        }
        // The snapshot replaces my whole log. Storage keeps the entries after
        // a snapshot (compaction does), so first cut those: they may be a
        // divergent suffix, and the file must hold exactly the in-memory log.
        let mut storage = self.storage.lock();
        if synced > snapshot.pos.lsn {
            storage.truncate_after(snapshot.pos.lsn)?;
            storage.sync()?;
        }
        // The snapshot file holds the store's state (see `state/machine.rs`);
        // the copy is O(1), as above.
        storage.save_snapshot(&snapshot.clone().map(S::into))?;
        Ok(true)
    }

    /// Takes snapshots as entries are applied, in a task of its own: the
    /// syncer and the puller never wait for one, so group commits and
    /// replication go on while a snapshot is encoded and written.
    /// It sleeps until `apply_to` finds a snapshot due (not on every
    /// change: an extra task woken per commit costs latency).
    pub(super) async fn compactor(self: Arc<Self>) {
        loop {
            self.compact.notified().await;
            if self.maybe_compact().await.is_err() {
                return;
            }
        }
    }

    /// Whether enough entries were applied since the last snapshot.
    pub(super) fn snapshot_due(&self, inner: &Inner<S>) -> bool {
        let mut every = self.cfg.snapshot_every;
        if self.cfg.snapshot_scales {
            every = every.max(inner.state.records());
        }
        inner.commit >= inner.log.base().lsn + every
    }

    /// Snapshots the committed state and compacts the log once enough
    /// entries have been applied since the last snapshot.
    pub(super) async fn maybe_compact(&self) -> Result<()> {
        if !self.snapshot_due(&self.inner.lock()) {
            return Ok(());
        }
        // The snapshot is encoded and written holding neither the replica's
        // lock nor the disk lock (that takes time in proportion to the
        // state; group commits and reads go on meanwhile). Under the locks
        // only the state is copied (in O(1): its big maps are persistent)
        // and the log is split at the snapshot's lsn, which moves only the
        // few entries after it. `snapshots` keeps an install from writing
        // its snapshot file in between.
        let wait = self.cfg.snapshot_wait;
        let _snapshots = self.snapshots.lock().await;
        let (snapshot, job) = {
            let _disk = self.disk.lock().await;
            let snapshot = {
                let inner = self.inner.lock();
                check_failed(&inner)?;
                // Only durable, committed entries are covered by a snapshot.
                let upto = inner.commit.min(inner.synced);
                let Some(pos) = inner.log.pos_at(upto) else {
                    return Ok(());
                };
                if upto <= inner.log.base().lsn || upto != inner.commit {
                    return Ok(());
                }
                Snapshot {
                    pos,
                    state: inner.state.clone(),
                    digest: inner.digest,
                }
            };
            let lsn = snapshot.pos.lsn;
            match wait.run(|| self.storage.lock().begin_snapshot(lsn)) {
                Ok(job) => (snapshot, job),
                Err(e) => return Err(self.fail(&mut self.inner.lock(), e)),
            }
        };
        let pos = snapshot.pos;
        // The snapshot counts on the state's side files up to its mark.
        let side_synced = snapshot.state.syncer().and_then(|sync| {
            let sync = sync.filter(|_| !self.cfg.unsafe_unsynced_side_files);
            sync.map_or(Ok(()), |sync| wait.run(sync))
        });
        // The snapshot file holds the store's state (see `state/machine.rs`).
        let snapshot = snapshot.map(S::into);
        let written = side_synced.and_then(|_| wait.run(|| job(&snapshot)));
        drop(snapshot);
        let finished = written.and_then(|_| wait.run(|| self.storage.lock().finish_snapshot()));
        let mut inner = self.inner.lock();
        if let Err(e) = finished {
            return Err(self.fail(&mut inner, e));
        }
        // The in-memory log keeps the covered entries until the snapshot is
        // durable, for backups that still need them. Nothing cut it below
        // `pos` meanwhile: truncation never goes below the commit point,
        // and an install (which replaces the log) waits for `snapshots`.
        if inner.log.base().lsn < pos.lsn && inner.log.contains(pos) {
            inner.log.compact(pos);
            tracing::debug!(node = %self.cfg.me, at = %pos, "compacted log");
        }
        Ok(())
    }

    /// Marks the disk as failed: from now on this replica acknowledges
    /// nothing (its durability promise is gone).
    pub(super) fn fail(&self, inner: &mut Inner<S>, e: Error) -> Error {
        tracing::error!(node = %self.cfg.me, error = %e, "disk failed; replica stops acknowledging");
        inner.failed = Some(e.to_string());
        inner.serving = false;
        fail_waiters(inner, 0);
        e
    }
}

/// True when the log no longer ends at `asked_after` or the view is no
/// longer at `epoch`: what a peer answered to those is out of date.
pub(super) fn moved<S>(inner: &Inner<S>, epoch: Epoch, asked_after: LogPos) -> bool {
    inner.log.last() != asked_after || inner.view.as_ref().map(|v| v.epoch) != Some(epoch)
}

fn check_failed<S>(inner: &Inner<S>) -> Result<()> {
    match &inner.failed {
        Some(f) => Err(Error::Storage(f.clone())),
        None => Ok(()),
    }
}
