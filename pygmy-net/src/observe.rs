//! What a node shows about itself: [`Figures`], read by the metrics
//! exposition (`GET /metrics`) and the operations page's status route
//! (`GET /ops/status`).
//!
//! Figures are read when asked for, from what the node already keeps (the
//! front end's views, heartbeat answers and cache counters; a replica's own
//! status and pending buys), so observing costs nothing between scrapes and
//! nothing here decides anything. They carry no secret: no token, no
//! idempotency key, no order.
//!
//! Replication lag is measured by the front end, from heartbeat answers:
//! for each member of a group's current view, the primary's commit lsn
//! minus the member's (entries it has yet to apply). It is as fresh as the
//! last heartbeat (one interval).

use pygmy_core::unstable::frontend::reads::cache::CacheStats;
use pygmy_core::unstable::frontend::FrontEnd;
use pygmy_core::unstable::replication::Replica;
use pygmy_core::unstable::state::State;
use pygmy_core::unstable::transport::message::ReplicaStatus;
use pygmy_core::unstable::transport::Transport;
use pygmy_core::unstable::types::{Group, Lsn, NodeId};
use pygmy_core::unstable::view::GroupRecord;
use serde::Serialize;

/// A node's figures (see the module docs). Fields a node does not have are
/// empty or `None`: a replica has no views or cache, a front end no status
/// of its own.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Figures {
    /// `frontend` or `replica`.
    pub role: &'static str,
    /// The front end's view record of each group.
    pub views: Vec<GroupRecord>,
    /// The front end's knowledge of each replica.
    pub replicas: Vec<ReplicaFigures>,
    /// The front end's cache counters.
    pub cache: Option<CacheStats>,
    /// A replica's own status, as it answers a heartbeat.
    pub status: Option<ReplicaStatus>,
    /// An order replica's pending buys (begun, not finished).
    pub pending_buys: Option<u64>,
    /// The newest heartbeat-log lines (oldest first), where the node keeps
    /// them (the front end under `pygmy node`/`pygmy up`).
    pub log: Vec<String>,
}

/// One replica as the front end sees it.
#[derive(Clone, Debug, Serialize)]
pub struct ReplicaFigures {
    pub node: NodeId,
    pub group: Group,
    /// The heartbeat detector counts it up.
    pub up: bool,
    /// `primary` or `backup` of the group's current view, or `out`.
    pub role: &'static str,
    /// Its last heartbeat answer while up.
    pub status: Option<ReplicaStatus>,
    /// The primary's commit lsn minus this replica's, when both are known.
    pub lag: Option<Lsn>,
}

/// A node whose figures can be read.
pub trait Observe: Send + Sync + 'static {
    fn figures(&self) -> Figures;
}

impl<T: Transport> Observe for FrontEnd<T> {
    fn figures(&self) -> Figures {
        let health = self.health();
        let statuses = self.replica_status();
        let mut replicas = Vec::new();
        for (node, (group, status)) in &statuses {
            let view = health
                .views
                .iter()
                .map(|r| &r.current)
                .find(|v| v.group == *group);
            let role = match view {
                Some(v) if &v.primary == node => "primary",
                Some(v) if v.backups.contains(node) => "backup",
                _ => "out",
            };
            let primary_commit = view
                .and_then(|v| statuses.get(&v.primary))
                .and_then(|(_, s)| s.as_ref())
                .map(|s| s.commit);
            let lag = match (primary_commit, status) {
                (Some(p), Some(s)) => Some(p.saturating_sub(s.commit)),
                _ => None,
            };
            replicas.push(ReplicaFigures {
                node: node.clone(),
                group: *group,
                up: health.up.contains(node),
                role,
                status: status.clone(),
                lag,
            });
        }
        Figures {
            role: "frontend",
            views: health.views,
            replicas,
            cache: Some(self.cache_stats()),
            ..Figures::default()
        }
    }
}

impl<T: Transport> Observe for Replica<T> {
    fn figures(&self) -> Figures {
        let status = self.status();
        let pending_buys = match status.group {
            // The state is persistent (structurally shared): the copy is O(1).
            Group::Order => match self.state() {
                State::Orders(ledger) => Some(ledger.pending_count() as u64),
                State::Catalog(_) => None,
            },
            Group::Catalog => None,
        };
        Figures {
            role: "replica",
            status: Some(status),
            pending_buys,
            ..Figures::default()
        }
    }
}
