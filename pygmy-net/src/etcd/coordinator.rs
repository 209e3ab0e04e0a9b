//! The [`Coordinator`] of several front ends, kept in etcd.
//!
//! # Keys (under a prefix, `/pygmy/` by default)
//!
//! - `records`: both groups' view records, as JSON. Their revision (the
//!   coordinator's [`Revision`]) is the key's `mod_revision`; 0 while the
//!   key is absent (no view chosen yet).
//! - `leader`: the leading front end's name, attached to its lease. The
//!   leadership's `term` is the key's `create_revision`, which etcd raises
//!   for every new creation, so terms grow and no two leaderships share one.
//! - `frontends/<name>`: one key per live front end, attached to its lease.
//!
//! # How the contract of [`Coordinator`] is met
//!
//! - **Compare-and-swap.** `store` is one etcd transaction: the records'
//!   `mod_revision` must be the expected revision and, for a view change
//!   ([`Guard::Leader`]), the leader key's `create_revision` must be the
//!   leadership's term. A deposed leader's lease has expired (etcd deleted
//!   its key) or another campaign has created the key anew at a higher
//!   revision: either way its compare fails, whatever its own clock says.
//! - **One leader.** `campaign` creates the leader key only if it is absent
//!   (`create_revision == 0`), attached to this front end's lease; while it
//!   holds it, `campaign` renews the lease instead. The key goes when the
//!   lease is not renewed for its TTL, and only then can another win.
//! - **Linearizable.** etcd's ranges and transactions are linearizable (the
//!   gateway's default); `load` is one range.
//! - **Unknown outcomes.** A transaction whose request may have reached etcd
//!   but got no answer is `Unavailable` (unknown), never retried by the
//!   client; the front end reloads before it decides again.
//!
//! One lease per front end serves both its leadership and its
//! registration; it is renewed at most every third of its TTL.

use crate::etcd::{Compare, Etcd, EtcdError, Lease, Op};
use async_trait::async_trait;
use parking_lot::Mutex;
use pygmy_core::unstable::frontend::coordination::{
    Coordinator, Guard, Leadership, Revision, Snapshot,
};
use pygmy_core::unstable::types::NodeId;
use pygmy_core::unstable::view::GroupRecord;
use pygmy_core::{Error, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The key prefix by default.
pub const DEFAULT_PREFIX: &str = "/pygmy/";

/// Views and leadership of front ends in etcd (see the module docs).
pub struct EtcdCoordinator {
    etcd: Arc<Etcd>,
    me: NodeId,
    prefix: String,
    ttl: Duration,
    held: Mutex<Held>,
}

/// This front end's lease and leadership, as last seen.
#[derive(Default)]
struct Held {
    lease: Option<Lease>,
    /// When the lease was last granted or renewed (sent).
    renewed: Option<Instant>,
    /// The leader key's create revision, while this front end leads.
    term: Option<i64>,
    /// The lease its registration key was last put with.
    registered: Option<Lease>,
}

impl EtcdCoordinator {
    /// A coordinator for front end `me` over `etcd`, with leases of `ttl`
    /// (etcd counts whole seconds, with a minimum of its own).
    pub fn new(etcd: Arc<Etcd>, me: NodeId, prefix: &str, ttl: Duration) -> Self {
        EtcdCoordinator {
            etcd,
            me,
            prefix: prefix.to_string(),
            ttl,
            held: Mutex::new(Held::default()),
        }
    }

    fn key(&self, name: &str) -> Vec<u8> {
        format!("{}{name}", self.prefix).into_bytes()
    }

    /// This front end's lease, granted or renewed as needed.
    async fn own_lease(&self) -> Result<Lease> {
        let (lease, renewed) = {
            let held = self.held.lock();
            (held.lease, held.renewed)
        };
        let sent = Instant::now();
        if let (Some(lease), Some(renewed)) = (lease, renewed) {
            if renewed.elapsed() < lease.ttl / 3 {
                return Ok(lease);
            }
            match self.etcd.keep_alive(lease.id).await {
                Ok(_) => {
                    self.held.lock().renewed = Some(sent);
                    return Ok(lease);
                }
                Err(EtcdError::LeaseNotFound(_)) => {
                    // Expired: the leadership and registration went with it.
                    let mut held = self.held.lock();
                    *held = Held::default();
                }
                Err(e) => return Err(unavailable(e)),
            }
        }
        let lease = self.etcd.grant(self.ttl).await.map_err(unavailable)?;
        let mut held = self.held.lock();
        held.lease = Some(lease);
        held.renewed = Some(sent);
        Ok(lease)
    }
}

/// etcd's errors in the core's terms: a failed compare is a conflict;
/// anything else leaves the outcome unknown.
fn unavailable(e: EtcdError) -> Error {
    match e {
        EtcdError::CompareFailed { .. } => Error::Conflict(format!("view records changed: {e}")),
        other => Error::Unavailable(format!("etcd: {other}")),
    }
}

#[async_trait]
impl Coordinator for EtcdCoordinator {
    async fn load(&self) -> Result<Snapshot> {
        let Some(kv) = self
            .etcd
            .get(&self.key("records"))
            .await
            .map_err(unavailable)?
        else {
            return Ok(Snapshot::default());
        };
        let records: Vec<GroupRecord> = serde_json::from_slice(&kv.value)
            .map_err(|e| Error::Storage(format!("view records in etcd do not decode: {e}")))?;
        Ok(Snapshot {
            records,
            revision: u64::try_from(kv.mod_revision).unwrap_or(0),
        })
    }

    async fn store(
        &self,
        guard: Guard,
        expected: Revision,
        records: &[GroupRecord],
    ) -> Result<Revision> {
        let expected = i64::try_from(expected)
            .map_err(|_| Error::InvalidInput(format!("revision {expected} out of range")))?;
        let mut compares = vec![Compare::ModRevision(self.key("records"), expected)];
        if let Guard::Leader(leadership) = guard {
            let term = i64::try_from(leadership.term).unwrap_or(i64::MAX);
            compares.push(Compare::CreateRevision(self.key("leader"), term));
        }
        let value = serde_json::to_vec(records)
            .map_err(|e| Error::Storage(format!("view records do not encode: {e}")))?;
        let put = Op::Put {
            key: self.key("records"),
            value,
            lease: None,
        };
        let revision = self
            .etcd
            .txn(&compares, &[put])
            .await
            .map_err(unavailable)?;
        Ok(u64::try_from(revision).unwrap_or(0))
    }

    async fn campaign(&self) -> Result<Option<Leadership>> {
        let lease = self.own_lease().await?;
        let leader = self.key("leader");
        let term = self.held.lock().term;
        if let Some(term) = term {
            // Still ours only if the key is the one this lease created.
            let current = self.etcd.get(&leader).await.map_err(unavailable)?;
            if current.is_some_and(|kv| kv.create_revision == term && kv.lease == Some(lease.id)) {
                return Ok(Some(Leadership { term: term as u64 }));
            }
            self.held.lock().term = None;
        }
        match self
            .etcd
            .campaign(&leader, self.me.0.as_bytes(), lease.id)
            .await
        {
            Ok(revision) => {
                self.held.lock().term = Some(revision);
                Ok(Some(Leadership {
                    term: revision as u64,
                }))
            }
            Err(EtcdError::CompareFailed { current, .. }) => {
                // Ours after all if an earlier campaign of this lease won
                // but its answer was lost.
                let holder = current.into_iter().find_map(|(_, kv)| kv);
                match holder {
                    Some(kv) if kv.lease == Some(lease.id) => {
                        self.held.lock().term = Some(kv.create_revision);
                        Ok(Some(Leadership {
                            term: kv.create_revision as u64,
                        }))
                    }
                    _ => Ok(None),
                }
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn register(&self) -> Result<Vec<NodeId>> {
        let lease = self.own_lease().await?;
        let registered = self.held.lock().registered;
        if registered.map(|l| l.id) != Some(lease.id) {
            let key = self.key(&format!("frontends/{}", self.me.0));
            self.etcd
                .put(&key, self.me.0.as_bytes(), Some(lease.id))
                .await
                .map_err(unavailable)?;
            self.held.lock().registered = Some(lease);
        }
        let prefix = self.key("frontends/");
        let range = self.etcd.get_prefix(&prefix).await.map_err(unavailable)?;
        let mut live: Vec<NodeId> = range
            .kvs
            .into_iter()
            .filter_map(|kv| String::from_utf8(kv.value).ok().map(NodeId))
            .collect();
        live.sort();
        Ok(live)
    }

    fn lease(&self) -> Duration {
        self.held.lock().lease.map_or(self.ttl, |l| l.ttl)
    }
}
