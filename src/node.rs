//! Runs one node of a cluster on real TCP and real files: the front end or a
//! replica, as its configuration says, until `shutdown` resolves; and sets
//! up its log.
//!
//! # Logs
//!
//! A node logs to standard error (`pygmy up` sends it to `DIR/NAME.log`),
//! one line per event: time (UTC), node, level, the module that logged it,
//! the event and its fields:
//!
//! ```text
//! 2026-11-25T14:42:20.411806Z frontend  WARN heartbeat: replica is down node=catalog-1
//! ```
//!
//! `RUST_LOG` sets what is logged (`info` when unset; `RUST_LOG=debug`,
//! `RUST_LOG=pygmy_core::unstable::replication=debug,info`, ...). The front end also
//! writes its heartbeat lines — replicas going up or down, new and
//! confirmed views — to `heartbeat.log` in the data folder, like the
//! original's heartbeat log, whatever `RUST_LOG` says, and keeps the
//! newest in memory for the operations page (see [`recent`](crate::recent)).
//!
//! Requests are logged under the target `access` with their request id
//! (see pygmy-net's `app` module): buys and admin changes, and every
//! error answer, at `info`; successful reads at `debug`
//! (`RUST_LOG=info,access=debug`). The same id appears in the log line of
//! every node the request reached:
//!
//! ```text
//! 2026-12-01T01:33:53.632774Z catalog-1  INFO access: request=trace-me-1 internal="catalog" status=200 micros=1444
//! 2026-12-01T01:33:53.633440Z frontend   INFO access: request=trace-me-1 method=POST path=/books/1/buy status=201 micros=2804
//! 2026-12-01T01:33:53.633310Z order-1    INFO access: request=trace-me-1 internal="buy" status=200 micros=2447
//! ```
//!
//! `PYGMY_LOG_FORMAT=json` writes standard error as JSON lines instead
//! (tracing-subscriber's JSON format, with a `node` field added); the
//! heartbeat log file keeps the text format.

use crate::config::{ClusterConfig, CoordinatorConfig};
use pygmy_core::unstable::files::record::RecordFile;
use pygmy_core::unstable::frontend::coordination::{Coordinator, Snapshot};
use pygmy_core::unstable::frontend::{Clock, FrontEnd};
use pygmy_core::unstable::replication::{DiskWait, Replica};
use pygmy_core::unstable::state::archive;
use pygmy_core::unstable::state::catalog::{Catalog, CatalogPolicy};
use pygmy_core::unstable::state::orders::OrderLedger;
use pygmy_core::unstable::state::State;
use pygmy_core::unstable::storage::logstore::LogStore;
use pygmy_core::unstable::transport::message::ReplicaStatus;
use pygmy_core::unstable::transport::Handler;
use pygmy_core::unstable::types::{Group, NodeId};
use pygmy_net::etcd::{Etcd, EtcdConfig, EtcdCoordinator};
use pygmy_net::stdfs::StdFs;
use pygmy_net::{serve, tokio_transport, App, Figures, Observe, PublicApi, Readiness};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::fmt::format::{Format, Full, Json, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The target the front end logs heartbeat transitions and views under.
pub const HEARTBEAT_TARGET: &str = "heartbeat";

/// Prefixes each line with the time and the node's name, then formats the
/// rest as tracing-subscriber's default format does. Every process runs one
/// node, so a name on every line is what lets merged logs be read.
struct NodeFormat {
    node: String,
    rest: Format<Full, ()>,
}

impl<S, N> FormatEvent<S, N> for NodeFormat
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        SystemTime.format_time(&mut writer)?;
        write!(writer, " {:<9} ", self.node)?;
        self.rest.format_event(ctx, writer, event)
    }
}

/// tracing-subscriber's JSON lines with the node's name as their first
/// field (`{"node":"frontend","timestamp":...}`), for the same reason.
struct NodeJson {
    /// The name, already a JSON string.
    node: String,
    rest: Format<Json, SystemTime>,
}

impl<S, N> FormatEvent<S, N> for NodeJson
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    Format<Json, SystemTime>: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        self.rest.format_event(ctx, Writer::new(&mut line), event)?;
        // The line is a JSON object: `{` then its fields.
        match line.strip_prefix('{') {
            Some(fields) => write!(writer, "{{\"node\":{},{fields}", self.node),
            None => writer.write_str(&line),
        }
    }
}

/// Sets up node `node`'s log (see the module doc). `heartbeat_log`: a file
/// that also receives the heartbeat lines (the front end's). Fails only if
/// that file cannot be opened; a malformed `RUST_LOG` is reported and
/// replaced by `info`.
pub fn init_logs(node: &str, heartbeat_log: Option<&Path>) -> Result<(), String> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let format = || NodeFormat {
        node: node.to_string(),
        rest: tracing_subscriber::fmt::format().without_time(),
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("pygmy: RUST_LOG={spec:?} is not a valid filter ({e}); logging at info");
            EnvFilter::new("info")
        }),
        _ => EnvFilter::new("info"),
    };
    let json = match std::env::var("PYGMY_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") | Ok("") | Err(_) => false,
        Ok(other) => {
            return Err(format!(
                "PYGMY_LOG_FORMAT={other:?}: expected \"text\" or \"json\""
            ))
        }
    };
    let (text, json) = if json {
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .event_format(NodeJson {
                node: serde_json::to_string(node).unwrap_or_default(),
                rest: tracing_subscriber::fmt::format()
                    .json()
                    .with_current_span(false),
            })
            .with_writer(std::io::stderr)
            .with_filter(filter);
        (None, Some(layer))
    } else {
        let layer = tracing_subscriber::fmt::layer()
            .event_format(format())
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .with_filter(filter);
        (Some(layer), None)
    };
    let heartbeat = match heartbeat_log {
        None => None,
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Some(
                tracing_subscriber::fmt::layer()
                    .event_format(format())
                    .with_ansi(false)
                    .with_writer(std::sync::Mutex::new(file))
                    .with_filter(Targets::new().with_target(HEARTBEAT_TARGET, Level::INFO)),
            )
        }
    };
    let recent = crate::recent::RecentLayer
        .with_filter(Targets::new().with_target(HEARTBEAT_TARGET, Level::INFO));
    tracing_subscriber::registry()
        .with(text)
        .with(json)
        .with(heartbeat)
        .with(recent)
        .try_init()
        .map_err(|e| format!("cannot set up logging: {e}"))
}

/// The front end's figures, with the heartbeat lines this process keeps.
struct FrontEndFigures(Arc<dyn Observe>);

impl Observe for FrontEndFigures {
    fn figures(&self) -> Figures {
        let mut figures = self.0.figures();
        figures.log = crate::recent::heartbeat_lines().lines();
        figures
    }
}

/// Wall-clock milliseconds, for order timestamps.
pub fn wall_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    })
}

/// Serves node `name` of `cfg` until `shutdown` resolves.
pub async fn run_node(
    cfg: &ClusterConfig,
    name: &str,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BoxError> {
    let spec = cfg
        .node(name)
        .ok_or_else(|| format!("no node named {name:?} in the configuration"))?;
    let dir = cfg.node_dir(name);
    let transport = Arc::new(tokio_transport(cfg.addrs(), cfg.token.clone()));
    let listen = spec.listen_addr();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("{name}: cannot listen on {listen}: {e}"))?;
    let app = match cfg.group_of(name) {
        None => {
            let fe = match &cfg.coordinator {
                CoordinatorConfig::Builtin => {
                    let records = RecordFile::new(StdFs, dir.join("views"));
                    FrontEnd::new(
                        cfg.frontend_config(name),
                        transport,
                        Box::new(records),
                        wall_clock(),
                    )?
                }
                CoordinatorConfig::Etcd {
                    endpoints,
                    prefix,
                    lease_ms,
                } => {
                    let etcd = Etcd::new(EtcdConfig::new(endpoints.iter().cloned()))
                        .map_err(|e| format!("{name}: etcd: {e}"))?;
                    let coordinator = EtcdCoordinator::new(
                        Arc::new(etcd),
                        NodeId::new(name),
                        prefix,
                        Duration::from_millis(*lease_ms),
                    );
                    // Unreachable at start: begin with no views; the
                    // heartbeat loop loads them once etcd answers (and
                    // decides nothing before).
                    let initial = match coordinator.load().await {
                        Ok(snapshot) => snapshot,
                        Err(e) => {
                            tracing::warn!(target: HEARTBEAT_TARGET, error = %e, "etcd unreachable at start; views load once it answers");
                            Snapshot::default()
                        }
                    };
                    FrontEnd::with_coordinator(
                        cfg.frontend_config(name),
                        transport,
                        Arc::new(coordinator),
                        initial,
                        wall_clock(),
                    )?
                }
            };
            // The heartbeat log's first line after a (re)start: the views
            // it resumes from its durable record.
            let views: Vec<String> = fe
                .health()
                .views
                .iter()
                .map(|r| format!("{} epoch {}", r.current.group, r.current.epoch))
                .collect();
            tracing::info!(target: HEARTBEAT_TARGET, resumed = ?views, "front end started");
            fe.start();
            let probe = fe.clone();
            let readiness: Readiness = Arc::new(move || {
                let health = probe.health();
                (
                    health.is_ready(),
                    serde_json::json!({ "views": health.views.len(), "up": health.up, "down": health.down }),
                )
            });
            App::new(fe.clone() as Arc<dyn Handler>, cfg.token.clone())
                .with_observer(Arc::new(FrontEndFigures(fe.clone() as Arc<dyn Observe>)))
                .with_public(fe as Arc<dyn PublicApi>, cfg.admin_token.clone())
                .with_readiness(readiness)
        }
        Some(group) => {
            // A new or damaged disk gets a random identity (see `LogStore::open`).
            let storage = LogStore::open(StdFs, &dir, rand::random::<u64>())?;
            let initial = match group {
                Group::Catalog => {
                    let policy = CatalogPolicy {
                        restock_on_empty: cfg.restock_on_empty.then_some(10),
                        ..CatalogPolicy::default()
                    };
                    State::Catalog(initial_catalog(cfg, policy)?)
                }
                Group::Order => State::Orders(OrderLedger::new()),
            };
            let mut replica_cfg = cfg.replica_config(name, group);
            // This node, not the replica, knows the runtime it runs on.
            (replica_cfg.append_wait, replica_cfg.snapshot_wait) =
                DiskWait::for_runtime(&tokio::runtime::Handle::current());
            let replica = Replica::start(
                replica_cfg,
                &cfg.service_config(),
                transport,
                Box::new(storage),
                initial,
                Some(archive::opener(StdFs, &dir)),
                wall_clock(),
            )?;
            let probe = replica.clone();
            let readiness: Readiness = Arc::new(move || replica_readiness(&probe.status()));
            App::new(replica.clone() as Arc<dyn Handler>, cfg.token.clone())
                .with_readiness(readiness)
                .with_observer(replica as Arc<dyn Observe>)
        }
    };
    // `node` repeats the line's prefix in `pygmy node`'s log, and names the
    // node when several run in one process (examples/cluster.rs).
    tracing::info!(node = name, listen, advertise = %spec.addr, data = %dir.display(), "listening");
    serve(
        listener,
        Arc::new(app.with_limits(cfg.limits.to_limits())),
        shutdown,
    )
    .await;
    tracing::info!(node = name, "stopped");
    Ok(())
}

/// A replica's `GET /ready`: it has accepted a view, finished loading and
/// resyncing, and its disk is not being rebuilt from its peer. Until then
/// it cannot take its part in its group (it may still answer the
/// internal RPC, which is how it catches up).
pub fn replica_readiness(status: &ReplicaStatus) -> (bool, serde_json::Value) {
    let ready = status.epoch > 0 && status.ready && !status.recovering;
    let detail = serde_json::json!({
        "epoch": status.epoch,
        "serving": status.serving,
        "loaded": status.ready,
        "recovering": status.recovering,
        "commit": status.commit,
    });
    (ready, detail)
}

/// The books a catalog replica starts from: the configured file, or the
/// original's seven.
fn initial_catalog(cfg: &ClusterConfig, policy: CatalogPolicy) -> Result<Catalog, String> {
    let Some(path) = &cfg.catalog_file else {
        return Catalog::from_books(Catalog::builtin().all(), policy)
            .map_err(|e| format!("built-in catalog: {e:?}"));
    };
    let books = crate::config::read_books(path)?;
    Catalog::from_books(books, policy).map_err(|e| format!("{}: {e:?}", path.display()))
}
