//! A cluster's configuration: every node's address, the replicas of each
//! group, the tokens, where data lives, and the timings. `pygmy up` writes
//! the one it uses as `pygmy.toml` in its data folder; `pygmy init --hosts`
//! writes one for nodes on machines (or containers) of their own, run with
//! `pygmy node --config FILE --name N` (see docs/DEPLOY.md).
//!
//! # Addresses
//!
//! Each node has an `advertise` address, the `host:port` every other node
//! and client dials (a hostname, a service name or an IP), and optionally a
//! `listen` address, what the node binds (`0.0.0.0:8011` in a container,
//! whose own address its peers do not use). Without `listen` a node binds
//! its advertised address, as on one machine. (`addr` is read as
//! `advertise`, as configurations written before the two were apart.)
//!
//! # Front ends and the coordinator
//!
//! `[[frontends]]` lists any number of front ends; every one serves every
//! route. The first is the one replicas send their `ViewReady` to first
//! (they try the others in turn when it does not answer). A file written before several front ends existed has one
//! `[frontend]` section instead; it still loads, as the only front end.
//!
//! `[coordinator]` says where the view records live: `kind = "builtin"`
//! (the default: the one front end's own disk) or `kind = "etcd"` with the
//! `endpoints` of an etcd cluster (its client URLs), which several front
//! ends need: they share the records there and elect one of them, with a
//! lease of `lease_ms`, to run the view service (see
//! `pygmy_core::unstable::frontend::coordination`).
//!
//! With more than one front end, every front end keeps its cache under a
//! *cache lease* from the catalog primary (`pygmy_core`'s
//! `services/leases.rs`): the catalog replicas know every front end of
//! `[[frontends]]`, push invalidations to each, and the primary answers a
//! write or a read only once every front end it leased has the
//! invalidations or has lost its lease. The lease is four heartbeat
//! intervals (`heartbeat_ms`), with a tenth of it as drift margin; reads
//! go to each group's primary.
//!
//! # Paths
//!
//! A node keeps its data in its `data` folder if it has one, else in
//! `data_dir/NAME/`. Relative paths (`data_dir`, a node's `data`,
//! `catalog_file`) are taken from the folder of the configuration file on
//! the machine that runs the node, so one file serves every machine.

use pygmy_core::unstable::frontend::FrontEndConfig;
use pygmy_core::unstable::replication::ReplicaConfig;
use pygmy_core::unstable::services::{leases::LeaseConfig, ServiceConfig};
use pygmy_core::unstable::types::{Group, NodeId};
use pygmy_net::Limits;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// One node: its name, where it is reached and where it listens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    /// The `host:port` other nodes and clients dial.
    #[serde(rename = "advertise", alias = "addr")]
    pub addr: String,
    /// The `host:port` this node binds (default: `addr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// This node's data folder (default: `data_dir/NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
}

impl NodeSpec {
    /// A node listening where it is reached.
    pub fn new(name: impl Into<String>, addr: impl Into<String>) -> Self {
        NodeSpec {
            name: name.into(),
            addr: addr.into(),
            listen: None,
            data: None,
        }
    }

    /// The address this node binds.
    pub fn listen_addr(&self) -> &str {
        self.listen.as_deref().unwrap_or(&self.addr)
    }
}

/// Checks that `addr` is `host:port` with a port from 0 to 65535, naming
/// node `name` and the setting (`what`) otherwise.
fn check_host_port(name: &str, what: &str, addr: &str) -> Result<u16, String> {
    let bad = |why: &str| format!("node {name} has {what} {addr:?}; {why}");
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(bad("expected host:port"));
    };
    if host.trim_matches(['[', ']']).is_empty() {
        return Err(bad("the host is empty (expected host:port)"));
    }
    port.parse::<u16>()
        .map_err(|_| bad("its port is not a number from 0 to 65535"))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Where each node keeps its data (`<data_dir>/<name>/`).
    pub data_dir: PathBuf,
    /// Shared secret of the internal replica API.
    pub token: String,
    /// Secret for admin changes (price, restock, add book).
    pub admin_token: String,
    /// Every front end, in order (see the module docs). Read also from a
    /// lone `[frontend]` section (files written before there could be
    /// several); always written as `[[frontends]]`.
    #[serde(default)]
    pub frontends: Vec<NodeSpec>,
    /// A file's lone `[frontend]` section; [`ClusterConfig::from_toml`]
    /// moves it to the front of `frontends`, so it is `None` in a loaded
    /// configuration.
    #[serde(default, skip_serializing)]
    frontend: Option<NodeSpec>,
    /// Where the view records live (see the module docs).
    #[serde(default)]
    pub coordinator: CoordinatorConfig,
    pub catalog: Vec<NodeSpec>,
    pub order: Vec<NodeSpec>,
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    #[serde(default = "default_misses")]
    pub misses_for_down: u32,
    #[serde(default = "default_cache")]
    pub cache_capacity: usize,
    /// `false` turns the original's restock-by-10 on a sold-out buy off.
    #[serde(default = "default_true")]
    pub restock_on_empty: bool,
    /// A JSON file of books (`[{"id","title","cost","count","topic"}, …]`)
    /// that catalog replicas start from instead of the original's seven.
    /// Read only when a replica's data folder is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_file: Option<PathBuf>,
    /// Each node's tokio worker threads, by role.
    #[serde(default)]
    pub threads: Threads,
    /// What every node's listener allows each client.
    #[serde(default)]
    pub limits: ListenerLimits,
}

/// Where the front ends keep the view records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum CoordinatorConfig {
    /// The one front end's own disk (`DIR/frontend/views`).
    #[default]
    Builtin,
    /// An etcd cluster, shared by every front end.
    Etcd {
        /// The members' client URLs (`http://host:2379`).
        endpoints: Vec<String>,
        /// The prefix of Pygmy's keys, so that one etcd can serve several
        /// stores.
        #[serde(default = "default_etcd_prefix")]
        prefix: String,
        /// The leader's (and each front end's registration) lease. etcd
        /// counts whole seconds, with a minimum of about 1.5 election
        /// timeouts (2 s at etcd's default timing). A leader that dies is
        /// replaced within about two leases.
        #[serde(default = "default_lease_ms")]
        lease_ms: u64,
    },
}

fn default_etcd_prefix() -> String {
    pygmy_net::etcd::DEFAULT_PREFIX.to_string()
}
fn default_lease_ms() -> u64 {
    2000
}

impl CoordinatorConfig {
    /// An etcd coordinator on `endpoints` with the default prefix and lease.
    pub fn etcd(endpoints: Vec<String>) -> Self {
        CoordinatorConfig::Etcd {
            endpoints,
            prefix: default_etcd_prefix(),
            lease_ms: default_lease_ms(),
        }
    }
}

/// Limits on every listener, the front end's and the replicas' (see
/// `pygmy_net::server` for what each bounds and why the defaults).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerLimits {
    /// Time from a request's first byte to the end of its headers.
    pub header_timeout_ms: u64,
    /// Time a keep-alive connection waits for its next request.
    pub idle_timeout_ms: u64,
    /// Time a request's body may take to arrive.
    pub body_timeout_ms: u64,
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Longest request head (request line and headers).
    pub max_header_bytes: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        let limits = Limits::default();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        ListenerLimits {
            header_timeout_ms: ms(limits.header_timeout),
            idle_timeout_ms: ms(limits.idle_timeout),
            body_timeout_ms: ms(limits.body_timeout),
            max_connections: limits.max_connections,
            max_header_bytes: limits.max_header_bytes,
        }
    }
}

impl ListenerLimits {
    pub fn to_limits(&self) -> Limits {
        Limits {
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            body_timeout: Duration::from_millis(self.body_timeout_ms),
            max_connections: self.max_connections,
            max_header_bytes: self.max_header_bytes,
        }
    }
}

/// The most worker threads a node may be given (a typo like `catalog =
/// 10000` would otherwise start that many threads).
const MAX_THREADS: usize = 256;

/// Tokio worker threads of each kind of node; 0 is one per core.
///
/// A catalog replica's work per request is a map lookup or a reservation,
/// and its fsyncs run off the worker: one worker serves it, and a second
/// only adds wake-ups (measured in docs/BENCHMARKS.md: about a fifth less CPU
/// per read served, and no change in buys). The front end and the order
/// replicas (the ledger, the busiest node under buys) use every core.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Threads {
    pub frontend: usize,
    pub catalog: usize,
    pub order: usize,
}

impl Default for Threads {
    fn default() -> Self {
        Threads {
            frontend: 0,
            catalog: 1,
            order: 0,
        }
    }
}

fn default_heartbeat_ms() -> u64 {
    // The original probed every second; a quicker probe makes failover
    // quicker on a LAN, at a negligible cost.
    250
}
fn default_misses() -> u32 {
    2
}
fn default_cache() -> usize {
    10_000
}
fn default_true() -> bool {
    true
}

impl ClusterConfig {
    /// The original's layout: front end on `base_port`, then catalog and
    /// order replicas on the following ports, all on 127.0.0.1.
    pub fn local(
        data_dir: PathBuf,
        replicas: usize,
        base_port: u16,
        token: String,
        admin_token: String,
    ) -> Self {
        let spec = |name: String, port: u16| NodeSpec::new(name, format!("127.0.0.1:{port}"));
        let catalog = (0..replicas)
            .map(|i| spec(format!("catalog-{}", i + 1), base_port + 1 + i as u16))
            .collect();
        let order = (0..replicas)
            .map(|i| {
                spec(
                    format!("order-{}", i + 1),
                    base_port + 1 + (replicas + i) as u16,
                )
            })
            .collect();
        ClusterConfig {
            data_dir,
            token,
            admin_token,
            frontends: vec![spec("frontend".into(), base_port)],
            frontend: None,
            coordinator: CoordinatorConfig::Builtin,
            catalog,
            order,
            heartbeat_ms: default_heartbeat_ms(),
            misses_for_down: default_misses(),
            cache_capacity: default_cache(),
            restock_on_empty: true,
            catalog_file: None,
            threads: Threads::default(),
            limits: ListenerLimits::default(),
        }
    }

    /// Adds front ends `frontend-2` … `frontend-N` on the ports after the
    /// last node's (the first keeps its name and port), for `init` and `up`
    /// with `--frontends N`.
    pub fn add_frontends(&mut self, count: usize) {
        let last = self
            .nodes()
            .filter_map(|n| n.addr.rsplit_once(':'))
            .filter_map(|(_, p)| p.parse::<u16>().ok())
            .max()
            .unwrap_or(8010);
        let host = self
            .frontend()
            .addr
            .rsplit_once(':')
            .map_or("127.0.0.1".to_string(), |(h, _)| h.to_string());
        let mut port = last;
        while self.frontends.len() < count {
            // A port past u16::MAX is left to `validate` to refuse.
            port = port.saturating_add(1);
            let name = format!("frontend-{}", self.frontends.len() + 1);
            self.frontends
                .push(NodeSpec::new(name, format!("{host}:{port}")));
        }
    }

    /// The first front end: where replicas send first, and what tools
    /// that need one front end (`chaos`, `check`, `up`'s health) ask.
    pub fn frontend(&self) -> &NodeSpec {
        // `validate` makes sure there is one; `local` makes one.
        &self.frontends[0]
    }

    /// Whether `name` is one of the front ends.
    pub fn is_frontend(&self, name: &str) -> bool {
        self.frontends.iter().any(|n| n.name == name)
    }

    /// Checks what serde cannot: names unique, at least one replica each.
    pub fn validate(&self) -> Result<(), String> {
        if self.catalog.is_empty() || self.order.is_empty() {
            return Err("each group needs at least one replica".into());
        }
        if self.frontend.is_some() {
            return Err(
                "both [frontend] and [[frontends]]: list every front end under [[frontends]]"
                    .into(),
            );
        }
        if self.frontends.is_empty() {
            return Err("no front end: add a [[frontends]] section".into());
        }
        match &self.coordinator {
            CoordinatorConfig::Builtin if self.frontends.len() > 1 => {
                return Err(format!(
                    "{} front ends need a shared coordinator: set [coordinator] kind = \"etcd\" \
                     with its endpoints (the builtin one keeps the views on one front end's disk)",
                    self.frontends.len()
                ));
            }
            CoordinatorConfig::Etcd {
                endpoints,
                lease_ms,
                ..
            } => {
                if endpoints.is_empty() || endpoints.iter().any(|e| e.trim().is_empty()) {
                    return Err("coordinator: etcd needs at least one endpoint, none empty".into());
                }
                if *lease_ms < 1000 {
                    return Err(format!(
                        "coordinator.lease_ms = {lease_ms}: etcd leases are whole seconds, at least 1000"
                    ));
                }
            }
            CoordinatorConfig::Builtin => {}
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut ports: BTreeMap<(String, u16), &str> = BTreeMap::new();
        for n in self.nodes() {
            if !seen.insert(n.name.clone()) {
                return Err(format!("node name {:?} is used twice", n.name));
            }
            // Two nodes on one host and port cannot both listen; say so now
            // rather than when the second one fails to bind.
            let port = check_host_port(&n.name, "address", &n.addr)?;
            if let Some(listen) = &n.listen {
                check_host_port(&n.name, "listen address", listen)?;
            }
            let host = n.addr.rsplit_once(':').map_or("", |(h, _)| h);
            let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
            if let Some(other) = ports.insert((host, port), &n.name) {
                if port != 0 {
                    return Err(format!(
                        "nodes {other} and {} both use address {} (port {port} twice)",
                        n.name, n.addr
                    ));
                }
            }
        }
        if self.token.is_empty() || self.admin_token.is_empty() {
            return Err("tokens must not be empty".into());
        }
        if self.heartbeat_ms == 0 {
            return Err("heartbeat_ms must be at least 1".into());
        }
        self.limits.to_limits().validate()?;
        let t = &self.threads;
        for (role, n) in [
            ("frontend", t.frontend),
            ("catalog", t.catalog),
            ("order", t.order),
        ] {
            if n > MAX_THREADS {
                return Err(format!(
                    "threads.{role} = {n}: at most {MAX_THREADS} (0 is one per core)"
                ));
            }
        }
        Ok(())
    }

    /// Every node, front ends first.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeSpec> {
        self.frontends
            .iter()
            .chain(self.catalog.iter())
            .chain(self.order.iter())
    }

    pub fn node(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes().find(|n| n.name == name)
    }

    /// The group a replica belongs to (None for the front end).
    pub fn group_of(&self, name: &str) -> Option<Group> {
        if self.catalog.iter().any(|n| n.name == name) {
            Some(Group::Catalog)
        } else if self.order.iter().any(|n| n.name == name) {
            Some(Group::Order)
        } else {
            None
        }
    }

    /// The worker threads `name` runs with (0: one per core).
    pub fn threads_of(&self, name: &str) -> usize {
        match self.group_of(name) {
            Some(Group::Catalog) => self.threads.catalog,
            Some(Group::Order) => self.threads.order,
            None => self.threads.frontend,
        }
    }

    pub fn addrs(&self) -> BTreeMap<NodeId, String> {
        self.nodes()
            .map(|n| (NodeId::new(&n.name), n.addr.clone()))
            .collect()
    }

    /// Front end `name`'s configuration. With several front ends: reads
    /// at the primary, the cache under leases (see the module docs).
    pub fn frontend_config(&self, name: &str) -> FrontEndConfig {
        let ids = |v: &[NodeSpec]| v.iter().map(|n| NodeId::new(&n.name)).collect();
        let mut cfg = FrontEndConfig::new(NodeId::new(name), ids(&self.catalog), ids(&self.order));
        cfg.heartbeat_interval = Duration::from_millis(self.heartbeat_ms);
        cfg.misses_for_down = self.misses_for_down;
        cfg.cache_capacity = self.cache_capacity;
        if self.frontends.len() > 1 {
            cfg.leased = true;
            cfg.primary_reads = true;
        }
        cfg
    }

    /// The catalog primary's cache lease with several front ends (none with
    /// one), and its drift margin: see the module docs.
    pub fn cache_lease(&self) -> Option<(Duration, Duration)> {
        (self.frontends.len() > 1).then(|| {
            let lease = Duration::from_millis(self.heartbeat_ms.saturating_mul(4));
            (lease, lease / 10)
        })
    }

    /// Where node `name` keeps its data: its own `data` folder, or
    /// `data_dir/NAME`.
    pub fn node_dir(&self, name: &str) -> PathBuf {
        self.node(name)
            .and_then(|n| n.data.clone())
            .unwrap_or_else(|| self.data_dir.join(name))
    }

    /// Makes the relative paths absolute, from `base` (the folder of the
    /// configuration file).
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.data_dir);
        if let Some(file) = &mut self.catalog_file {
            resolve(file);
        }
        for n in self
            .frontends
            .iter_mut()
            .chain(self.catalog.iter_mut())
            .chain(self.order.iter_mut())
        {
            if let Some(data) = &mut n.data {
                resolve(data);
            }
        }
    }

    pub fn replica_config(&self, name: &str, group: Group) -> ReplicaConfig {
        let mut cfg =
            ReplicaConfig::new(NodeId::new(name), group, NodeId::new(&self.frontend().name));
        cfg.other_frontends = self.frontends[1..]
            .iter()
            .map(|n| NodeId::new(&n.name))
            .collect();
        cfg
    }

    /// The services' settings of every replica: cache leases with several
    /// front ends, the defaults otherwise.
    pub fn service_config(&self) -> ServiceConfig {
        ServiceConfig {
            leases: self.cache_lease().map(|(lease, margin)| LeaseConfig {
                lease,
                margin,
                unsafe_no_wait: false,
                unsafe_untenured_reads: false,
            }),
            ..ServiceConfig::default()
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a configuration file, naming the file and the problem in the
    /// error (missing, unreadable, not UTF-8, not valid TOML, not valid).
    pub fn read(path: &std::path::Path) -> Result<Self, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            format!(
                "{}: not a text file (invalid UTF-8 at byte {}); a pygmy.toml is UTF-8 TOML",
                path.display(),
                e.utf8_error().valid_up_to()
            )
        })?;
        let mut cfg = Self::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let base = std::fs::canonicalize(&base).unwrap_or(base);
        cfg.resolve_paths(&base);
        Ok(cfg)
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        let mut cfg: ClusterConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        if cfg.frontends.is_empty() {
            // A file of one front end, written before `[[frontends]]`.
            cfg.frontends.extend(cfg.frontend.take());
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Reads a catalog file: a JSON list of books.
pub fn read_books(
    path: &std::path::Path,
) -> Result<Vec<pygmy_core::unstable::types::Book>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the catalog file {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: expected a JSON list of books {{\"id\",\"title\",\"cost\",\"count\",\"topic\"}}: {e}",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> ClusterConfig {
        ClusterConfig::local("data".into(), 2, 8000, "t".into(), "a".into())
    }

    #[test]
    fn threads_default_to_one_per_catalog_replica_and_every_core_elsewhere() {
        let cfg = local();
        assert_eq!(cfg.threads_of("frontend"), 0);
        assert_eq!(cfg.threads_of("catalog-1"), 1);
        assert_eq!(cfg.threads_of("catalog-2"), 1);
        assert_eq!(cfg.threads_of("order-2"), 0);
    }

    #[test]
    fn threads_round_trip_and_a_file_without_them_gets_the_defaults() {
        let mut cfg = local();
        cfg.threads.order = 3;
        let text = cfg.to_toml();
        assert!(text.contains("[threads]"), "{text}");
        assert_eq!(ClusterConfig::from_toml(&text).unwrap(), cfg);

        // A pygmy.toml written before `threads` existed.
        let cut = text[..text.find("[threads]").unwrap()].to_string();
        let old = ClusterConfig::from_toml(&cut).unwrap();
        assert_eq!(old.threads, Threads::default());
        assert_eq!(old.threads_of("order-1"), 0);
    }

    #[test]
    fn an_unknown_thread_setting_is_named() {
        let text = format!(
            "{}\n[threads]\nreplica = 2\n",
            local().to_toml().split("[threads]").next().unwrap()
        );
        let err = ClusterConfig::from_toml(&text).unwrap_err();
        assert!(err.contains("replica"), "{err}");
    }

    #[test]
    fn a_port_used_twice_is_found_at_load() {
        let mut cfg = local();
        cfg.order[1].addr = cfg.catalog[0].addr.clone();
        let err = ClusterConfig::from_toml(&cfg.to_toml()).unwrap_err();
        assert!(err.contains("catalog-1 and order-2"), "{err}");
        // The same port on two hosts is fine.
        cfg.order[1].addr = "10.0.0.2:8001".into();
        assert!(cfg.validate().is_ok());
        cfg.order[1].addr = "127.0.0.1:99999".into();
        assert!(cfg.validate().unwrap_err().contains("port"));
    }

    #[test]
    fn listen_and_advertise_are_apart_and_addr_still_reads() {
        let mut cfg = local();
        cfg.catalog[0].listen = Some("0.0.0.0:8011".into());
        cfg.catalog[0].addr = "catalog-1:8011".into();
        let text = cfg.to_toml();
        assert!(text.contains("advertise = \"catalog-1:8011\""), "{text}");
        assert!(text.contains("listen = \"0.0.0.0:8011\""), "{text}");
        let back = ClusterConfig::from_toml(&text).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(back.catalog[0].listen_addr(), "0.0.0.0:8011");
        assert_eq!(back.catalog[1].listen_addr(), "127.0.0.1:8002");
        // A file written when `addr` was both.
        let old = local().to_toml().replace("advertise =", "addr =");
        assert_eq!(ClusterConfig::from_toml(&old).unwrap(), local());
        cfg.order[0].listen = Some("0.0.0.0".into());
        let err = cfg.validate().unwrap_err();
        assert!(err.contains("order-1") && err.contains("listen"), "{err}");
    }

    #[test]
    fn relative_paths_are_taken_from_the_configuration_folder() {
        let mut cfg = local();
        cfg.order[1].data = Some("disks/two".into());
        cfg.catalog_file = Some("books.json".into());
        cfg.resolve_paths(std::path::Path::new("/etc/pygmy"));
        assert_eq!(cfg.data_dir, PathBuf::from("/etc/pygmy/data"));
        assert_eq!(
            cfg.node_dir("order-1"),
            PathBuf::from("/etc/pygmy/data/order-1")
        );
        assert_eq!(
            cfg.node_dir("order-2"),
            PathBuf::from("/etc/pygmy/disks/two")
        );
        assert_eq!(
            cfg.catalog_file,
            Some(PathBuf::from("/etc/pygmy/books.json"))
        );
        // Absolute paths stay as they are.
        cfg.data_dir = "/srv/pygmy".into();
        cfg.resolve_paths(std::path::Path::new("/elsewhere"));
        assert_eq!(
            cfg.node_dir("frontend"),
            PathBuf::from("/srv/pygmy/frontend")
        );
    }

    #[test]
    fn limits_default_round_trip_and_zero_is_refused() {
        let mut cfg = local();
        let text = cfg.to_toml();
        assert!(text.contains("[limits]"), "{text}");
        assert_eq!(cfg.limits.to_limits(), Limits::default());
        cfg.limits.max_connections = 0;
        assert!(cfg.validate().unwrap_err().contains("max_connections"));
        cfg.limits = ListenerLimits::default();
        cfg.limits.header_timeout_ms = 0;
        assert!(cfg.validate().unwrap_err().contains("header_timeout_ms"));
    }

    #[test]
    fn a_file_that_is_not_utf8_is_named_with_the_problem() {
        let dir = std::env::temp_dir().join(format!("pygmy-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pygmy.toml");
        std::fs::write(&path, b"data_dir = \"\xff\"\n").unwrap();
        let err = ClusterConfig::read(&path).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(err.contains("pygmy.toml") && err.contains("UTF-8"), "{err}");
    }

    /// A `pygmy.toml` as `up` wrote them before several front ends.
    const ONE_FRONTEND: &str = r#"
data_dir = "data"
token = "t"
admin_token = "a"

[frontend]
name = "frontend"
advertise = "127.0.0.1:8000"

[[catalog]]
name = "catalog-1"
advertise = "127.0.0.1:8001"

[[order]]
name = "order-1"
advertise = "127.0.0.1:8002"
"#;

    #[test]
    fn a_file_with_one_frontend_section_still_loads_as_one_builtin_front_end() {
        let cfg = ClusterConfig::from_toml(ONE_FRONTEND).unwrap();
        assert_eq!(cfg.frontends.len(), 1);
        assert_eq!(cfg.frontend().addr, "127.0.0.1:8000");
        assert_eq!(cfg.coordinator, CoordinatorConfig::Builtin);
        assert!(cfg.is_frontend("frontend") && cfg.group_of("frontend").is_none());
        // Written back as `[[frontends]]`, it reads the same.
        let text = cfg.to_toml();
        assert!(text.contains("[[frontends]]"), "{text}");
        assert!(!text.contains("[frontend]"), "{text}");
        assert_eq!(ClusterConfig::from_toml(&text).unwrap(), cfg);
        // Its one front end caches and balances reads, as before.
        let fe = cfg.frontend_config("frontend");
        assert!(!fe.primary_reads && !fe.leased);
        assert_eq!(fe.cache_capacity, default_cache());
        let replica = cfg.replica_config("catalog-1", Group::Catalog);
        assert!(replica.other_frontends.is_empty());
        assert_eq!(cfg.service_config().leases, None);
    }

    #[test]
    fn several_front_ends_on_etcd_round_trip_and_cache_under_leases() {
        let mut cfg = local();
        cfg.coordinator = CoordinatorConfig::etcd(vec!["http://127.0.0.1:2379".into()]);
        cfg.add_frontends(3);
        let names: Vec<(&str, &str)> = cfg
            .frontends
            .iter()
            .map(|n| (n.name.as_str(), n.addr.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("frontend", "127.0.0.1:8000"),
                ("frontend-2", "127.0.0.1:8005"),
                ("frontend-3", "127.0.0.1:8006")
            ]
        );
        let text = cfg.to_toml();
        assert!(text.contains("kind = \"etcd\""), "{text}");
        assert_eq!(ClusterConfig::from_toml(&text).unwrap(), cfg);
        let fe = cfg.frontend_config("frontend-2");
        assert_eq!(fe.me, NodeId::new("frontend-2"));
        assert!(fe.primary_reads && fe.leased);
        assert_eq!(fe.cache_capacity, default_cache());
        let replica = cfg.replica_config("catalog-1", Group::Catalog);
        assert_eq!(replica.frontend, NodeId::new("frontend"));
        let lease = Duration::from_millis(cfg.heartbeat_ms * 4);
        let leases = cfg
            .service_config()
            .leases
            .expect("several front ends lease");
        assert_eq!((leases.lease, leases.margin), (lease, lease / 10));
        assert_eq!(
            replica.other_frontends,
            [NodeId::new("frontend-2"), NodeId::new("frontend-3")]
        );
    }

    #[test]
    fn several_front_ends_need_etcd_and_a_file_cannot_have_both_sections() {
        let mut cfg = local();
        cfg.add_frontends(2);
        let err = ClusterConfig::from_toml(&cfg.to_toml()).unwrap_err();
        assert!(
            err.contains("2 front ends") && err.contains("etcd"),
            "{err}"
        );

        let both = format!(
            "{ONE_FRONTEND}\n[[frontends]]\nname = \"frontend-2\"\nadvertise = \"127.0.0.1:8009\"\n"
        );
        let err = ClusterConfig::from_toml(&both).unwrap_err();
        assert!(
            err.contains("[frontend]") && err.contains("[[frontends]]"),
            "{err}"
        );

        let none = ONE_FRONTEND.replace(
            "[frontend]\nname = \"frontend\"\nadvertise = \"127.0.0.1:8000\"\n",
            "",
        );
        let err = ClusterConfig::from_toml(&none).unwrap_err();
        assert!(err.contains("no front end"), "{err}");

        cfg.coordinator = CoordinatorConfig::Etcd {
            endpoints: Vec::new(),
            prefix: "/p/".into(),
            lease_ms: 2000,
        };
        assert!(cfg.validate().unwrap_err().contains("endpoint"));
        cfg.coordinator = CoordinatorConfig::Etcd {
            endpoints: vec!["127.0.0.1:2379".into()],
            prefix: "/p/".into(),
            lease_ms: 500,
        };
        assert!(cfg.validate().unwrap_err().contains("lease_ms"));
    }

    #[test]
    fn too_many_threads_is_refused_with_the_setting_named() {
        let mut cfg = local();
        cfg.threads.catalog = MAX_THREADS;
        assert!(cfg.validate().is_ok());
        cfg.threads.catalog = MAX_THREADS + 1;
        let err = cfg.validate().unwrap_err();
        assert!(err.starts_with("threads.catalog = 257"), "{err}");
    }
}
