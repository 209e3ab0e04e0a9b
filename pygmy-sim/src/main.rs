//! `pygmy-sim`: run the simulated cluster over a range of seeds, or replay
//! one seed with its full trace.
//!
//! ```text
//! cargo run --release -p pygmy-sim -- --seeds 0..1000
//! cargo run --release -p pygmy-sim -- --seed 42
//! ```

use clap::Parser;
use pygmy_sim::run::{describe, run_seed, Jobs, SimOptions, Summary};
use std::ops::Range;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(about = "Run Pygmy's replicated cluster under simulated faults and check its invariants")]
struct Args {
    /// A range of seeds to run, `A..B` (B excluded).
    #[arg(long, value_parser = parse_range, conflicts_with = "seed")]
    seeds: Option<Range<u64>>,
    /// One seed to replay, printing its fault schedule and full trace.
    #[arg(long)]
    seed: Option<u64>,
    /// Seeds run in parallel, each in a worker process (default: the
    /// machine's cores); 1 runs them one after the other in this process.
    #[arg(long)]
    jobs: Option<usize>,
    /// Instead of the seed's own fault schedule, a slow network from 1.5 s
    /// to 9 s (every message delayed up to 300 ms, so answers and
    /// invalidations overtake one another): the schedule of the stale-read
    /// tests in `tests/broken.rs`.
    #[arg(long)]
    slow_network: bool,
    /// Instead of the seed's own fault schedule, one slow link (25 ms each
    /// way) between the front end and catalog-1 from 1.5 s to 9 s: the
    /// schedule of the older-fill test in `tests/broken.rs`.
    #[arg(long, conflicts_with = "slow_network")]
    slow_link: bool,
    /// Instead of the seed's own fault schedule (with `--frontends` above
    /// 1): the first front end is cut off from the coordinator from 1 s to
    /// 2 s, so another leads; then catalog-1 crashes at 3 s and order-1 one
    /// heartbeat round later (both back at 5 s), so a front end that does
    /// not lead stores the catalog's confirmation while the leader decides
    /// the order group's view: the schedule of the blind-views test in
    /// `tests/broken.rs`.
    #[arg(long, conflicts_with_all = ["slow_network", "slow_link"])]
    confirmation_race: bool,
    /// Instead of the seed's own fault schedule (with `--frontends` above
    /// 2): the third front end is cut off from the coordinator from 1 s,
    /// order-1 (the order group's first primary) from everything but it
    /// from 2 s, and every client from the other two front ends from 4 s,
    /// all until 8.5 s: the other front ends make order-2 the primary while
    /// the third still sends order reads to order-1. The schedule of the
    /// untenured-order-reads test in `tests/broken.rs`.
    #[arg(long, conflicts_with_all = ["slow_network", "slow_link", "confirmation_race"])]
    deposed_order_primary: bool,
    /// Instead of the seed's own fault schedule (with `--frontends` above
    /// 2): as `--deposed-order-primary`, but catalog-1 (the catalog's first
    /// primary) is cut off from every node but the third front end from
    /// 2 s, so the other front ends make catalog-2 the primary while the
    /// third still sends catalog reads to catalog-1. The schedule of the
    /// untenured-catalog-reads test in `tests/broken.rs`.
    #[arg(long, conflicts_with_all = [
        "slow_network", "slow_link", "confirmation_race", "deposed_order_primary",
    ])]
    deposed_catalog_primary: bool,
    /// Simulated clients (default 4); more clients, more concurrency. A
    /// congested seed runs twice as many (see `--no-congestion`).
    #[arg(long)]
    clients: Option<usize>,
    /// No slow links drawn into the seeds' fault schedules (by default
    /// most seeds get one to three: a front end's link to a replica, or the
    /// link between two replicas, 15 to 50 ms for 2 to 7 s; and a congested
    /// seed's slow path).
    #[arg(long)]
    no_slow_links: bool,
    /// No congested seeds (by default half the seeds run twice the clients,
    /// with the front end's link to catalog-1 slow at 25 ms over the whole
    /// fault window unless `--no-slow-links`). With `--no-slow-links` too, a
    /// seed runs the schedule and load it had before either existed.
    #[arg(long)]
    no_congestion: bool,
    /// With `--seed`: print only `seed N passed|failed digest HEX` (and the
    /// failure), as a worker process of a parallel run does.
    #[arg(long, requires = "seed")]
    summary: bool,
    /// Front ends (above 1: they share the views through a model of etcd,
    /// which the fault schedule may crash or cut off).
    #[arg(long)]
    frontends: Option<usize>,
    /// Run a deliberately broken cluster, to watch the checks catch it:
    /// `lying-disk` (syncs that do nothing) or `promote-stale` (the view
    /// service may promote a replica outside the last confirmed view) or
    /// `forget-pending` (the catalog forgets reservations of pending buys)
    /// or `unsynced-archive` (snapshots count on an order archive that was
    /// never synced) or `misroute-batches` (the front end hands each read
    /// of a batch the next one's answer) or `skip-reconcile` (a new order
    /// primary does not record the buys an old one reserved for but lost)
    /// or `stale-fills` (the cache keeps fills read before their key's
    /// mark) or `older-fill-wins` (a cache fill replaces a value read
    /// later) or `read-any` (replicas answer reads past no minimum commit
    /// point, so a lagging backup answers stale reads).
    /// or `restock-too-many` (a buy of more copies than are left restocks
    /// the item, as issue 15 found) or `ignore-admin-keys` (a retried
    /// restock or price change applies again despite its idempotency key).
    /// or `trust-damaged-disk` (replicas trust a damaged disk: cut the log
    /// at the first bad record, keep their disk identity, never doubt a
    /// log's tail). With `--frontends` above 1: `blind-views` (views stored
    /// without compare-and-swap; shows under `--confirmation-race`), `deposed-leader` (a deposed leader keeps
    /// changing views), `shared-cache` (every front end keeps its cache and
    /// reads from any member, as one front end alone may, with no leases),
    /// `expired-lease` (a front end serves its cache after its lease ran
    /// out), `no-lease-wait` (the catalog primary acknowledges without
    /// waiting out the lease of a front end it cannot reach),
    /// `untenured-order-reads` (the order primary answers order reads
    /// without its tenure, so a deposed one answers; shows under
    /// `--deposed-order-primary`), `untenured-catalog-reads` (the catalog
    /// primary answers reads without checking that its backups still
    /// follow it, so a deposed one answers; shows under
    /// `--deposed-catalog-primary`).
    #[arg(
        long = "break",
        value_parser = [
            "lying-disk",
            "promote-stale",
            "forget-pending",
            "unsynced-archive",
            "misroute-batches",
            "skip-reconcile",
            "stale-fills",
            "older-fill-wins",
            "read-any",
            "restock-too-many",
            "ignore-admin-keys",
            "trust-damaged-disk",
            "blind-views",
            "deposed-leader",
            "shared-cache",
            "expired-lease",
            "no-lease-wait",
            "untenured-order-reads",
            "untenured-catalog-reads",
        ]
    )]
    broken: Option<String>,
}

fn parse_range(s: &str) -> Result<Range<u64>, String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("expected A..B, got {s:?}"))?;
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|e| format!("bad start {a:?}: {e}"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|e| format!("bad end {b:?}: {e}"))?;
    if a >= b {
        return Err(format!(
            "empty range {s:?}: the end must be greater than the start"
        ));
    }
    Ok(a..b)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut opts = SimOptions::default();
    if let Some(clients) = args.clients {
        opts.clients = clients;
    }
    match args.broken.as_deref() {
        Some("lying-disk") => opts.cluster.lying_disk = true,
        Some("promote-stale") => opts.cluster.promote_stale = true,
        Some("forget-pending") => opts.cluster.forget_pending = true,
        Some("unsynced-archive") => opts.cluster.unsynced_archive = true,
        Some("misroute-batches") => opts.cluster.misroute_batches = true,
        Some("skip-reconcile") => opts.cluster.skip_reconcile = true,
        Some("stale-fills") => opts.cluster.stale_fills = true,
        Some("older-fill-wins") => opts.cluster.older_fill_wins = true,
        Some("read-any") => opts.cluster.read_any = true,
        Some("restock-too-many") => opts.cluster.restock_too_many = true,
        Some("ignore-admin-keys") => opts.cluster.ignore_admin_keys = true,
        Some("trust-damaged-disk") => opts.cluster.trust_damage = true,
        Some("blind-views") => opts.cluster.blind_views = true,
        Some("deposed-leader") => opts.cluster.deposed_leader = true,
        Some("shared-cache") => opts.cluster.shared_cache = true,
        Some("expired-lease") => opts.cluster.expired_lease = true,
        Some("no-lease-wait") => opts.cluster.no_lease_wait = true,
        Some("untenured-order-reads") => opts.cluster.untenured_order_reads = true,
        Some("untenured-catalog-reads") => opts.cluster.untenured_catalog_reads = true,
        _ => {}
    }
    if let Some(n) = args.frontends {
        opts.cluster.frontends = n;
    }
    opts.slow_links = !args.no_slow_links;
    opts.congestion = !args.no_congestion;
    if args.confirmation_race && opts.cluster.frontends < 2 {
        // Its schedule cuts a front end off from the coordinator, which
        // only several front ends share.
        eprintln!("--confirmation-race needs --frontends 2 or more");
        return ExitCode::from(2);
    }
    if args.deposed_order_primary && opts.cluster.frontends < 3 {
        eprintln!("--deposed-order-primary needs --frontends 3 or more");
        return ExitCode::from(2);
    }
    if args.deposed_catalog_primary && opts.cluster.frontends < 3 {
        eprintln!("--deposed-catalog-primary needs --frontends 3 or more");
        return ExitCode::from(2);
    }
    // A scripted schedule instead of the seed's own, as its switch.
    let scripted = if args.slow_network {
        Some("--slow-network")
    } else if args.slow_link {
        Some("--slow-link")
    } else if args.confirmation_race {
        Some("--confirmation-race")
    } else if args.deposed_order_primary {
        Some("--deposed-order-primary")
    } else if args.deposed_catalog_primary {
        Some("--deposed-catalog-primary")
    } else {
        None
    };
    if let Some(seed) = args.seed {
        // A replay can show the nodes' own logs: RUST_LOG=info (or debug).
        if std::env::var_os("RUST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_timer(SimTime)
                .with_ansi(false)
                .init();
        }
        let mut report = match scripted {
            Some("--slow-network") => {
                pygmy_sim::run::run_with(seed, &opts, pygmy_sim::faults::slow_network())
            }
            Some("--slow-link") => {
                pygmy_sim::run::run_with(seed, &opts, pygmy_sim::faults::slow_link())
            }
            Some("--deposed-order-primary") => {
                pygmy_sim::run::run_with(seed, &opts, pygmy_sim::faults::deposed_order_primary())
            }
            Some("--deposed-catalog-primary") => {
                pygmy_sim::run::run_with(seed, &opts, pygmy_sim::faults::deposed_catalog_primary())
            }
            Some(_) => {
                pygmy_sim::run::run_with(seed, &opts, pygmy_sim::faults::confirmation_race())
            }
            None => run_seed(seed, &opts),
        };
        report.replay_args.extend(scripted.map(String::from));
        if args.summary {
            print!("{}", Summary::of(&report).to_lines());
            return ExitCode::SUCCESS;
        }
        println!("seed {seed}\nfault schedule:\n{}", report.schedule);
        for line in &report.trace {
            println!("{line}");
        }
        println!("trace digest {:016x}", report.trace_digest());
        return if report.passed() {
            println!("1 seeds passed, 0 failed");
            ExitCode::SUCCESS
        } else {
            println!("{}", describe(&report));
            println!("0 seeds passed, 1 failed");
            ExitCode::FAILURE
        };
    }
    let seeds = args.seeds.unwrap_or(0..100);
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let started = Instant::now();
    let how = match std::env::current_exe() {
        Ok(exe) if jobs > 1 || scripted.is_some() => Jobs::Processes {
            exe,
            jobs,
            // Every option the workers need: those a replay needs.
            args: opts
                .replay_args()
                .into_iter()
                .chain(scripted.map(String::from))
                .collect(),
        },
        _ => Jobs::Serial,
    };
    let operations = std::sync::atomic::AtomicUsize::new(0);
    let results = pygmy_sim::run::run_many(seeds.clone(), &how, &opts, |summary| {
        operations.fetch_add(summary.operations, std::sync::atomic::Ordering::Relaxed);
        if !summary.passed {
            eprintln!("{}", summary.description);
        }
    });
    let failed = results.iter().filter(|(_, ok)| !ok).count();
    let passed = results.len() - failed;
    let secs = started.elapsed().as_secs_f64();
    let operations = operations.into_inner();
    eprintln!(
        "{} seeds in {secs:.1}s ({:.2} seeds/s, {jobs} at a time); {operations} operations, \
         {:.1} per seed",
        results.len(),
        results.len() as f64 / secs,
        operations as f64 / results.len().max(1) as f64
    );
    println!("{passed} seeds passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Log lines stamped with simulated time, so they line up with the trace.
struct SimTime;

impl tracing_subscriber::fmt::time::FormatTime for SimTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        match turmoil::sim_elapsed() {
            Some(t) => write!(w, "{:>9.3}s", t.as_secs_f64()),
            None => write!(w, "        -"),
        }
    }
}
