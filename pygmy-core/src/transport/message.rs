//! The messages nodes exchange. One request enum and one response enum, so
//! a transport only has to move serialised values to a named node.
//!
//! | request | from → to |
//! |---|---|
//! | `Heartbeat` | front end → every replica (carries all current views) |
//! | `ViewReady` | new primary → front end (asks to confirm its view) |
//! | `Invalidate` | catalog primary → front end (after each commit) |
//! | `Read`, `ReadAt`, `ReadBatch` | front end → any member of a view |
//! | `Catalog` | front end (admin) or order primary → catalog primary |
//! | `Buy` | front end → order primary |
//! | `Batch` | front end → order primary (buys), order primary → catalog primary (reservations): see `coalesce` |
//! | `StartView`, `Fetch` | replica ↔ replica (replication, resync, adoption) |

use crate::error::Error;
use crate::state::command::{BuyStatus, CatalogCommand, CatalogOutcome, Entry, Order};
use crate::state::{Snapshot, State};
use crate::types::{Book, CacheKey, Epoch, Group, ItemId, LogPos, Lsn, NodeId, OrderId, RequestId};
use crate::view::View;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// Liveness probe. Carries the current view of every group, so replicas
    /// learn new views (and where the other group's primary is) from it,
    /// and the disk identity the view record holds for each member of a
    /// confirmed view, so a replica whose disk is not that one knows it is
    /// recovering (`None` from anyone but the view service: tools and
    /// checks that only want a status).
    Heartbeat {
        views: Vec<View>,
        #[serde(default)]
        disks: Option<BTreeMap<NodeId, u64>>,
        /// The front end sending it (`None` from tools and checks). A
        /// catalog primary with cache leases (`LeaseConfig`)
        /// grants that front end a lease in its answer (see
        /// `services/leases.rs`).
        #[serde(default)]
        from: Option<NodeId>,
    },
    /// The primary of `epoch` has synced its backups and asks the view
    /// service to record the view as confirmed before it serves writes.
    ViewReady {
        group: Group,
        epoch: Epoch,
        commit: Lsn,
        /// The disk identity of each member, as it pulled the whole log:
        /// the view record keeps them, so the view service knows which
        /// members' disks hold the committed entries.
        #[serde(default)]
        disks: BTreeMap<NodeId, u64>,
        /// Whether the primary's own log end is uncertain (it restarted and
        /// has not yet learnt a commit point from a primary since) as it
        /// asks: the front end judges the confirmation on this, not on its
        /// last heartbeat of the primary, which may predate a restart.
        /// `None` from a primary of an older build: the front end falls back
        /// to the heartbeat.
        #[serde(default)]
        uncertain: Option<bool>,
    },
    /// Committed catalog changes: drop these cache keys; `lsn` is the commit.
    Invalidate {
        keys: Vec<CacheKey>,
        lsn: Lsn,
        /// With cache leases: current values of keys changed earlier, each
        /// read at a released commit point (see `services/leases.rs`,
        /// "Refreshes"); the front end takes each as the answer of a read
        /// at that lsn. Empty without leases.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        refresh: Vec<Refresh>,
    },
    /// A read of committed state, served by any member of the view at its
    /// commit point, whatever that is (for tools and checks).
    Read(Query),
    /// A read of committed state at a commit point of at least `min`: the
    /// front end's reads (see "Fresh reads" in `frontend/mod.rs`). A replica
    /// whose commit is behind `min` waits briefly for it, then declines
    /// (`Unavailable`), so the front end asks another member.
    ReadAt { query: Query, min: Lsn },
    /// Several reads answered at once, from one state at a commit point of
    /// at least `min` (see `batcher`): only queries
    /// [`Query::batchable`].
    ReadBatch { queries: Vec<Query>, min: Lsn },
    /// A catalog write, served by the catalog primary once committed.
    Catalog(CatalogCommand),
    /// A buy, served by the order primary, exactly once per request id.
    Buy {
        request: RequestId,
        item: ItemId,
        qty: u64,
    },
    /// Several requests in one RPC, each handled as if it had come alone,
    /// side by side (see `transport::coalesce`): at most
    /// [`coalesce::MAX_BATCH`](crate::transport::coalesce::MAX_BATCH), no
    /// batch inside.
    Batch { requests: Vec<Request> },
    /// New primary → backup: accept `view` (fencing the old primary) and
    /// report your log end.
    StartView { view: View },
    /// Replication, resync and adoption, all pulled: "send me the entries
    /// after `after`". `after` is the requester's durable log end, so for a
    /// backup it doubles as its acknowledgement to the primary. `commit` is
    /// the commit lsn the requester knows; with `wait_ms` > 0 the primary
    /// holds the request until it has something new (long poll).
    Fetch {
        epoch: Epoch,
        from: NodeId,
        after: LogPos,
        commit: Lsn,
        limit: usize,
        wait_ms: u64,
        /// How far the side files of the asker's state go (bytes, see
        /// `StateMachine::mark`: the order archive's length): a snapshot
        /// sent back carries only what follows it. Named `archived` on the
        /// wire, as before the state-machine trait.
        #[serde(default, rename = "archived")]
        mark: u64,
        /// The asker's disk identity: a new one means its earlier
        /// acknowledgements no longer hold.
        #[serde(default)]
        disk: u64,
        /// The asker's disk is new or was set aside: it wants the whole
        /// committed state (a snapshot), not entries after `after`.
        #[serde(default)]
        rebuild: bool,
    },
}

/// A cache key's value read at `lsn` (the last change of the key at or
/// before it), pushed by a leased catalog primary once `lsn` is released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refresh {
    pub key: CacheKey,
    pub value: QueryResult,
    pub lsn: Lsn,
}

/// A read query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    Search {
        topic: String,
    },
    Lookup {
        id: ItemId,
    },
    AllBooks,
    Order {
        id: OrderId,
    },
    Orders,
    /// The status of a buy by request id (None if unknown).
    BuyStatus {
        request: RequestId,
    },
    /// The whole committed state (internal: for checks and resync tools).
    Dump,
}

impl Query {
    /// Whether the query may share an RPC with others (a
    /// [`Request::ReadBatch`]): it is answered at once and small. The front
    /// end's batcher sends only these in a batch; a replica refuses a batch
    /// holding any other.
    pub fn batchable(&self) -> bool {
        matches!(self, Query::Lookup { .. } | Query::Search { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueryResult {
    Books(Vec<Book>),
    Book(Option<Book>),
    Order(Option<Order>),
    Orders(Vec<Order>),
    BuyStatus(Option<BuyStatus>),
    State(Box<State>),
}

/// A replica's answer to a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub node: NodeId,
    pub group: Group,
    /// Epoch of the view this replica has accepted.
    pub epoch: Epoch,
    /// True when this replica is the primary of `epoch` and serves writes.
    pub serving: bool,
    /// True when this replica has finished loading and is not mid-resync.
    pub ready: bool,
    /// Last position in its log (durable).
    pub end: LogPos,
    /// Highest lsn it knows committed and has applied.
    pub commit: Lsn,
    /// Running digest of the commands it applied, up to `commit`: equal on
    /// replicas with equal state (see [`chain_digest`](crate::state::chain_digest)).
    pub digest: u64,
    /// Its disk's identity (see `Recovered::disk`).
    #[serde(default)]
    pub disk: u64,
    /// It restarted with data and has not resynchronised since: its log's
    /// tail may have been lost, so it may lack committed entries.
    #[serde(default)]
    pub uncertain: bool,
    /// Its disk is not the one the view record holds for it: it holds no
    /// committed entries until rebuilt from an intact member.
    #[serde(default)]
    pub recovering: bool,
    /// A cache lease granted to the front end that sent the heartbeat
    /// (see `services/leases.rs`): it may serve its cache for this many
    /// milliseconds from when it *sent* the heartbeat. 0: no lease.
    #[serde(default)]
    pub lease_ms: u64,
    /// The lease is new: the primary held no lease of that front end's
    /// just before it, so invalidations up to `commit` may not have been
    /// sent to it; it must drop its cache (at `commit`) before serving it.
    #[serde(default)]
    pub lease_new: bool,
}

/// The answer to `Fetch`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Fetched {
    /// The entries after the asked position (empty: you are caught up).
    Entries { entries: Vec<Entry>, commit: Lsn },
    /// Your log diverges: truncate it to `truncate_to` and ask again.
    Diverged { truncate_to: Lsn },
    /// You are too far behind: install this snapshot, then ask again.
    Snapshot(Box<Snapshot>),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Response {
    Ok,
    Status(ReplicaStatus),
    Read {
        result: QueryResult,
        lsn: Lsn,
    },
    /// `ReadBatch`: one result per query, in order, all at commit `lsn`.
    ReadBatch {
        results: Vec<QueryResult>,
        lsn: Lsn,
    },
    /// A committed catalog command's outcome and its commit lsn.
    Catalog {
        outcome: CatalogOutcome,
        lsn: Lsn,
    },
    /// A buy's status; `catalog_lsn` is the commit lsn of its reservation
    /// in the catalog when this call learnt it (for cache invalidation);
    /// `lsn` is the order group's commit point when it was answered (the
    /// buy's own entries are at or below it), for fresh order reads.
    Buy {
        status: BuyStatus,
        catalog_lsn: Option<Lsn>,
        #[serde(default)]
        lsn: Lsn,
    },
    /// `Batch`: one answer per request, in order.
    Batch {
        responses: Vec<Response>,
    },
    /// `StartView`: the backup accepted the view; its log ends at `end`.
    LogEnd {
        end: LogPos,
    },
    Fetched(Fetched),
    Error(Error),
}
