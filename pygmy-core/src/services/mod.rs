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

/// The services' own settings, beside a replica's [`ReplicaConfig`]:
/// each group's service reads its part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceConfig {
    /// The order group's: the buy's deadline, the finisher's interval.
    pub order: buy::OrderConfig,
    /// The catalog group's cache leases, with several front ends; `None`
    /// (one front end, the default): no leases, the invalidations go to
    /// `ReplicaConfig::frontend` and nothing waits for them.
    pub leases: Option<leases::LeaseConfig>,
}

/// The service a replica configured by `cfg` runs (its group's), with
/// settings `services`.
pub fn for_group<T: Transport>(
    cfg: &ReplicaConfig,
    services: &ServiceConfig,
) -> Arc<dyn Service<T>> {
    match cfg.group {
        Group::Catalog => Arc::new(catalog::CatalogService::new(cfg, services.leases)),
        Group::Order => Arc::new(buy::OrderService::new(
            services.order.clone(),
            services.leases,
            cfg.hop_timeout,
        )),
    }
}

impl<T: Transport> Replica<T> {
    /// Starts a replica with its group's service ([`for_group`], set up by
    /// `services`): see [`Replica::start_with`].
    pub fn start(
        cfg: ReplicaConfig,
        services: &ServiceConfig,
        transport: Arc<T>,
        storage: Box<dyn Storage>,
        initial: State,
        archive: Option<ArchiveOpener>,
        clock: Clock,
    ) -> Result<Arc<Self>> {
        let service = for_group(&cfg, services);
        Replica::start_with(cfg, transport, storage, initial, archive, clock, service)
    }
}
