//! A model of etcd's semantics, in memory, for tests and the simulation.
//!
//! One [`Model`] is the coordination service; each front end talks to it
//! through its own [`Client`]. What it gives is exactly the contract of
//! [`Coordinator`]: every operation is atomic under one lock, so it is
//! linearizable; a store is a compare-and-swap on the revision and, for a
//! view change, on the leadership; leadership and registrations are leases
//! that expire on tokio's clock (virtual under turmoil and paused tests).
//!
//! Faults: the service can be crashed and restarted (its data survives, as
//! etcd's does on disk; leases keep their expiry times, so a leader that
//! could not renew meanwhile has lost its lease), and one front end can be
//! cut off from it. While the service is down or a client is cut off,
//! every call of that client fails with [`Error::Unavailable`] and changes
//! nothing.

use super::{conflict, Coordinator, Guard, Leadership, Revision, Snapshot};
use crate::error::{Error, Result};
use crate::types::NodeId;
use crate::view::GroupRecord;
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Default)]
struct State {
    records: Vec<GroupRecord>,
    revision: Revision,
    /// The leader, its term, and when its lease expires.
    leader: Option<(NodeId, u64, Instant)>,
    /// The highest term ever granted.
    terms: u64,
    /// Live front ends and when their registration expires.
    live: BTreeMap<NodeId, Instant>,
    down: bool,
    cut_off: BTreeSet<NodeId>,
    /// Every successful store, for checkers.
    history: Vec<Stored>,
}

/// One successful store, as the service saw it (for the checkers of
/// `invariants::views`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub revision: Revision,
    pub records: Vec<GroupRecord>,
    /// The front end that stored it.
    pub writer: NodeId,
    /// Whether the writer held the leadership when it stored.
    pub by_leader: bool,
}

/// The coordination service (shared by every [`Client`]).
#[derive(Clone)]
pub struct Model {
    state: Arc<Mutex<State>>,
    lease: Duration,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.lock();
        f.debug_struct("Model")
            .field("revision", &s.revision)
            .field("down", &s.down)
            .field("lease", &self.lease)
            .finish()
    }
}

impl Model {
    pub fn new(lease: Duration) -> Self {
        Model {
            state: Arc::default(),
            lease,
        }
    }

    /// The session of front end `me`.
    pub fn client(&self, me: NodeId) -> Client {
        Client {
            me,
            model: self.clone(),
        }
    }

    /// The service stops answering (its data is kept).
    pub fn crash(&self) {
        self.state.lock().down = true;
    }

    pub fn restart(&self) {
        self.state.lock().down = false;
    }

    /// Cuts `node` off from the service, or reconnects it.
    pub fn cut_off(&self, node: &NodeId, cut: bool) {
        let mut s = self.state.lock();
        if cut {
            s.cut_off.insert(node.clone());
        } else {
            s.cut_off.remove(node);
        }
    }

    /// Every successful store so far, in order: the checkers' view of what
    /// the service holds.
    pub fn history(&self) -> Vec<Stored> {
        self.state.lock().history.clone()
    }

    /// The records held now (whatever faults there are).
    pub fn records(&self) -> Vec<GroupRecord> {
        self.state.lock().records.clone()
    }

    /// Undoes every fault: the service is up, nobody is cut off.
    pub fn heal(&self) {
        let mut s = self.state.lock();
        s.down = false;
        s.cut_off.clear();
    }

    /// The current leader, if its lease has not expired.
    pub fn leader(&self) -> Option<NodeId> {
        let s = self.state.lock();
        let now = Instant::now();
        s.leader
            .as_ref()
            .filter(|(_, _, until)| *until > now)
            .map(|(n, _, _)| n.clone())
    }
}

/// One front end's session with a [`Model`].
pub struct Client {
    me: NodeId,
    model: Model,
}

impl Client {
    /// Runs `f` on the state, unless the service is down or this client is
    /// cut off.
    fn with<R>(&self, f: impl FnOnce(&mut State, Instant) -> Result<R>) -> Result<R> {
        let mut s = self.model.state.lock();
        if s.down {
            return Err(Error::Unavailable("the coordinator is down".into()));
        }
        if s.cut_off.contains(&self.me) {
            return Err(Error::Unavailable(format!(
                "{} cannot reach the coordinator",
                self.me
            )));
        }
        f(&mut s, Instant::now())
    }
}

#[async_trait]
impl Coordinator for Client {
    async fn load(&self) -> Result<Snapshot> {
        self.with(|s, _| {
            Ok(Snapshot {
                records: s.records.clone(),
                revision: s.revision,
            })
        })
    }

    async fn store(
        &self,
        guard: Guard,
        expected: Revision,
        records: &[GroupRecord],
    ) -> Result<Revision> {
        self.with(|s, now| {
            if s.revision != expected {
                return Err(conflict("another store came first"));
            }
            let leads = s
                .leader
                .as_ref()
                .is_some_and(|(n, _, until)| *n == self.me && *until > now);
            if let Guard::Leader(l) = guard {
                let holds = leads && s.leader.as_ref().is_some_and(|(_, t, _)| *t == l.term);
                if !holds {
                    return Err(conflict("the leadership was lost"));
                }
            }
            s.revision += 1;
            s.records = records.to_vec();
            let entry = Stored {
                revision: s.revision,
                records: s.records.clone(),
                writer: self.me.clone(),
                by_leader: leads,
            };
            s.history.push(entry);
            Ok(s.revision)
        })
    }

    async fn campaign(&self) -> Result<Option<Leadership>> {
        let lease = self.model.lease;
        self.with(|s, now| {
            let until = now + lease;
            match &mut s.leader {
                Some((n, t, expires)) if *expires > now => {
                    if *n != self.me {
                        return Ok(None);
                    }
                    *expires = until;
                    Ok(Some(Leadership { term: *t }))
                }
                _ => {
                    s.terms += 1;
                    s.leader = Some((self.me.clone(), s.terms, until));
                    Ok(Some(Leadership { term: s.terms }))
                }
            }
        })
    }

    async fn register(&self) -> Result<Vec<NodeId>> {
        let lease = self.model.lease;
        self.with(|s, now| {
            s.live.insert(self.me.clone(), now + lease);
            s.live.retain(|_, until| *until > now);
            Ok(s.live.keys().cloned().collect())
        })
    }

    fn lease(&self) -> Duration {
        self.model.lease
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Group;
    use crate::view::View;

    fn n(s: &str) -> NodeId {
        NodeId(s.into())
    }

    fn rec(epoch: u64) -> Vec<GroupRecord> {
        vec![GroupRecord {
            current: View {
                group: Group::Order,
                epoch,
                primary: n("o1"),
                backups: vec![],
            },
            confirmed: None,
            disks: Default::default(),
        }]
    }

    const LEASE: Duration = Duration::from_secs(2);

    #[tokio::test(start_paused = true)]
    async fn one_leader_at_a_time_and_a_deposed_one_cannot_store() {
        let m = Model::new(LEASE);
        let (a, b) = (m.client(n("fe1")), m.client(n("fe2")));
        let la = a.campaign().await.unwrap().expect("first campaign wins");
        assert_eq!(b.campaign().await.unwrap(), None, "a leads");
        let r = a.store(Guard::Leader(la), 0, &rec(1)).await.unwrap();
        // a is cut off and cannot renew: after one lease b takes over.
        m.cut_off(&n("fe1"), true);
        tokio::time::advance(LEASE / 2).await;
        assert_eq!(b.campaign().await.unwrap(), None, "a's lease still runs");
        tokio::time::advance(LEASE).await;
        let lb = b.campaign().await.unwrap().expect("a's lease expired");
        assert!(lb.term > la.term, "terms grow");
        assert_eq!(m.leader(), Some(n("fe2")));
        m.cut_off(&n("fe1"), false);
        // a still believes it leads; its store fails whatever the revision.
        let deposed = a.store(Guard::Leader(la), r, &rec(2)).await;
        assert!(matches!(deposed, Err(Error::Conflict(_))), "{deposed:?}");
        assert_eq!(a.campaign().await.unwrap(), None);
        let r2 = b.store(Guard::Leader(lb), r, &rec(2)).await.unwrap();
        assert!(r2 > r);
        let h = m.history();
        assert_eq!(h.len(), 2);
        assert!(h.iter().all(|s| s.by_leader));
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_from_an_old_revision_fails_and_changes_nothing() {
        let m = Model::new(LEASE);
        let a = m.client(n("fe1"));
        let l = a.campaign().await.unwrap().unwrap();
        let r = a.store(Guard::Leader(l), 0, &rec(1)).await.unwrap();
        a.store(Guard::Revision, r, &rec(2)).await.unwrap();
        let old = a.store(Guard::Leader(l), r, &rec(9)).await;
        assert!(matches!(old, Err(Error::Conflict(_))));
        assert_eq!(a.load().await.unwrap().records, rec(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_crashed_service_answers_nothing_and_keeps_its_data() {
        let m = Model::new(LEASE);
        let (a, b) = (m.client(n("fe1")), m.client(n("fe2")));
        let l = a.campaign().await.unwrap().unwrap();
        a.store(Guard::Leader(l), 0, &rec(1)).await.unwrap();
        assert_eq!(b.register().await.unwrap(), vec![n("fe2")]);
        m.crash();
        assert!(matches!(a.load().await, Err(Error::Unavailable(_))));
        assert!(matches!(
            a.store(Guard::Leader(l), 1, &rec(2)).await,
            Err(Error::Unavailable(_))
        ));
        tokio::time::advance(LEASE * 2).await;
        m.restart();
        assert_eq!(a.load().await.unwrap().records, rec(1));
        // Leases ran on while it was down: b's registration lapsed, and a's
        // leadership too (b may win it now).
        assert_eq!(a.register().await.unwrap(), vec![n("fe1")]);
        assert!(b.campaign().await.unwrap().is_some());
    }
}
