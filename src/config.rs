//! A cluster's configuration: every node's address, the replicas of each
//! group, the tokens, where data lives, and the timings. `pygmy up` writes
//! the one it uses as `pygmy.toml` in its data folder, so it can be copied to
//! run nodes on machines of their own (`pygmy node --config FILE --name N`).

use pygmy_core::unstable::frontend::FrontEndConfig;
use pygmy_core::unstable::replication::ReplicaConfig;
use pygmy_core::unstable::types::{Group, NodeId};
use pygmy_net::Limits;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// One node: its name and `host:port`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub name: String,
    pub addr: String,
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
    pub frontend: NodeSpec,
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
        let spec = |name: String, port: u16| NodeSpec {
            name,
            addr: format!("127.0.0.1:{port}"),
        };
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
            frontend: spec("frontend".into(), base_port),
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

    /// Checks what serde cannot: names unique, at least one replica each.
    pub fn validate(&self) -> Result<(), String> {
        if self.catalog.is_empty() || self.order.is_empty() {
            return Err("each group needs at least one replica".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut ports: BTreeMap<(String, u16), &str> = BTreeMap::new();
        for n in self.nodes() {
            if !seen.insert(n.name.clone()) {
                return Err(format!("node name {:?} is used twice", n.name));
            }
            // Two nodes on one host and port cannot both listen; say so now
            // rather than when the second one fails to bind.
            if let Some((host, port)) = n.addr.rsplit_once(':') {
                let Ok(port) = port.parse::<u16>() else {
                    return Err(format!(
                        "node {} has address {:?}; its port is not a number from 0 to 65535",
                        n.name, n.addr
                    ));
                };
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
            if n.addr.parse::<std::net::SocketAddr>().is_err() && !n.addr.contains(':') {
                return Err(format!(
                    "node {} has address {:?}; expected host:port",
                    n.name, n.addr
                ));
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

    /// Every node, front end first.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeSpec> {
        std::iter::once(&self.frontend)
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

    pub fn frontend_config(&self) -> FrontEndConfig {
        let ids = |v: &[NodeSpec]| v.iter().map(|n| NodeId::new(&n.name)).collect();
        let mut cfg = FrontEndConfig::new(
            NodeId::new(&self.frontend.name),
            ids(&self.catalog),
            ids(&self.order),
        );
        cfg.heartbeat_interval = Duration::from_millis(self.heartbeat_ms);
        cfg.misses_for_down = self.misses_for_down;
        cfg.cache_capacity = self.cache_capacity;
        cfg
    }

    pub fn replica_config(&self, name: &str, group: Group) -> ReplicaConfig {
        ReplicaConfig::new(NodeId::new(name), group, NodeId::new(&self.frontend.name))
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
        Self::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        let cfg: ClusterConfig = toml::from_str(text).map_err(|e| e.to_string())?;
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
