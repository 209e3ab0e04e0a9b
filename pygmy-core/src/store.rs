//! The whole replicated store in one process: a front end and the replicas
//! of both groups over the in-process transport, each on its own disk (in
//! memory, or a folder on any [`Fs`]). [`Store`] is the library's API;
//! [`Embedded`] is the same cluster with its parts in reach, for Pygmy's
//! own tests and benches (unstable).
//!
//! `crash` models a node dying: its tasks stop, it becomes unreachable, and
//! (on an in-memory disk) its disk loses every write that was not synced.
//! `restart` boots it again from that disk, as a real restart would.

use crate::error::{Error, Result};
use crate::files::memfs::MemFs;
use crate::files::record::RecordFile;
use crate::files::Fs;
use crate::frontend::{Clock, FrontEnd, FrontEndConfig, RecordStore};
use crate::replication::{DiskWait, Replica, ReplicaConfig};
use crate::services::ServiceConfig;
use crate::state::archive::{self, ArchiveOpener};
use crate::state::catalog::{Catalog, CatalogPolicy};
use crate::state::command::Order;
use crate::state::orders::OrderLedger;
use crate::state::State;
use crate::storage::logstore::LogStore;
use crate::storage::Storage;
use crate::transport::inproc::InProcTransport;
use crate::transport::Handler;
use crate::types::{Book, Group, ItemId, NodeId, OrderId};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where an embedded cluster's nodes keep their files.
pub trait Disks: Send + Sync {
    /// Opens replica `node`'s storage (with `disk_id` as its identity if
    /// the disk is new) and the opener of its order archive.
    fn open(&self, node: &NodeId, disk_id: u64) -> Result<(Box<dyn Storage>, ArchiveOpener)>;
    /// The front end's durable view records.
    fn views(&self) -> Box<dyn RecordStore>;
    /// `node` crashed: drop its unsynced writes, where the disk can.
    fn crash(&self, node: &NodeId);
    /// The identity of a new disk for `node`'s boot number `boot`.
    fn disk_id(&self, node: &NodeId, boot: u64) -> u64;
}

/// One [`MemFs`] per node: a crash loses exactly the writes not synced.
#[derive(Default)]
pub struct MemDisks {
    nodes: Mutex<BTreeMap<NodeId, MemFs>>,
}

impl MemDisks {
    fn fs(&self, node: &NodeId) -> MemFs {
        self.nodes.lock().entry(node.clone()).or_default().clone()
    }
}

impl Disks for MemDisks {
    fn open(&self, node: &NodeId, disk_id: u64) -> Result<(Box<dyn Storage>, ArchiveOpener)> {
        let fs = self.fs(node);
        let dir = format!("/{node}");
        let storage = LogStore::open(fs.clone(), dir.clone(), disk_id)?;
        Ok((Box::new(storage), archive::opener(fs, dir)))
    }

    fn views(&self) -> Box<dyn RecordStore> {
        Box::new(RecordFile::new(MemFs::new(), "/frontend/views"))
    }

    fn crash(&self, node: &NodeId) {
        self.fs(node).crash();
    }

    fn disk_id(&self, node: &NodeId, boot: u64) -> u64 {
        // Deterministic (the same run gives the same identities), and
        // different per boot: it matters only if the disk is new or was
        // found damaged.
        boot.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(
            node.0
                .bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))),
        )
    }
}

/// A folder on a file system: replica `n` in `DIR/n`, the front end's view
/// records in `DIR/frontend/views`. A crash stops a node but cannot drop
/// writes the operating system already holds (a process crash, not a power
/// loss).
pub struct FolderDisks<F: Fs + Clone> {
    fs: F,
    dir: PathBuf,
}

impl<F: Fs + Clone> FolderDisks<F> {
    pub fn new(fs: F, dir: impl Into<PathBuf>) -> Self {
        FolderDisks {
            fs,
            dir: dir.into(),
        }
    }
}

impl<F: Fs + Clone + Send + Sync + 'static> Disks for FolderDisks<F> {
    fn open(&self, node: &NodeId, disk_id: u64) -> Result<(Box<dyn Storage>, ArchiveOpener)> {
        let dir = self.dir.join(&node.0);
        let storage = LogStore::open(self.fs.clone(), &dir, disk_id)?;
        Ok((Box::new(storage), archive::opener(self.fs.clone(), dir)))
    }

    fn views(&self) -> Box<dyn RecordStore> {
        Box::new(RecordFile::new(
            self.fs.clone(),
            self.dir.join("frontend").join("views"),
        ))
    }

    fn crash(&self, _node: &NodeId) {}

    fn disk_id(&self, _node: &NodeId, _boot: u64) -> u64 {
        // A folder outlives this process: a new disk's identity must differ
        // from every earlier one on it (an emptied folder must not pass
        // for the disk the view record remembers), so it is random.
        rand::random()
    }
}

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
    /// The services' settings, the same for every replica (the buy's
    /// deadline, the finisher's interval, cache leases).
    pub services: ServiceConfig,
    /// Where the nodes keep their files.
    pub disks: Arc<dyn Disks>,
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
            services: ServiceConfig::default(),
            disks: Arc::new(MemDisks::default()),
        }
    }
}

struct Node {
    group: Group,
    replica: Option<Arc<Replica<InProcTransport>>>,
    /// How many times it booted (its disk identity differs per boot).
    boots: u64,
}

pub struct Embedded {
    /// The network's shared handle: each node sends through its own
    /// endpoint of it (so partitions and the tap know the sender).
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
        let frontend = FrontEnd::new(
            opts.frontend.clone(),
            transport.endpoint(opts.frontend.me.clone()),
            opts.disks.views(),
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
            self.opts.disks.crash(node);
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
        n.boots += 1;
        let disk_id = self.opts.disks.disk_id(node, n.boots);
        let (storage, archive) = self.opts.disks.open(node, disk_id)?;
        let initial = match n.group {
            Group::Catalog => State::Catalog(self.opts.catalog.clone()),
            Group::Order => State::Orders(OrderLedger::new()),
        };
        let mut cfg = ReplicaConfig::new(node.clone(), n.group, self.opts.frontend.me.clone());
        // The store runs on its caller's runtime: wait on the disk as fits it.
        (cfg.append_wait, cfg.snapshot_wait) =
            DiskWait::for_runtime(&tokio::runtime::Handle::current());
        (self.opts.replica)(&mut cfg);
        let replica = Replica::start(
            cfg,
            &self.opts.services,
            self.transport.endpoint(node.clone()),
            storage,
            initial,
            Some(archive),
            self.clock.clone(),
        )?;
        self.transport
            .register(node.clone(), replica.clone() as Arc<dyn Handler>);
        n.replica = Some(replica);
        Ok(())
    }

    /// Stops everything, then waits until no node's task holds it any
    /// more — so none writes to its disk again, and another cluster may
    /// open the same files. `Unavailable` if some work still runs after
    /// `timeout`.
    pub async fn stop(&self, timeout: Duration) -> Result<()> {
        self.shutdown();
        let replicas: Vec<_> = {
            let mut nodes = self.nodes.lock();
            nodes
                .values_mut()
                .filter_map(|n| n.replica.take())
                .collect()
        };
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Only this function (and the front end's owner) hold them once
            // every task has ended.
            let busy = replicas.iter().find(|r| Arc::strong_count(r) > 1);
            let busy = busy.map(|r| r.id().clone()).or_else(|| {
                (Arc::strong_count(&self.frontend) > 1).then(|| self.opts.frontend.me.clone())
            });
            let Some(busy) = busy else {
                return Ok(());
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Unavailable(format!(
                    "{busy} still has work running after it was stopped"
                )));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
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

/// A Pygmy store running in this process: a front end, and `n` replicas
/// each of the catalog and of the order ledger, on the current tokio
/// runtime. Build one with [`Store::builder`].
///
/// Every operation goes through the front end, as a client's would: reads
/// reflect every write acknowledged before they were sent, a buy happens
/// exactly once per idempotency key, and the store keeps serving while at
/// least one replica of each group is up.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> pygmy_core::Result<()> {
/// let store = pygmy_core::Store::builder().start().await?;
/// let books = store.search("distributed systems").await?;
/// assert!(books.iter().any(|b| b.id == 2));
///
/// let order = store.buy(2, 1).await?;
/// assert_eq!(order.item_id, 2);
/// assert_eq!(store.lookup(2).await?.count, order.remaining);
/// # Ok(())
/// # }
/// ```
pub struct Store {
    cluster: Embedded,
}

/// How to build a [`Store`]: its replica count, its books, where it keeps
/// its files. Start from [`Store::builder`].
pub struct StoreBuilder {
    opts: EmbeddedOptions,
    books: Option<Vec<Book>>,
    restock_on_empty: Option<u64>,
    ready_timeout: Duration,
}

impl Default for StoreBuilder {
    fn default() -> Self {
        StoreBuilder {
            opts: EmbeddedOptions::default(),
            books: None,
            restock_on_empty: CatalogPolicy::default().restock_on_empty,
            ready_timeout: Duration::from_secs(10),
        }
    }
}

impl StoreBuilder {
    /// Replicas per group (at least 1; default 2, as the original). With
    /// `n`, each group survives `n - 1` crashes.
    pub fn replicas(mut self, n: usize) -> Self {
        self.opts.replicas = n;
        self
    }

    /// The books the store starts with (default: the original's seven
    /// books in two topics, 100 copies each). Used only by a new store: a
    /// durable one that already holds data keeps its own.
    pub fn books(mut self, books: Vec<Book>) -> Self {
        self.books = Some(books);
        self
    }

    /// `Some(n)`: a buy that finds its book sold out fails and restocks it
    /// by `n` copies (the original's behaviour; the default is 10). `None`:
    /// a sold-out book stays sold out until restocked.
    pub fn restock_on_empty(mut self, copies: Option<u64>) -> Self {
        self.restock_on_empty = copies;
        self
    }

    /// Keeps every node's files in memory (the default). A crashed replica
    /// loses exactly the writes it had not synced; everything is gone when
    /// the store is dropped.
    pub fn in_memory(mut self) -> Self {
        self.opts.disks = Arc::new(MemDisks::default());
        self
    }

    /// Keeps every node's files in the folder `dir` on `fs`: replica `n`
    /// in `dir/n`, the front end's views in `dir/frontend/views`. A store
    /// started again on the same folder carries on where the last one
    /// stopped.
    ///
    /// pygmy-core writes no files itself: for a real folder pass
    /// `pygmy_net::stdfs::StdFs` (see the `durable` example); a
    /// [`MemFs`](crate::MemFs) keeps the "folder" in memory, shared by
    /// every store started on it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> pygmy_core::Result<()> {
    /// use pygmy_core::{MemFs, Store};
    /// use std::time::Duration;
    ///
    /// let disk = MemFs::new();
    /// let store = Store::builder().durable(disk.clone(), "/shop").start().await?;
    /// let order = store.buy_once(3, 2, "order-1").await?;
    /// store.stop(Duration::from_secs(5)).await?;
    ///
    /// // A new store on the same files: the order is there, and retrying
    /// // the buy under its key does not buy again.
    /// let store = Store::builder().durable(disk, "/shop").start().await?;
    /// assert_eq!(store.order(order.id).await?, order);
    /// assert_eq!(store.buy_once(3, 2, "order-1").await?.id, order.id);
    /// assert_eq!(store.lookup(3).await?.count, 98);
    /// # Ok(())
    /// # }
    /// ```
    pub fn durable<F: Fs + Clone + Send + Sync + 'static>(
        mut self,
        fs: F,
        dir: impl Into<PathBuf>,
    ) -> Self {
        self.opts.disks = Arc::new(FolderDisks::new(fs, dir));
        self
    }

    /// How often the front end probes every replica (default 50 ms). A
    /// replica missing a few probes in a row is replaced in its view.
    pub fn heartbeat_interval(mut self, every: Duration) -> Self {
        self.opts.frontend.heartbeat_interval = every;
        self
    }

    /// How long [`start`](Self::start) waits for both groups to be ready
    /// (default 10 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Changes any of the cluster's settings (timeouts, snapshot interval,
    /// deliberately broken modes). **Unstable**: [`EmbeddedOptions`]
    /// follows Pygmy's internals and may change in any release.
    pub fn unstable_options(mut self, change: impl FnOnce(&mut EmbeddedOptions)) -> Self {
        change(&mut self.opts);
        self
    }

    /// Starts every node on the current tokio runtime and waits until both
    /// groups serve. Errors: `InvalidInput` for a replica count of 0 or a
    /// bad book list, `Storage` for a folder that cannot be opened,
    /// `Unavailable` when the store is not ready in time.
    pub async fn start(mut self) -> Result<Store> {
        if self.opts.replicas == 0 {
            return Err(Error::InvalidInput(
                "a store needs at least one replica per group".into(),
            ));
        }
        let policy = CatalogPolicy {
            restock_on_empty: self.restock_on_empty,
            ..CatalogPolicy::default()
        };
        let books = match self.books.take() {
            Some(books) => books,
            None => Catalog::builtin().all(),
        };
        self.opts.catalog = Catalog::from_books(books, policy)
            .map_err(|r| Error::InvalidInput(format!("the store's books: {r:?}")))?;
        let cluster = Embedded::start(self.opts)?;
        cluster.wait_ready(self.ready_timeout).await?;
        Ok(Store { cluster })
    }
}

impl Store {
    /// A builder with the defaults: in memory, two replicas per group, the
    /// original's books.
    pub fn builder() -> StoreBuilder {
        StoreBuilder::default()
    }

    /// The books of `topic`, in id order (none for an unknown topic).
    pub async fn search(&self, topic: &str) -> Result<Vec<Book>> {
        self.cluster.frontend.search(topic).await
    }

    /// Book `id`, with its copies left and its cost. `NotFound` if none.
    pub async fn lookup(&self, id: ItemId) -> Result<Book> {
        self.cluster.frontend.lookup(id).await
    }

    /// Every book, in id order.
    pub async fn books(&self) -> Result<Vec<Book>> {
        self.cluster.frontend.all_books().await
    }

    /// Buys `qty` copies of book `id`. `NotFound` for an unknown book,
    /// `OutOfStock` when fewer copies are left. If it fails with an error
    /// that [`is_retryable`](Error::is_retryable) — the outcome may be unknown —
    /// retry with [`buy_once`](Self::buy_once) under one key to be sure of
    /// buying once.
    pub async fn buy(&self, id: ItemId, qty: u64) -> Result<Order> {
        Ok(self.cluster.frontend.buy(id, qty, None).await?.order)
    }

    /// Buys `qty` copies of book `id` at most once for `key` (1 to 200
    /// characters): repeating the call, after any failure or success,
    /// gives the same single order. `KeyReused` if `key` was used for
    /// another book or quantity.
    pub async fn buy_once(&self, id: ItemId, qty: u64, key: &str) -> Result<Order> {
        let receipt = self.cluster.frontend.buy(id, qty, Some(key.to_string()));
        Ok(receipt.await?.order)
    }

    /// Order `id`. `NotFound` if none.
    pub async fn order(&self, id: OrderId) -> Result<Order> {
        self.cluster.frontend.order(id).await
    }

    /// Adds `qty` copies of book `id`; returns the book after.
    pub async fn restock(&self, id: ItemId, qty: u64) -> Result<Book> {
        self.cluster.frontend.restock(id, qty, None).await
    }

    /// Sets book `id`'s cost; returns the book after.
    pub async fn set_price(&self, id: ItemId, cost: u64) -> Result<Book> {
        self.cluster.frontend.set_price(id, cost, None).await
    }

    /// Adds a new book. `Conflict` if its id is taken.
    pub async fn add_book(&self, book: Book) -> Result<Book> {
        self.cluster.frontend.add_book(book, None).await
    }

    /// The replicas' names, catalog first (`catalog-1`, …, `order-1`, …).
    pub fn replicas(&self) -> Vec<NodeId> {
        self.cluster.replicas()
    }

    /// The replica the front end currently sends `group`'s writes to, if
    /// the group has a view.
    pub fn primary(&self, group: Group) -> Option<NodeId> {
        let health = self.cluster.frontend.health();
        let record = health.views.iter().find(|r| r.current.group == group)?;
        Some(record.current.primary.clone())
    }

    /// Crashes a replica, for experiments: its tasks stop, it becomes
    /// unreachable, and (in memory) its disk loses every write it had not
    /// synced. The store goes on while another replica of its group is up.
    /// `NotFound` for an unknown name.
    pub fn crash(&self, replica: &NodeId) -> Result<()> {
        self.known(replica)?;
        self.cluster.crash(replica);
        Ok(())
    }

    /// Boots a crashed replica again from its disk; it catches up with
    /// its group and rejoins it (a no-op if it is running). `NotFound` for
    /// an unknown name.
    pub fn restart(&self, replica: &NodeId) -> Result<()> {
        self.cluster.restart(replica)
    }

    /// Waits until both groups serve again (after a crash or a restart),
    /// `Unavailable` if not within `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        self.cluster.wait_ready(timeout).await
    }

    /// Stops every node and waits until none of them touches its files any
    /// more, so another store may be started on the same folder. Whatever
    /// was acknowledged is on the disks. `Unavailable` if some node's work
    /// still runs after `timeout`.
    pub async fn stop(self, timeout: Duration) -> Result<()> {
        self.cluster.stop(timeout).await
    }

    /// Stops every node without waiting (dropping the store does too):
    /// work in flight may still end a moment later.
    pub fn shutdown(&self) {
        self.cluster.shutdown();
    }

    /// The cluster inside, with its front end, replicas and transport in
    /// reach. **Unstable**: it follows Pygmy's internals.
    pub fn unstable(&self) -> &Embedded {
        &self.cluster
    }

    fn known(&self, replica: &NodeId) -> Result<()> {
        if self.cluster.replicas().contains(replica) {
            Ok(())
        } else {
            Err(Error::NotFound(format!("no replica {replica}")))
        }
    }
}
