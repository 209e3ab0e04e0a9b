//! Latency of the etcd client's calls against a local etcd: a get, a
//! compare-and-swap transaction and a lease keep-alive, each timed one at a
//! time (no concurrency) over a few thousand calls.
//!
//! ```text
//! cargo run --release -p pygmy-net --example etcd_latency            # starts its own etcd
//! cargo run --release -p pygmy-net --example etcd_latency -- 5000    # calls per kind
//! ETCD=http://127.0.0.1:2379 cargo run --release -p pygmy-net --example etcd_latency
//! ```
//!
//! Without `ETCD`, it starts a one-member etcd from the `etcd` binary
//! (etcd's default raft timing, `--metrics extensive`) in a temporary
//! folder and kills it at the end. Figures are for reading
//! (docs/BENCHMARKS.md), not for gating.
//!
//! To split a call's time between etcd and the way to it, it also reads
//! etcd's own metrics (`/metrics`, with `--metrics extensive`): the mean
//! time etcd's gRPC server spent handling each Range and Txn during the
//! run. The client's mean minus that is what the HTTP/JSON gateway (its
//! in-process hop to the gRPC server, JSON and base64), HTTP/1.1 on
//! loopback and this client cost together.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pygmy_net::etcd::{Compare, Etcd, EtcdConfig, LocalEtcd, LocalEtcdOptions, Op};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let calls: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("calls per kind: a number"))
        .unwrap_or(3000);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (_local, endpoint) = match std::env::var("ETCD") {
        Ok(endpoint) => (None, endpoint),
        Err(_) => {
            let mut options = LocalEtcdOptions::on_free_ports(dir.path()).expect("free ports");
            options.extra_args = vec!["--metrics".into(), "extensive".into()];
            let local = match LocalEtcd::start(options).await {
                Ok(local) => local,
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(2);
                }
            };
            let endpoint = local.endpoint();
            (Some(local), endpoint)
        }
    };
    let etcd = Etcd::new(EtcdConfig::new([endpoint.clone()])).expect("a valid endpoint");
    println!("etcd at {endpoint}, {calls} calls per kind, one at a time");

    // Warm the pooled connection and etcd's own caches.
    let key = b"pygmy/bench/view";
    let mut rev = etcd.put(key, b"view 0", None).await.expect("put");
    for _ in 0..100 {
        etcd.get(key).await.expect("get");
    }

    let before = server_metrics(&endpoint).await;
    let mut get = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        let kv = etcd.get(key).await.expect("get");
        get.push(t.elapsed());
        assert!(kv.is_some());
    }

    // Each swap compares the revision the previous one wrote, as a view
    // change does; every one must succeed.
    let mut cas = Vec::with_capacity(calls);
    for i in 0..calls {
        let t = Instant::now();
        rev = etcd
            .txn(
                &[Compare::ModRevision(key.to_vec(), rev)],
                &[Op::Put {
                    key: key.to_vec(),
                    value: format!("view {i}").into_bytes(),
                    lease: None,
                }],
            )
            .await
            .expect("an uncontended CAS succeeds");
        cas.push(t.elapsed());
    }

    let lease = etcd.grant(Duration::from_secs(60)).await.expect("grant");
    let mut keep = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        etcd.keep_alive(lease.id).await.expect("keep-alive");
        keep.push(t.elapsed());
    }
    etcd.revoke(lease.id).await.expect("revoke");
    let after = server_metrics(&endpoint).await;

    println!(
        "{:<12} {:>9} {:>9} {:>9} {:>9}",
        "call", "p50", "p99", "max", "mean"
    );
    for (name, mut times) in [("get", get), ("cas txn", cas), ("keep-alive", keep)] {
        times.sort();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        let mean = times.iter().sum::<Duration>() / times.len() as u32;
        println!(
            "{name:<12} {:>9} {:>9} {:>9} {:>9}",
            us(at(0.50)),
            us(at(0.99)),
            us(*times.last().expect("calls > 0")),
            us(mean)
        );
    }
    let delta = |name: &str| {
        let (sum, count) = (
            after.get(&format!("{name}_sum")).copied().unwrap_or(0.0)
                - before.get(&format!("{name}_sum")).copied().unwrap_or(0.0),
            after.get(&format!("{name}_count")).copied().unwrap_or(0.0)
                - before.get(&format!("{name}_count")).copied().unwrap_or(0.0),
        );
        (count > 0.0).then(|| Duration::from_secs_f64(sum / count))
    };
    println!("inside etcd (its /metrics, means over the run):");
    for (label, metric) in [
        ("Range", "grpc_server_handling_seconds{Range}"),
        ("Txn", "grpc_server_handling_seconds{Txn}"),
        ("WAL fsync", "etcd_disk_wal_fsync_duration_seconds"),
        (
            "backend commit",
            "etcd_disk_backend_commit_duration_seconds",
        ),
    ] {
        match delta(metric) {
            Some(mean) => println!("  {label:<15} {:>9}", us(mean)),
            None => println!("  {label:<15} (not reported)"),
        }
    }
}

/// etcd's histogram sums and counts that this example reads, keyed
/// `name_sum` / `name_count` (gRPC ones as `name{Method}_sum`).
async fn server_metrics(endpoint: &str) -> BTreeMap<String, f64> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri = format!("{endpoint}/metrics")
        .parse()
        .expect("a metrics URI");
    let Ok(response) = client.get(uri).await else {
        return BTreeMap::new();
    };
    let Ok(body) = response.into_body().collect().await else {
        return BTreeMap::new();
    };
    let text = String::from_utf8_lossy(&body.to_bytes()).into_owned();
    let mut figures = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (base, labels) = name.split_once('{').unwrap_or((name, ""));
        let key = if let Some(base) = base.strip_prefix("grpc_server_handling_seconds_") {
            let method = labels
                .split(',')
                .find_map(|l| l.strip_prefix("grpc_method=\""))
                .map(|m| m.trim_end_matches(['"', '}']));
            match (method, base) {
                (Some(m @ ("Range" | "Txn")), "sum" | "count") => {
                    format!("grpc_server_handling_seconds{{{m}}}_{base}")
                }
                _ => continue,
            }
        } else if base.starts_with("etcd_disk_") && labels.is_empty() {
            base.to_string()
        } else {
            continue;
        };
        figures.insert(key, value);
    }
    figures
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}
