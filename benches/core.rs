//! Criterion benches of the core's hot paths, no sockets:
//!
//! - `cache`: a hit (`lookup` and `search` values), a fill and an
//!   invalidation of the front end's read cache.
//! - `catalog`: `lookup`, `search` and `reserve` on the catalog state machine.
//! - `log`: appending 1 or 64 entries then one `sync` (group commit) to the
//!   CRC-framed log over the in-memory file system, so the figures are the
//!   encoding and bookkeeping cost, not a disk's fsync.
//! - `balancer`: one `pick` (with its `start`/`finish`) under each policy.
//! - `e2e`: the whole store in one process ([`Embedded`]: front end, two
//!   catalog and two order replicas over the in-process transport): a buy
//!   (committed in both groups, on primary and backup), 64 concurrent buys
//!   (group commit), and a cached `lookup` through the front end. Buys run
//!   on young stores (a fresh one every [`STORE_BUDGET`] buys, untimed).
//!
//! ```text
//! cargo bench --bench core               # about a minute
//! cargo bench --bench core -- --quick    # a little less
//! cargo bench --bench core -- e2e        # one group
//! ```
//!
//! Figures and the machine they came from: docs/BENCHMARKS.md.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pygmy_core::unstable::files::memfs::MemFs;
use pygmy_core::unstable::frontend::reads::balancer::{Balancer, Policy};
use pygmy_core::unstable::frontend::reads::cache::{Cache, CacheKey, CachedValue};
use pygmy_core::unstable::state::catalog::{Catalog, CatalogPolicy};
use pygmy_core::unstable::state::command::{CatalogCommand, Command, Entry};
use pygmy_core::unstable::storage::logstore::LogStore;
use pygmy_core::unstable::storage::Storage;
use pygmy_core::unstable::store::{Embedded, EmbeddedOptions};
use pygmy_core::unstable::types::{Book, LogPos, NodeId};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DS: &str = "distributed systems";

/// The built-in books with `copies` each.
fn books(copies: u64) -> Vec<Book> {
    Catalog::builtin()
        .all()
        .into_iter()
        .map(|b| Book { count: copies, ..b })
        .collect()
}

fn cache(c: &mut Criterion) {
    let catalog = Catalog::builtin();
    let mut g = c.benchmark_group("cache");
    let mut cache = Cache::new(10_000);
    let lookup = CacheKey::Lookup(1);
    let search = CacheKey::Search(DS.into());
    let book = catalog.lookup(1).unwrap();
    cache.fill(lookup.clone(), CachedValue::Book(book.clone()), 1);
    cache.fill(search.clone(), CachedValue::Books(catalog.search(DS)), 1);
    g.bench_function("hit_lookup", |b| b.iter(|| cache.get(black_box(&lookup))));
    g.bench_function("hit_search", |b| b.iter(|| cache.get(black_box(&search))));
    // A buy's cycle: the pushed invalidation, then the next read's fill.
    let keys = [lookup.clone(), search.clone()];
    let mut lsn = 1;
    g.bench_function("invalidate_then_fill", |b| {
        b.iter(|| {
            lsn += 1;
            cache.invalidate(black_box(&keys), lsn);
            cache.fill(lookup.clone(), CachedValue::Book(book.clone()), lsn)
        })
    });
    g.finish();
}

fn catalog(c: &mut Criterion) {
    let base = Catalog::from_books(books(1 << 40), CatalogPolicy::default()).unwrap();
    let mut g = c.benchmark_group("catalog");
    g.bench_function("lookup", |b| b.iter(|| base.lookup(black_box(3))));
    g.bench_function("search", |b| b.iter(|| base.search(black_box(DS))));
    // Every reserve has a fresh request id (the dedupe table grows), so the
    // catalog is reset every CHUNK reserves, outside the timing.
    const CHUNK: u64 = 1_000;
    g.bench_function("reserve", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let n = CHUNK.min(iters - done);
                let mut catalog = base.clone();
                let cmds: Vec<_> = (0..n)
                    .map(|i| CatalogCommand::Reserve {
                        request: format!("fe-1732545600000-{i}-5f3a9c0e12d4b7a8"),
                        item: 1 + i % 7,
                        qty: 1,
                        begin: i + 1,
                        epoch: 1,
                    })
                    .collect();
                let start = Instant::now();
                for cmd in &cmds {
                    black_box(catalog.apply(cmd));
                }
                total += start.elapsed();
                done += n;
            }
            total
        })
    });
    g.finish();
}

fn log(c: &mut Criterion) {
    let mut g = c.benchmark_group("log");
    // Entries of a realistic size: reservations with front-end request ids.
    const RESET_AFTER: u64 = 256;
    let entries: Vec<Entry> = (1..=RESET_AFTER + 64)
        .map(|lsn| Entry {
            pos: LogPos::new(3, lsn),
            command: Command::Catalog(CatalogCommand::Reserve {
                request: format!("fe-1732545600000-{lsn}-5f3a9c0e12d4b7a8"),
                item: 1 + lsn % 7,
                qty: 1,
                begin: lsn,
                epoch: 3,
            }),
        })
        .collect();
    for batch in [1u64, 64] {
        g.throughput(Throughput::Elements(batch));
        g.bench_with_input(
            BenchmarkId::new("append_and_sync", batch),
            &batch,
            |b, &batch| {
                // MemFs makes a sync copy the whole file (its durable image),
                // so the log is emptied every RESET_AFTER entries, untimed.
                let mut store = LogStore::open(MemFs::new(), "/bench", 1).unwrap();
                let mut next = 1;
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        if next + batch > RESET_AFTER + 1 {
                            store.truncate_after(0).unwrap();
                            store.sync().unwrap();
                            next = 1;
                        }
                        let slice = &entries[(next - 1) as usize..(next - 1 + batch) as usize];
                        let start = Instant::now();
                        store.append(slice).unwrap();
                        store.sync().unwrap();
                        total += start.elapsed();
                        next += batch;
                    }
                    total
                })
            },
        );
    }
    g.finish();
}

fn balancer(c: &mut Criterion) {
    let mut g = c.benchmark_group("balancer");
    let members = vec![NodeId::new("catalog-1"), NodeId::new("catalog-2")];
    for policy in [Policy::RoundRobin, Policy::LeastOutstanding] {
        let mut b = Balancer::new(policy);
        g.bench_function(format!("{policy:?}"), |bench| {
            bench.iter(|| {
                let node = b.pick(black_box(&members), &[]).unwrap();
                b.start(&node);
                b.finish(&node);
                node
            })
        });
    }
    g.finish();
}

/// A fresh in-process store with plenty of stock, ready to serve.
fn store(rt: &tokio::runtime::Runtime) -> Embedded {
    let mut opts = EmbeddedOptions {
        catalog: Catalog::from_books(books(1 << 40), CatalogPolicy::default()).unwrap(),
        ..EmbeddedOptions::default()
    };
    opts.frontend.cache_capacity = 10_000;
    rt.block_on(async {
        let store = Embedded::start(opts).unwrap();
        store.wait_ready(Duration::from_secs(10)).await.unwrap();
        store
    })
}

/// Buys one store serves before the bench replaces it (untimed).
const STORE_BUDGET: u64 = 256;

/// Times `iters` runs of `one` (each doing `buys` buys), on stores that
/// never serve more than [`STORE_BUDGET`] buys. Young stores keep the
/// figures steady: the state machines keep every order and reservation,
/// and MemFs copies a whole file on every sync, so a store that served the
/// whole run would drift (see docs/BENCHMARKS.md).
fn on_young_stores<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, buys: u64, one: F) -> Duration
where
    F: Fn(
        Arc<
            pygmy_core::unstable::frontend::FrontEnd<
                pygmy_core::unstable::transport::inproc::InProcTransport,
            >,
        >,
        u64,
    ) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let per_store = (STORE_BUDGET / buys).max(1);
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = per_store.min(iters - done);
        let store = store(rt);
        let fe = store.frontend.clone();
        let start = Instant::now();
        rt.block_on(async {
            for i in done..done + n {
                one(fe.clone(), i).await;
            }
        });
        total += start.elapsed();
        let _guard = rt.enter();
        store.shutdown();
        done += n;
    }
    total
}

fn e2e(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("e2e");
    g.sample_size(10);
    g.bench_function("buy", |b| {
        b.iter_custom(|iters| {
            on_young_stores(&rt, iters, 1, |fe, i| async move {
                fe.buy(1 + i % 7, 1, None).await.unwrap();
            })
        })
    });
    g.throughput(Throughput::Elements(64));
    g.bench_function("buy_64_concurrent", |b| {
        b.iter_custom(|iters| {
            on_young_stores(&rt, iters, 64, |fe, _| async move {
                let mut tasks = tokio::task::JoinSet::new();
                for i in 0..64u64 {
                    let fe = Arc::clone(&fe);
                    tasks.spawn(async move { fe.buy(1 + i % 7, 1, None).await });
                }
                while let Some(done) = tasks.join_next().await {
                    done.unwrap().unwrap();
                }
            })
        })
    });
    g.throughput(Throughput::Elements(1));
    let store = store(&rt);
    let fe = store.frontend.clone();
    rt.block_on(fe.lookup(3)).unwrap();
    g.bench_function("lookup_cached", |b| {
        b.iter(|| rt.block_on(fe.lookup(black_box(3))).unwrap())
    });
    g.finish();
    let _guard = rt.enter();
    store.shutdown();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = core;
    config = config();
    targets = cache, catalog, log, balancer, e2e
}
criterion_main!(core);
