//! The coordination boundary: where the view records live, and who may
//! change them.
//!
//! A front end is the view service of both groups. With one front end the
//! records live on its own disk ([`Builtin`], the default of `pygmy up` and
//! the embedded [`Store`](crate::Store)); with several, they live in a
//! coordination service such as etcd, and the front ends share them through
//! a [`Coordinator`]. The trait names no etcd type, so an etcd client (in
//! pygmy-net) implements it as well as the built-in record file and the
//! simulation's model ([`model::Model`]) do.
//!
//! # What a front end does with it
//!
//! - **Records with a revision.** [`Coordinator::load`] gives the records
//!   of both groups and their revision; every successful
//!   [`Coordinator::store`] makes a new, higher one.
//! - **Views change only by compare-and-swap** on that revision: a store
//!   whose expected revision is not the current one fails with
//!   [`Error::Conflict`] and changes nothing; the front end reloads and
//!   decides again. So two front ends can never install different views of
//!   one epoch: the second store of an epoch was decided from an older
//!   revision and fails.
//! - **One leader.** [`Coordinator::campaign`] takes or renews a lease on
//!   leadership; only the leader runs the view service's decisions (new
//!   views from the heartbeats). A view change is stored under
//!   [`Guard::Leader`]: the compare-and-swap also checks that the lease it
//!   names is still the leading one (in etcd, one transaction compares the
//!   leader key's create revision and the records' mod revision), so a
//!   deposed leader — its lease expired, or another took over — cannot
//!   change a view, whatever its own clock believes.
//! - **Confirmations** (a new primary's `ViewReady`) may reach any front
//!   end and are stored under [`Guard::Revision`]: the compare-and-swap on
//!   the revision alone. That is safe: a confirmation chooses nothing, it
//!   records that the primary of the *current* view has synchronised that
//!   view's members, and the revision check makes sure the view it names
//!   is still the current one.
//! - **Live front ends.** [`Coordinator::register`] keeps this front end in
//!   the set of live front ends for a lease period and returns that set
//!   (for the catalog primary's invalidation acknowledgements, see
//!   "Many front ends" in docs/DESIGN.md).
//! - **Changes by others.** Every front end, the leader too, reloads the
//!   records every heartbeat round ([`Coordinator::load`], a poll; an
//!   implementation may answer it from a watch) and installs a newer
//!   revision: a confirmation may have been stored by another.
//!
//! # What an implementation must give
//!
//! 1. `load` and `store` are linearizable: a `load` that starts after a
//!    `store` returned `Ok` sees that store's revision or a later one.
//! 2. `store(guard, expected, records)` applies atomically iff the current
//!    revision is `expected` and, for [`Guard::Leader`], the named
//!    leadership is still held (its lease has not expired and no other
//!    campaign won since). It then returns the new revision, which is
//!    greater than `expected`. Otherwise it changes nothing and returns
//!    [`Error::Conflict`].
//! 3. At most one leadership is held at any instant of the coordinator's
//!    clock; `campaign` returns `Some` only to its holder. A leadership
//!    expires one lease period ([`Coordinator::lease`]) after the last
//!    successful `campaign` of its holder; another front end's `campaign`
//!    may win only after that. Terms grow: a new leadership's `term` is
//!    greater than every earlier one's.
//! 4. Any other error (the coordinator is unreachable, timed out) means
//!    *unknown*: a `store` may or may not have applied. The caller reloads
//!    before it decides again; it does not announce a view whose store
//!    failed. Reads and writes of clients go on under the views the front
//!    end holds; only view changes wait for the coordinator.
//!
//! # Caveats
//!
//! - Replicas send `ViewReady` to the front end their configuration names
//!   first (`ReplicaConfig::frontend`), then to each of
//!   `ReplicaConfig::other_frontends` in turn while none takes it, so a
//!   new primary is confirmed while any front end is up. With several
//!   front ends the catalog replicas run with cache leases
//!   (`LeaseConfig`, `services/leases.rs`): invalidations go to
//!   every front end of the configuration, and the catalog primary answers
//!   a write or a read only once every front end it leased has them or
//!   has lost its lease, so each front end keeps its own cache
//!   (`FrontEndConfig::leased`). The set of front ends is the
//!   configuration's; the coordinator's registrations are not used by the
//!   replicas (they do not talk to it).

pub mod builtin;
pub mod model;

pub use builtin::Builtin;

use crate::error::{Error, Result};
use crate::types::NodeId;
use crate::view::GroupRecord;
use async_trait::async_trait;
use std::time::Duration;

/// A version of the view records: grows with every successful store.
pub type Revision = u64;

/// The view records of both groups at one revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub records: Vec<GroupRecord>,
    pub revision: Revision,
}

/// A held leadership, as [`Coordinator::campaign`] granted it. `term`
/// names it (in etcd: the leader key's create revision).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Leadership {
    pub term: u64,
}

/// What a store is conditional on, besides the expected revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// A view change: only while this leadership is still held.
    Leader(Leadership),
    /// A confirmation: the revision alone (see the module docs).
    Revision,
}

/// Where the view records live and who may change them. See the module
/// docs for the contract.
#[async_trait]
pub trait Coordinator: Send + Sync + 'static {
    /// The records and their revision (linearizable).
    async fn load(&self) -> Result<Snapshot>;

    /// Compare-and-swap: stores `records` iff the revision is `expected`
    /// and `guard` holds; returns the new revision, or
    /// [`Error::Conflict`] having changed nothing. Any other error: unknown
    /// whether it applied.
    async fn store(
        &self,
        guard: Guard,
        expected: Revision,
        records: &[GroupRecord],
    ) -> Result<Revision>;

    /// Takes the leadership if nobody holds it, or renews it if this front
    /// end does: `Some` while this front end leads, `None` while another
    /// does.
    async fn campaign(&self) -> Result<Option<Leadership>>;

    /// Marks this front end live for one lease period; returns every live
    /// front end (this one included), in name order.
    async fn register(&self) -> Result<Vec<NodeId>>;

    /// The lease period: how long a leadership or a registration lasts
    /// without renewal.
    fn lease(&self) -> Duration;
}

/// The error a failed compare-and-swap returns.
pub(crate) fn conflict(why: &str) -> Error {
    Error::Conflict(format!("view records changed: {why}"))
}
