//! The services on top of replication: what each group does beyond
//! keeping its log and state replicated (see `replication::Service`).
//!
//! - `buy.rs`: the order group's — the buy saga across the two groups
//!   (exactly once per request id), the finisher that ends buys a crash
//!   cut off, the reconciliation a new order primary runs, order reads.
//! - `catalog.rs`: the catalog group's — catalog commands and reads, and
//!   the invalidations its primary pushes to the front ends' caches.
//! - `leases.rs`: the catalog primary's cache leases, so that several
//!   front ends may each keep a cache (the rules and why they hold).
//! - `tenure.rs`: when the order primary may answer order reads with
//!   several front ends (a deposed one must not; the rules and why).
//!
//! Replication calls them through the `Service` trait and knows nothing of
//! books, buys, orders or cache keys; they reach the replica only through
//! its service-facing methods (`Replica::submit`, `Replica::held`, …).

pub mod buy;
pub mod catalog;
pub mod leases;
pub mod tenure;

use crate::error::Result;
use crate::replication::{Replica, ReplicaConfig, Service};
use crate::state::archive::ArchiveOpener;
use crate::state::State;
use crate::storage::Storage;
use crate::transport::Transport;
use crate::types::{Clock, Group};
use std::sync::Arc;

/// The service a replica configured by `cfg` runs (its group's).
pub fn for_group<T: Transport>(cfg: &ReplicaConfig) -> Arc<dyn Service<T>> {
    match cfg.group {
        Group::Catalog => Arc::new(catalog::CatalogService::new(cfg)),
        Group::Order => Arc::new(buy::OrderService::new(cfg)),
    }
}

impl<T: Transport> Replica<T> {
    /// Starts a replica with its group's service ([`for_group`]): see
    /// [`Replica::start_with`].
    pub fn start(
        cfg: ReplicaConfig,
        transport: Arc<T>,
        storage: Box<dyn Storage>,
        initial: State,
        archive: Option<ArchiveOpener>,
        clock: Clock,
    ) -> Result<Arc<Self>> {
        let service = for_group(&cfg);
        Replica::start_with(cfg, transport, storage, initial, archive, clock, service)
    }
}
