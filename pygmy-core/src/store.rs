//! The whole replicated store in one process: a front end and the replicas
//! of both groups over the in-process transport, each on its own in-memory
//! disk. For embedding Pygmy as a library, for tests, and for benches.
//!
//! `crash` models a node dying: its tasks stop, it becomes unreachable, and
//! its disk loses every write that was not synced. `restart` boots it again
//! from that disk, as a real restart would.

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::frontend::{Clock, FrontEnd, FrontEndConfig};
use crate::inproc::InProcTransport;
use crate::logstore::LogStore;
use crate::memfs::MemFs;
use crate::orders::OrderLedger;
use crate::record::RecordFile;
use crate::replica::{Replica, ReplicaConfig};
use crate::state::State;
use crate::transport::Handler;
use crate::types::{Group, NodeId};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How to build an embedded cluster.
#[derive(Clone)]
pub struct EmbeddedOptions {
    /// Replicas per group.
    pub replicas: usize,
    /// The catalog every catalog replica starts from.
    pub catalog: Catalog,
    pub frontend: FrontEndConfig,
    /// Applied to every replica's config (timeouts, snapshot interval).
    pub replica: fn(&mut ReplicaConfig),
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        let mut frontend = FrontEndConfig::new(NodeId::new("frontend"), vec![], vec![]);
        // In one process a probe costs microseconds: probe often, so a dead
        // node is replaced quickly.
        frontend.heartbeat_interval = Duration::from_millis(50);
        frontend.hop_timeout = Duration::from_millis(500);
        EmbeddedOptions {
            replicas: 2,
            catalog: Catalog::builtin(),
            frontend,
            replica: |_| {},
        }
    }
}

struct Node {
    group: Group,
    fs: MemFs,
    replica: Option<Arc<Replica<InProcTransport>>>,
    /// How many times it booted (its disk identity differs per boot).
    boots: u64,
}

pub struct Embedded {
    pub transport: Arc<InProcTransport>,
    pub frontend: Arc<FrontEnd<InProcTransport>>,
    opts: EmbeddedOptions,
    nodes: Mutex<BTreeMap<NodeId, Node>>,
    clock: Clock,
}

/// The name of replica `i` (from 1) of a group: `catalog-1`, `order-2`.
pub fn replica_name(group: Group, i: usize) -> NodeId {
    NodeId(format!("{group}-{i}"))
}

impl Embedded {
    /// Starts every node on the current tokio runtime.
    pub fn start(mut opts: EmbeddedOptions) -> Result<Embedded> {
        let catalog: Vec<_> = (1..=opts.replicas)
            .map(|i| replica_name(Group::Catalog, i))
            .collect();
        let order: Vec<_> = (1..=opts.replicas)
            .map(|i| replica_name(Group::Order, i))
            .collect();
        opts.frontend.catalog = catalog.clone();
        opts.frontend.order = order.clone();
        let transport = InProcTransport::new();
        let clock: Clock = Arc::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0)
        });
        let records = RecordFile::new(MemFs::new(), "/frontend/views");
        let frontend = FrontEnd::new(
            opts.frontend.clone(),
            transport.clone(),
            Box::new(records),
            clock.clone(),
        )?;
        transport.register(
            opts.frontend.me.clone(),
            frontend.clone() as Arc<dyn Handler>,
        );
        let mut nodes = BTreeMap::new();
        for (group, names) in [(Group::Catalog, catalog), (Group::Order, order)] {
            for name in names {
                nodes.insert(
                    name,
                    Node {
                        group,
                        fs: MemFs::new(),
                        replica: None,
                        boots: 0,
                    },
                );
            }
        }
        let cluster = Embedded {
            transport,
            frontend,
            opts,
            nodes: Mutex::new(nodes),
            clock,
        };
        let names: Vec<_> = cluster.nodes.lock().keys().cloned().collect();
        for name in names {
            cluster.restart(&name)?;
        }
        cluster.frontend.start();
        Ok(cluster)
    }

    /// Waits until both groups have a confirmed view.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let health = self.frontend.health();
            if health.views.len() == 2 && health.views.iter().all(|r| r.is_confirmed()) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Unavailable("cluster not ready in time".into()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The replica names, catalog first.
    pub fn replicas(&self) -> Vec<NodeId> {
        self.nodes.lock().keys().cloned().collect()
    }

    /// The running replica `node`, if it is up.
    pub fn replica(&self, node: &NodeId) -> Option<Arc<Replica<InProcTransport>>> {
        self.nodes.lock().get(node).and_then(|n| n.replica.clone())
    }

    /// Kills a replica: unreachable, tasks stopped, unsynced writes lost.
    pub fn crash(&self, node: &NodeId) {
        let mut nodes = self.nodes.lock();
        if let Some(n) = nodes.get_mut(node) {
            self.transport.unregister(node);
            if let Some(r) = n.replica.take() {
                r.shutdown();
            }
            n.fs.crash();
        }
    }

    /// Boots a replica from its disk (a no-op if it is running).
    pub fn restart(&self, node: &NodeId) -> Result<()> {
        let mut nodes = self.nodes.lock();
        let Some(n) = nodes.get_mut(node) else {
            return Err(Error::NotFound(format!("no replica {node}")));
        };
        if n.replica.is_some() {
            return Ok(());
        }
        // Each boot's disk identity differs (it matters only if the disk
        // is new or found damaged).
        n.boots += 1;
        let disk_id = n.boots.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(
            node.0
                .bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))),
        );
        let storage = LogStore::open(n.fs.clone(), format!("/{node}"), disk_id)?;
        let initial = match n.group {
            Group::Catalog => State::Catalog(self.opts.catalog.clone()),
            Group::Order => State::Orders(OrderLedger::new()),
        };
        let mut cfg = ReplicaConfig::new(node.clone(), n.group, self.opts.frontend.me.clone());
        (self.opts.replica)(&mut cfg);
        let replica = Replica::start(
            cfg,
            self.transport.clone(),
            Box::new(storage),
            initial,
            self.clock.clone(),
        )?;
        self.transport
            .register(node.clone(), replica.clone() as Arc<dyn Handler>);
        n.replica = Some(replica);
        Ok(())
    }

    /// Stops everything.
    pub fn shutdown(&self) {
        self.frontend.shutdown();
        let names = self.replicas();
        for name in names {
            if let Some(r) = self.replica(&name) {
                r.shutdown();
            }
        }
        self.transport.clear();
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.shutdown();
    }
}
