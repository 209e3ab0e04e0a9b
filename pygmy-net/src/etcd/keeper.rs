//! [`LeaseKeeper`]: keeps a lease alive in the background and tells its
//! holder, conservatively, until when it surely holds it.
//!
//! A leader elected with a lease must stop acting as leader before etcd
//! may have given its key to another. etcd renews a lease at some moment
//! during a keep-alive call, so the holder's safe bound is *the time it
//! sent the call* plus the TTL: [`LeaseKeeper::held_until`]. The keeper
//! renews every third of the TTL, so one or two lost renewals do not lose
//! the lease; when renewals keep failing past the bound, or etcd says the
//! lease is gone, the keeper reports it lost and stops.
//!
//! This bound is a convenience for liveness (stop work early, campaign
//! again), not the safety guard: a coordinator's writes should also
//! compare the leader key's revision in the same transaction, so a deposed
//! leader's write fails in etcd whatever its clock says.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::client::{Etcd, EtcdError, Lease};

/// Where the lease stands, as far as its holder can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// Held at least until this instant (the last successful renewal's
    /// send time plus the TTL etcd answered).
    Held { until: Instant },
    /// Lost: etcd said the lease is gone, or no renewal succeeded before
    /// the bound passed. Final.
    Lost { reason: String },
}

/// Renews one lease until dropped, revoked, or lost.
#[derive(Debug)]
pub struct LeaseKeeper {
    lease: Lease,
    etcd: Arc<Etcd>,
    state: watch::Receiver<LeaseState>,
    task: JoinHandle<()>,
}

impl LeaseKeeper {
    /// Starts renewing `lease`, just granted at `granted` (the time the
    /// grant call was *sent*: the lease's first bound counts from there).
    pub fn spawn(etcd: Arc<Etcd>, lease: Lease, granted: Instant) -> Self {
        let (tx, state) = watch::channel(LeaseState::Held {
            until: granted + lease.ttl,
        });
        let task = tokio::spawn(renew(Arc::clone(&etcd), lease, granted + lease.ttl, tx));
        LeaseKeeper {
            lease,
            etcd,
            state,
            task,
        }
    }

    /// The lease kept.
    pub fn lease(&self) -> Lease {
        self.lease
    }

    /// Until when the lease is surely held; `None` once it may not be.
    pub fn held_until(&self) -> Option<Instant> {
        match &*self.state.borrow() {
            LeaseState::Held { until } if Instant::now() < *until => Some(*until),
            _ => None,
        }
    }

    /// The current state.
    pub fn state(&self) -> LeaseState {
        self.state.borrow().clone()
    }

    /// Waits until the lease is lost (returns the reason).
    pub async fn lost(&self) -> String {
        let mut state = self.state.clone();
        loop {
            if let LeaseState::Lost { reason } = &*state.borrow_and_update() {
                return reason.clone();
            }
            if state.changed().await.is_err() {
                return "the keeper stopped".into();
            }
        }
    }

    /// Stops renewing and revokes the lease, deleting its keys at once (a
    /// clean hand-over: no one waits for the TTL).
    pub async fn revoke(self) -> Result<(), EtcdError> {
        self.task.abort();
        self.etcd.revoke(self.lease.id).await
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        // Renewals stop; the lease then expires within its TTL.
        self.task.abort();
    }
}

/// The renewal loop.
async fn renew(etcd: Arc<Etcd>, lease: Lease, mut until: Instant, tx: watch::Sender<LeaseState>) {
    let every = (lease.ttl / 3).max(Duration::from_millis(100));
    let retry = (lease.ttl / 10).max(Duration::from_millis(50));
    let mut next = Instant::now() + every;
    loop {
        // Wake at the bound too, so a loss is reported when it happens.
        tokio::time::sleep_until(next.min(until)).await;
        let sent = Instant::now();
        if sent >= until {
            let _ = tx.send(LeaseState::Lost {
                reason: format!("no renewal of lease {} succeeded in time", lease.id),
            });
            return;
        }
        // A call never outlives the bound by much: the client bounds it.
        match etcd.keep_alive(lease.id).await {
            Ok(ttl) => {
                until = until.max(sent + ttl);
                let _ = tx.send(LeaseState::Held { until });
                next = sent + every;
            }
            Err(EtcdError::LeaseNotFound(_)) => {
                let _ = tx.send(LeaseState::Lost {
                    reason: format!("lease {} expired or was revoked", lease.id),
                });
                return;
            }
            // Unreachable or a bad answer: try again soon, until the bound.
            Err(_) => next = Instant::now() + retry,
        }
    }
}
