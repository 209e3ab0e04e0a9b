//! The pulling side: every replica that is not the primary keeps asking the
//! primary for what follows its durable log end. That one loop is normal
//! replication for a backup, and resync for a replica that restarted or was
//! left out of the view; a new primary uses the same exchange to adopt a
//! longer log from a backup.

use super::Replica;
use crate::error::{Error, Result};
use crate::state::StateMachine;
use crate::transport::message::{Fetched, Request, Response};
use crate::transport::Transport;
use crate::types::{Epoch, NodeId};
use std::sync::Arc;

/// What one `Fetch` round brought.
enum Pulled {
    /// Entries were appended (or none were new).
    Entries { got: usize },
    /// The log was cut back or replaced; ask again.
    Repaired,
}

impl<T: Transport, S: StateMachine> Replica<T, S> {
    /// Pulls from the primary of the current view, forever.
    pub(super) async fn puller(self: Arc<Self>) {
        let mut rx = self.changed.subscribe();
        loop {
            let target = {
                let inner = self.inner.lock();
                match &inner.view {
                    Some(v) if v.primary != self.cfg.me && inner.failed.is_none() => {
                        Some((v.primary.clone(), v.epoch))
                    }
                    _ => None,
                }
            };
            let Some((primary, epoch)) = target else {
                if rx.changed().await.is_err() {
                    return;
                }
                continue;
            };
            if self.pull_once(&primary, epoch, true).await.is_err() {
                tokio::time::sleep(self.cfg.retry_delay).await;
            }
        }
    }

    /// Pulls from `peer` until it has nothing more (used by a new primary to
    /// adopt a longer log, so without long polling).
    pub(super) async fn catch_up_from(
        &self,
        peer: &NodeId,
        epoch: Epoch,
        wait: bool,
    ) -> Result<()> {
        for _ in 0..10_000 {
            match self.pull_once(peer, epoch, wait).await? {
                Pulled::Entries { got: 0 } => return Ok(()),
                Pulled::Entries { .. } | Pulled::Repaired => {}
            }
        }
        Err(Error::Unavailable(format!(
            "could not catch up from {peer}"
        )))
    }

    /// One `Fetch` round with `peer`: make my log durable, ask for what
    /// follows its end, and apply the answer.
    async fn pull_once(&self, peer: &NodeId, epoch: Epoch, wait: bool) -> Result<Pulled> {
        // My end must be durable: the primary counts it as my acknowledgement.
        self.flush().await?;
        let (after, commit, mark, rebuild) = {
            let inner = self.inner.lock();
            // A fetch in `epoch` says "I still hold view `epoch`" (the
            // tenure of an order primary, the leases of a catalog primary
            // count on it: `services/tenure.rs`): never send one after
            // accepting a newer view during the flush.
            if inner.view.as_ref().map_or(0, |v| v.epoch) > epoch {
                return Err(Error::StaleEpoch {
                    got: epoch,
                    current: inner.view.as_ref().map_or(0, |v| v.epoch),
                });
            }
            let rebuild = inner.rebuild;
            (inner.log.last(), inner.commit, inner.state.mark(), rebuild)
        };
        let request = Request::Fetch {
            epoch,
            from: self.cfg.me.clone(),
            after,
            commit,
            limit: self.cfg.fetch_limit,
            wait_ms: if wait {
                self.cfg.poll_wait.as_millis() as u64
            } else {
                0
            },
            mark,
            disk: self.disk_id,
            rebuild,
        };
        let reply = self
            .transport
            .call(peer, request, self.cfg.hop_timeout)
            .await?;
        match reply {
            Response::Fetched(Fetched::Entries { entries, commit }) => {
                let got = entries.len();
                {
                    let mut inner = self.inner.lock();
                    // Drop the answer if my log or view moved meanwhile (a
                    // concurrent install or view change): ask again.
                    if super::disk::moved(&inner, epoch, after) {
                        return Ok(Pulled::Repaired);
                    }
                    for e in entries {
                        inner.log.push(e);
                    }
                }
                self.flush().await?;
                let mut inner = self.inner.lock();
                // My log is now a prefix of the peer's, so what it has
                // committed up to my end is committed for me too.
                let target = commit.min(inner.log.last().lsn);
                if !inner.serving {
                    self.apply_to(&mut inner, target);
                }
                // Caught up with my view's primary: I hold every entry it
                // has committed, whatever my disk lost.
                let from_primary = inner.view.as_ref().is_some_and(|v| v.primary == *peer);
                if from_primary && inner.uncertain && inner.log.last().lsn >= commit {
                    inner.uncertain = false;
                }
                drop(inner);
                self.bump();
                Ok(Pulled::Entries { got })
            }
            // Both are dropped, like entries, if my log or view moved since
            // I asked: a late answer must not cut the log of a replica that
            // has become the primary of a newer view (it would cut entries
            // its view start is waiting for its backups to pull).
            Response::Fetched(Fetched::Diverged { truncate_to }) => {
                self.truncate(truncate_to, epoch, after).await?;
                Ok(Pulled::Repaired)
            }
            Response::Fetched(Fetched::Snapshot(snapshot)) => {
                // Messages carry the store's state (see `state/machine.rs`).
                let Ok(snapshot) = snapshot.try_map(S::try_from) else {
                    return Err(Error::InvalidInput(format!(
                        "{peer} sent a snapshot of another kind of state"
                    )));
                };
                self.install_snapshot(snapshot, epoch, after).await?;
                Ok(Pulled::Repaired)
            }
            other => Err(crate::transport::unexpected("fetch", &other)),
        }
    }
}
