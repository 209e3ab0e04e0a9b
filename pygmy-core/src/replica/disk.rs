//! Everything that writes a replica's log file, in one place. Each of these
//! runs under the `disk` lock, so the file and the in-memory log change
//! together: the file always holds exactly the in-memory log up to `synced`.

use super::{fail_waiters, Inner, Replica};
use crate::error::{Error, Result};
use crate::state::Snapshot;
use crate::transport::Transport;
use crate::types::Lsn;

impl<T: Transport> Replica<T> {
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
            storage.append(&entries).and_then(|_| storage.sync())
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

    /// Cuts the log after `lsn` (never below the commit point), durably.
    pub(super) async fn truncate(&self, lsn: Lsn) -> Result<()> {
        let _disk = self.disk.lock().await;
        let mut inner = self.inner.lock();
        check_failed(&inner)?;
        let lsn = lsn.max(inner.commit);
        if lsn >= inner.log.last().lsn {
            return Ok(());
        }
        tracing::info!(node = %self.cfg.me, from = %inner.log.last(), to = lsn, "truncating divergent log suffix");
        inner.log.truncate_after(lsn);
        fail_waiters(&mut inner, lsn);
        if inner.synced > lsn {
            let cut = {
                let mut storage = self.storage.lock();
                storage.truncate_after(lsn).and_then(|_| storage.sync())
            };
            if let Err(e) = cut {
                return Err(self.fail(&mut inner, e));
            }
            inner.synced = lsn;
        }
        drop(inner);
        self.bump();
        Ok(())
    }

    /// Replaces everything with a snapshot from the primary (this replica
    /// was behind its compacted log).
    pub(super) async fn install_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        let _snapshots = self.snapshots.lock().await;
        let _disk = self.disk.lock().await;
        let mut inner = self.inner.lock();
        check_failed(&inner)?;
        if snapshot.pos.lsn <= inner.commit || snapshot.state.group() != self.cfg.group {
            return Ok(());
        }
        tracing::info!(node = %self.cfg.me, at = %snapshot.pos, "installing snapshot");
        // The snapshot replaces my whole log. Storage keeps the entries after
        // a snapshot (compaction does), so first cut those: they may be a
        // divergent suffix, and the file must hold exactly the in-memory log.
        let installed = {
            let mut storage = self.storage.lock();
            let cut = if inner.synced > snapshot.pos.lsn {
                storage
                    .truncate_after(snapshot.pos.lsn)
                    .and_then(|_| storage.sync())
            } else {
                Ok(())
            };
            cut.and_then(|_| storage.save_snapshot(&snapshot))
        };
        if let Err(e) = installed {
            return Err(self.fail(&mut inner, e));
        }
        fail_waiters(&mut inner, 0);
        inner.log.reset(snapshot.pos);
        inner.digest = snapshot.digest;
        inner.commit = snapshot.pos.lsn;
        inner.synced = snapshot.pos.lsn;
        inner.state = snapshot.state;
        drop(inner);
        self.bump();
        Ok(())
    }

    /// Snapshots the committed state and compacts the log once enough
    /// entries have been applied since the last snapshot.
    pub(super) async fn maybe_compact(&self) -> Result<()> {
        {
            let inner = self.inner.lock();
            if inner.commit < inner.log.base().lsn + self.cfg.snapshot_every {
                return Ok(());
            }
        }
        // The snapshot is encoded and written holding neither the replica's
        // lock nor the disk lock (that takes time in proportion to the
        // state; group commits and reads go on meanwhile). Only the state's
        // copy and the final compaction hold locks. `snapshots` keeps an
        // install from writing its snapshot file in between.
        let _snapshots = self.snapshots.lock().await;
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
        let job = self.storage.lock().snapshot_job();
        let written = job(&snapshot);
        let pos = snapshot.pos;
        drop(snapshot);
        // Nothing cut the log below `pos` meanwhile: truncation never goes
        // below the commit point, and an install (which replaces the log)
        // waits for `snapshots`.
        let _disk = self.disk.lock().await;
        let compacted = written.and_then(|_| self.storage.lock().compact_to(pos.lsn));
        let mut inner = self.inner.lock();
        if let Err(e) = compacted {
            return Err(self.fail(&mut inner, e));
        }
        if inner.log.base().lsn < pos.lsn && inner.log.contains(pos) {
            inner.log.compact(pos);
            tracing::debug!(node = %self.cfg.me, at = %pos, "compacted log");
        }
        Ok(())
    }

    /// Marks the disk as failed: from now on this replica acknowledges
    /// nothing (its durability promise is gone).
    pub(super) fn fail(&self, inner: &mut Inner, e: Error) -> Error {
        tracing::error!(node = %self.cfg.me, error = %e, "disk failed; replica stops acknowledging");
        inner.failed = Some(e.to_string());
        inner.serving = false;
        fail_waiters(inner, 0);
        e
    }
}

fn check_failed(inner: &Inner) -> Result<()> {
    match &inner.failed {
        Some(f) => Err(Error::Storage(f.clone())),
        None => Ok(()),
    }
}
