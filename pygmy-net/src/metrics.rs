//! Prometheus metrics: what every node answers at `GET /metrics`, in the
//! Prometheus text exposition format (version 0.0.4), through the
//! `prometheus-client` crate.
//!
//! Two kinds of figures:
//!
//! - **Counted as they happen**, by the HTTP layer: requests by route and
//!   status and their latency, open connections, fsync latency.
//! - **Read at scrape time** from the node's [`Figures`] (views, replica
//!   commit points and lag, cache counters, pending buys), by a collector,
//!   so the store's code keeps no metric state of its own.
//!
//! The names, their labels and meanings are listed in `docs/METRICS.md`;
//! they are stable (a rename is a breaking change). Route labels are the
//! fixed names of [`route_label`], never a raw path, so a client probing
//! random paths cannot grow the label set.
//!
//! fsync latency is process-wide ([`fsync_histogram`]): one process runs
//! one node under `pygmy node` and `pygmy up`; where several nodes share a
//! process (examples, tests) they share that histogram.

use crate::api::{route, Routed};
use crate::observe::{Figures, Observe};
use crate::original;
use crate::rest;
use hyper::Method;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Latency buckets in seconds, 100 µs to 10 s: a cached read takes tens of
/// microseconds, a buy a few milliseconds (two group commits), a request
/// during a view change up to seconds.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// fsync buckets in seconds, 10 µs to 1 s (a disk with a write cache syncs
/// in tens of microseconds, a spinning one in milliseconds).
const FSYNC_BUCKETS: [f64; 12] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1, 1.0,
];

/// The labels of the request counter. Static strings and a number, so
/// counting a request allocates nothing (label values built per request as
/// strings cost the cached read path a measurable share of its CPU).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: &'static str,
    status: u16,
}

/// The labels of the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteOnly {
    route: &'static str,
}

/// One node's metrics (see the module docs).
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, prometheus_client::metrics::counter::Counter>,
    latency: Family<RouteOnly, Histogram>,
    connections: Gauge,
}

impl Metrics {
    /// A node's registry, reading its figures from `observe` at each
    /// scrape (`None`: only the HTTP and fsync figures).
    pub fn new(observe: Option<Arc<dyn Observe>>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RouteStatus, _>::default();
        registry.register(
            "pygmy_http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        let latency = Family::<RouteOnly, Histogram>::new_with_constructor(|| {
            Histogram::new(LATENCY_BUCKETS)
        });
        registry.register(
            "pygmy_http_request_duration_seconds",
            "Time from a request's head to its answer, by route",
            latency.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "pygmy_http_open_connections",
            "HTTP connections open on this node's listener",
            connections.clone(),
        );
        registry.register(
            "pygmy_fsync_duration_seconds",
            "Time of each fsync of a file or directory (this process)",
            fsync_histogram().clone(),
        );
        if let Some(observe) = observe {
            registry.register_collector(Box::new(FiguresCollector(observe)));
        }
        Metrics {
            registry,
            requests,
            latency,
            connections,
        }
    }

    /// Counts one answered request.
    pub fn request(&self, route: &'static str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RouteStatus { route, status })
            .inc();
        self.latency
            .get_or_create(&RouteOnly { route })
            .observe(took.as_secs_f64());
    }

    /// Counts an open connection until the guard is dropped.
    pub fn connection(&self) -> ConnectionGuard {
        self.connections.inc();
        ConnectionGuard(self.connections.clone())
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail; a collector's error would leave
        // a truncated page, which Prometheus reports as a parse error.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

/// Holds one open connection in the gauge.
pub struct ConnectionGuard(Gauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The process-wide fsync latency histogram (see the module docs).
pub fn fsync_histogram() -> &'static Histogram {
    static FSYNC: OnceLock<Histogram> = OnceLock::new();
    FSYNC.get_or_init(|| Histogram::new(FSYNC_BUCKETS))
}

/// The fixed label of a request's route: the names below, whatever the path
/// holds (ids are not part of the label).
pub fn route_label(method: &Method, path: &str) -> &'static str {
    fixed_label(path).unwrap_or_else(|| routed_label(&route(method, path)))
}

/// The label of a path that names one page or endpoint whatever the method
/// (`None`: the label depends on the public route, [`routed_label`]).
pub fn fixed_label(path: &str) -> Option<&'static str> {
    Some(match path {
        crate::rpc::RPC_PATH => "internal",
        "/metrics" => "metrics",
        "/" | "/index.html" => "storefront",
        "/ops" => "ops",
        "/pygmy.css" => "stylesheet",
        "/ops/status" => "ops_status",
        "/openapi.json" => "openapi",
        _ => return None,
    })
}

/// The label of a public route, as [`route`] decided it.
pub fn routed_label(routed: &Routed) -> &'static str {
    match routed {
        Routed::Original(original::Route::Search) => "search",
        Routed::Original(original::Route::Lookup) => "lookup",
        Routed::Original(original::Route::Buy) => "buy",
        Routed::Rest(r) => match r {
            rest::Route::Books => "books",
            rest::Route::AddBook => "add_book",
            rest::Route::Book(_) => "book",
            rest::Route::Buy(_) => "book_buy",
            rest::Route::Price(_) => "price",
            rest::Route::Restock(_) => "restock",
            rest::Route::Order(_) => "order",
            rest::Route::Health => "health",
        },
        Routed::OriginalFailure(_) | Routed::RestFailure(_) => "other",
    }
}

/// Reads a node's [`Figures`] at each scrape.
struct FiguresCollector(Arc<dyn Observe>);

impl fmt::Debug for FiguresCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FiguresCollector")
    }
}

/// One gauge or counter with one sample per label set.
fn samples<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: Vec<(Vec<(&'static str, String)>, M)>,
) -> Result<(), fmt::Error> {
    let Some(kind) = samples.first().map(|(_, m)| m.metric_type()) else {
        return Ok(());
    };
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in &samples {
        value.encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge(
    labels: Vec<(&'static str, String)>,
    value: i64,
) -> (Vec<(&'static str, String)>, ConstGauge) {
    (labels, ConstGauge::new(value))
}

impl Collector for FiguresCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let f: Figures = self.0.figures();
        let e = &mut encoder;
        let group = |g: pygmy_core::Group| ("group", g.to_string());
        let node = |n: &pygmy_core::NodeId| ("node", n.0.clone());

        // The front end: views, every replica as heartbeats show it, cache.
        let views = || f.views.iter();
        samples(
            e,
            "pygmy_view_epoch",
            "Epoch of each group's current view (one more per view change)",
            views()
                .map(|r| gauge(vec![group(r.current.group)], r.current.epoch as i64))
                .collect(),
        )?;
        samples(
            e,
            "pygmy_view_confirmed",
            "1 when the group's current view has been confirmed by its primary",
            views()
                .map(|r| gauge(vec![group(r.current.group)], r.is_confirmed() as i64))
                .collect(),
        )?;
        samples(
            e,
            "pygmy_view_members",
            "Members (primary and backups) of each group's current view",
            views()
                .map(|r| {
                    gauge(
                        vec![group(r.current.group)],
                        r.current.members().count() as i64,
                    )
                })
                .collect(),
        )?;
        let reps = || f.replicas.iter();
        let rl = |r: &crate::observe::ReplicaFigures| vec![node(&r.node), group(r.group)];
        samples(
            e,
            "pygmy_replica_up",
            "1 while the front end's heartbeats count the replica up",
            reps().map(|r| gauge(rl(r), r.up as i64)).collect(),
        )?;
        samples(
            e,
            "pygmy_replica_primary",
            "1 for the primary of its group's current view",
            reps()
                .map(|r| gauge(rl(r), (r.role == "primary") as i64))
                .collect(),
        )?;
        samples(
            e,
            "pygmy_replica_commit_lsn",
            "Highest lsn the replica has committed and applied (last heartbeat)",
            reps()
                .filter_map(|r| Some(gauge(rl(r), r.status.as_ref()?.commit as i64)))
                .collect(),
        )?;
        samples(
            e,
            "pygmy_replica_lag_entries",
            "Committed entries the replica has yet to apply: primary's commit lsn minus its own",
            reps()
                .filter_map(|r| Some(gauge(rl(r), r.lag? as i64)))
                .collect(),
        )?;
        if let Some(c) = f.cache {
            for (name, help, value) in [
                (
                    "pygmy_cache_hits",
                    "Cache lookups that found a value",
                    c.hits,
                ),
                (
                    "pygmy_cache_misses",
                    "Cache lookups that found nothing",
                    c.misses,
                ),
                ("pygmy_cache_fills", "Values stored in the cache", c.fills),
                (
                    "pygmy_cache_rejected_fills",
                    "Fills dropped as older than an invalidation or the entry",
                    c.rejected_fills,
                ),
                (
                    "pygmy_cache_evictions",
                    "Values evicted to make room",
                    c.evictions,
                ),
                (
                    "pygmy_cache_invalidations",
                    "Keys invalidated",
                    c.invalidations,
                ),
            ] {
                samples(e, name, help, vec![(vec![], ConstCounter::new(value))])?;
            }
        }

        // A replica: its own state.
        if let Some(s) = &f.status {
            let l = || vec![node(&s.node), group(s.group)];
            for (name, help, value) in [
                (
                    "pygmy_replica_epoch",
                    "Epoch of the view this replica has accepted",
                    s.epoch as i64,
                ),
                (
                    "pygmy_replica_serving",
                    "1 while this replica is the primary of its view and serves writes",
                    s.serving as i64,
                ),
                (
                    "pygmy_replica_applied_lsn",
                    "Highest lsn this replica has committed and applied",
                    s.commit as i64,
                ),
                (
                    "pygmy_replica_log_end_lsn",
                    "Last lsn durably in this replica's log",
                    s.end.lsn as i64,
                ),
                (
                    "pygmy_replica_recovering",
                    "1 while this replica's disk is being rebuilt from an intact member",
                    s.recovering as i64,
                ),
            ] {
                samples(e, name, help, vec![gauge(l(), value)])?;
            }
            if let Some(pending) = f.pending_buys {
                samples(
                    e,
                    "pygmy_pending_buys",
                    "Buys begun and not yet finished in this order replica's ledger",
                    vec![gauge(l(), pending as i64)],
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_name_routes_not_paths() {
        assert_eq!(route_label(&Method::GET, "/books/12"), "book");
        assert_eq!(route_label(&Method::GET, "/books/99999"), "book");
        assert_eq!(route_label(&Method::POST, "/books/3/buy"), "book_buy");
        assert_eq!(route_label(&Method::GET, "/lookup"), "lookup");
        assert_eq!(route_label(&Method::GET, "/no/such/path"), "other");
        assert_eq!(route_label(&Method::GET, "/books/1/buy/more"), "other");
        assert_eq!(route_label(&Method::POST, "/internal/rpc"), "internal");
    }

    #[test]
    fn exposition_counts_requests_by_route_and_status() {
        let metrics = Metrics::new(None);
        metrics.request("book", 200, Duration::from_millis(2));
        metrics.request("book", 200, Duration::from_millis(3));
        metrics.request("book", 404, Duration::from_millis(1));
        let guard = metrics.connection();
        let text = metrics.render();
        assert!(
            text.contains(r#"pygmy_http_requests_total{route="book",status="200"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"pygmy_http_requests_total{route="book",status="404"} 1"#));
        assert!(text.contains(r#"pygmy_http_request_duration_seconds_count{route="book"} 3"#));
        assert!(text.contains("pygmy_http_open_connections 1"));
        drop(guard);
        assert!(metrics.render().contains("pygmy_http_open_connections 0"));
    }
}
