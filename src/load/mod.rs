//! `pygmy load`: drives client traffic at a front end and reports what the
//! clients saw.
//!
//! `--clients N` clients run concurrently, sharing one pool of keep-alive
//! connections, in one of two loops:
//!
//! - **Closed loop** (the default): each client sends a request, waits for
//!   its answer, sends the next. Latency is each request's own time; under
//!   overload the clients slow down with the store, so this understates
//!   the latency an outside arrival rate would see (coordinated omission).
//! - **Open loop** (`--rate R`): requests are due at a fixed total rate of
//!   R per second, spread evenly over the clients (client `i`'s `k`-th
//!   request is due at `(i + k * clients) / R` seconds), and latency is
//!   measured from when each request was *due*, as wrk2 does: a request
//!   sent late because its client was still waiting for an earlier answer
//!   counts that wait. `--clients` then bounds how many requests are in
//!   flight; the report gives the rate asked for and the rate reached.
//!
//! What they send is the [`Mix`]: by default `session`, the original Pygmy
//! client's session (search a random topic, look up one of its books, buy
//! it) buying also when the lookup shows no stock, which a store with the
//! original's restock rule answers 404 and restocks, so buys go on for the
//! whole run; `original`, the same but buying only what the lookup shows in
//! stock (buys stop once every book has sold out); or independent requests
//! drawn with weights. The report says when buys stopped for lack of stock
//! (see [`StockReport`]). The run lasts `--duration` or `--requests`; a
//! progress bar shows on a terminal. At the end a table gives, per
//! operation, the count, the errors, the throughput and latency quantiles;
//! `--json` prints the same as JSON.
//!
//! # Several front ends
//!
//! `--url A,B,C` names several front ends of one store: client `i` starts
//! on front end `i mod n`. When a request fails there (no connection, a
//! timeout, a broken answer or a 5xx), the client sends the same request —
//! a buy with the same idempotency key, so it is bought at most once — to
//! the next front end, at most once to each, and stays on the one that
//! answered. Each such move is a *failover*, counted in the report; a
//! request that failed on every front end counts as failed. The original
//! API's `GET /buy` has no idempotency key, so sending it twice could buy
//! twice: it moves only when it could not connect; use `--api rest` for
//! buys that move whatever happened to them. A buy moved
//! while its first attempt may still run on the order primary can be
//! answered 409 (that key's buy is in progress): it is sent again after a
//! pause until it has its answer or its time is up.
//!
//! With one front end nothing is retried and no error is dropped: every request that did not
//! succeed is counted under its kind (HTTP status, connect, timeout, io,
//! bad answer). A 4xx is the store's definite answer (an unknown or sold-out
//! item) and is counted as an error but not as a failure; the command exits
//! non-zero when any request *failed*.
//!
//! [`start`] runs the same load in the background for `pygmy chaos`, which
//! reads its live [`Counts`] around each fault and the order ids it was
//! given.

mod client;
mod mix;
mod stats;

pub use client::{Api, ErrorKind};
pub use mix::{Mix, Op};
pub use stats::{Counts, Latency, OpReport, RateReport, Report, StockReport};

use client::Target;
use pygmy_core::unstable::types::{ItemId, OrderId};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use stats::{Live, Recorder};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Pause after a failed request before the client's next one, so clients
/// facing a dead front end probe it rather than spin on refused connects.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_millis(20);

/// Most recorders a run keeps. A recorder holds three HDR histograms of
/// about 140 KB each, too much to give each of thousands of clients one;
/// clients share them round robin, each behind its own lock, which stays
/// uncontended with a handful of clients per recorder.
const MAX_RECORDERS: u32 = 16;

/// What the clients send and how (shared by `load` and `chaos`).
#[derive(clap::Args, Clone, Debug)]
pub struct TrafficArgs {
    /// What each client does: `session` (search a random topic, look up a
    /// result, buy it even if sold out: the store's restock rule refills it,
    /// so buys continue), `original` (the same, buying only what is in
    /// stock), or weights like `search=1,lookup=8,buy=1` [default: session
    /// for load, search=1,lookup=1,buy=2 for chaos].
    #[arg(long, value_parser = Mix::parse)]
    pub mix: Option<Mix>,
    /// Open loop: send this many requests per second in all, whatever the
    /// answers' speed, and measure latency from each request's intended
    /// start (as wrk2 does). Without it each client waits for an answer
    /// before its next request (closed loop).
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Which public API to speak.
    #[arg(long, value_enum, default_value_t = Api::Original)]
    pub api: Api,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub clients: u32,
    /// Give up on one request after this long (e.g. 500ms, 5s); counted as a timeout.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Seed of the clients' random choices (a random one when omitted; the
    /// report prints it).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// `pygmy load`'s flags.
#[derive(clap::Args, Clone, Debug)]
pub struct LoadArgs {
    /// The front end's address, or several front ends' separated by commas
    /// (clients are spread over them and move to another when theirs fails).
    #[arg(long, default_value = "http://127.0.0.1:8010", value_parser = parse_urls)]
    pub url: String,
    #[command(flatten)]
    pub traffic: TrafficArgs,
    /// How long to run (e.g. 500ms, 10s, 2m); 10s unless --requests is given.
    #[arg(long, value_parser = parse_duration, conflicts_with = "requests")]
    pub duration: Option<Duration>,
    /// Stop after this many requests in all.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,
    /// Print the report as JSON (on standard output) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Parses a rate in requests per second: `500`, `2000/s`, `1.5k`.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let (t, scale) = match t.strip_suffix(['k', 'K']) {
        Some(t) => (t, 1000.0),
        None => (t, 1.0),
    };
    let rate = t
        .trim()
        .parse::<f64>()
        .map_err(|_| format!("{text:?} is not a rate (examples: 500, 2000/s, 1.5k)"))?
        * scale;
    if !(rate.is_finite() && rate > 0.0 && rate <= 10_000_000.0) {
        return Err(format!("{text:?}: a rate is above 0 and at most 10M/s"));
    }
    Ok(rate)
}

/// Parses `10s`, `500ms`, `2m`, `1m 30s` (humantime's syntax).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e} (examples: 500ms, 10s, 2m)"))?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

/// Normalises a front end address to `http://host:port`: the scheme may be
/// left out, https is refused (the store speaks plain HTTP), and a path is
/// refused (the endpoints are at the root).
pub fn parse_url(text: &str) -> Result<String, String> {
    let text = text.trim();
    let full = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    let uri: hyper::Uri = full
        .parse()
        .map_err(|e| format!("{text:?} is not a URL ({e}); example: http://127.0.0.1:8010"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "{text:?}: only http:// is supported (the front end speaks plain HTTP)"
        ));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{text:?} has no host; example: http://127.0.0.1:8010"))?;
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "{text:?}: give the front end's base address without a path, like http://{authority}"
        ));
    }
    Ok(format!("http://{authority}"))
}

/// Parses a comma-separated list of front end addresses (see
/// [`parse_url`]), normalised and joined again with commas.
pub fn parse_urls(text: &str) -> Result<String, String> {
    let urls: Vec<String> = text
        .split(',')
        .filter(|u| !u.trim().is_empty())
        .map(parse_url)
        .collect::<Result<_, _>>()?;
    if urls.is_empty() {
        return Err("no front end address given".into());
    }
    Ok(urls.join(","))
}

/// How long a buy moved to another front end waits between attempts while
/// its key's first attempt is still in progress (answered 409).
const IN_PROGRESS_PAUSE: Duration = Duration::from_millis(50);

/// When a run ends.
#[derive(Clone, Copy, Debug)]
pub enum Until {
    Elapsed(Duration),
    Requests(u64),
    /// When [`Running::stop`] is called.
    Stopped,
}

/// A load run's whole description.
#[derive(Clone, Debug)]
pub struct Plan {
    /// `http://host:port`, or several separated by commas (see
    /// [`parse_urls`]).
    pub url: String,
    pub traffic: TrafficArgs,
    pub until: Until,
}

/// What the clients ask for: the topics and ids the front end has.
struct Shop {
    topics: Vec<String>,
    ids: Vec<ItemId>,
}

struct Shared {
    /// One per front end; client `i` starts on `targets[i % len]`.
    targets: Vec<Target>,
    /// Requests sent again to another front end (see the module docs).
    failovers: AtomicU64,
    /// The request timeout, which also bounds a moved buy's 409 retries.
    timeout: Duration,
    mix: Mix,
    shop: Shop,
    stop: AtomicBool,
    deadline: Option<Instant>,
    /// Requests left to send, with `--requests`.
    budget: Option<AtomicU64>,
    live: Live,
    /// Client `i` records into `recorders[i % len]`.
    recorders: Vec<Mutex<Recorder>>,
    /// Ids of the orders the store acknowledged (for `chaos` to look for).
    orders: Mutex<Vec<OrderId>>,
    seed: u64,
    started: Instant,
    clients: u32,
    /// Open loop: seconds between one client's requests (clients / rate).
    interval: Option<f64>,
    /// When buys ran into no stock (see [`StockReport`]).
    stock: StockWatch,
}

/// Milliseconds since the start of the run, of stock events; `u64::MAX`
/// for none yet.
struct StockWatch {
    last_buy_ms: AtomicU64,
    first_sold_out_ms: AtomicU64,
    last_sold_out_ms: AtomicU64,
    sold_out_buys: AtomicU64,
    sold_out_lookups: AtomicU64,
    /// Open loop: the most any request was sent after it was due, µs.
    most_behind_us: AtomicU64,
}

impl Default for StockWatch {
    fn default() -> Self {
        StockWatch {
            last_buy_ms: AtomicU64::new(u64::MAX),
            first_sold_out_ms: AtomicU64::new(u64::MAX),
            last_sold_out_ms: AtomicU64::new(u64::MAX),
            sold_out_buys: AtomicU64::new(0),
            sold_out_lookups: AtomicU64::new(0),
            most_behind_us: AtomicU64::new(0),
        }
    }
}

impl StockWatch {
    fn sold_out(&self, at_ms: u64, buy: bool) {
        let n = if buy {
            &self.sold_out_buys
        } else {
            &self.sold_out_lookups
        };
        n.fetch_add(1, Ordering::Relaxed);
        self.first_sold_out_ms.fetch_min(at_ms, Ordering::Relaxed);
        // `u64::MAX` is "none"; any real time replaces it.
        let _ = self
            .last_sold_out_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                (old == u64::MAX || at_ms > old).then_some(at_ms)
            });
    }

    fn bought(&self, at_ms: u64) {
        let _ = self
            .last_buy_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                (old == u64::MAX || at_ms > old).then_some(at_ms)
            });
    }

    fn report(&self, elapsed: Duration) -> StockReport {
        let at = |a: &AtomicU64| {
            let ms = a.load(Ordering::Relaxed);
            (ms != u64::MAX).then(|| ms as f64 / 1000.0)
        };
        StockReport::new(
            at(&self.last_buy_ms),
            at(&self.first_sold_out_ms),
            at(&self.last_sold_out_ms),
            self.sold_out_buys.load(Ordering::Relaxed),
            self.sold_out_lookups.load(Ordering::Relaxed),
            elapsed.as_secs_f64(),
        )
    }
}

impl Shared {
    /// May a client send one more request? Takes it from the budget.
    fn claim(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        match &self.budget {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

/// A load run in progress.
pub struct Running {
    shared: Arc<Shared>,
    clients: Vec<JoinHandle<()>>,
    started: Instant,
    plan: Plan,
}

/// Learns the shop's topics and ids (`GET /books`) and starts the clients.
/// Fails if the front end cannot be reached or does not answer.
pub async fn start(plan: Plan) -> Result<Running, String> {
    let traffic = &plan.traffic;
    let targets: Vec<Target> = plan
        .url
        .split(',')
        .map(|url| {
            Target::new(
                url.to_string(),
                traffic.api,
                traffic.timeout,
                traffic.clients as usize,
            )
        })
        .collect();
    let mut first = 0;
    let failovers = AtomicU64::new(0);
    let books = across(&targets, &mut first, &failovers, |t| t.all_books())
        .await
        .map_err(|f| {
            let hint = match f.kind {
                ErrorKind::Connect => " (is the cluster running? `pygmy up` starts one)",
                _ => "",
            };
            format!(
                "cannot list the books at {}/books: {}{hint}",
                plan.url, f.detail
            )
        })?;
    let mut topics: Vec<String> = books.iter().map(|b| b.topic.clone()).collect();
    topics.sort();
    topics.dedup();
    let ids: Vec<ItemId> = books.iter().map(|b| b.id).collect();
    if ids.is_empty() {
        return Err(format!("{} has no books to ask for", plan.url));
    }
    let seed = traffic.seed.unwrap_or_else(rand::random);
    let started = Instant::now();
    let interval = traffic.rate.map(|r| f64::from(traffic.clients) / r);
    let shared = Arc::new(Shared {
        targets,
        failovers: AtomicU64::new(0),
        timeout: traffic.timeout,
        mix: traffic.mix.clone().unwrap_or(Mix::Session),
        shop: Shop { topics, ids },
        stop: AtomicBool::new(false),
        deadline: match plan.until {
            Until::Elapsed(d) => Some(started + d),
            _ => None,
        },
        budget: match plan.until {
            Until::Requests(n) => Some(AtomicU64::new(n)),
            _ => None,
        },
        live: Live::default(),
        recorders: (0..traffic.clients.min(MAX_RECORDERS))
            .map(|_| Mutex::new(Recorder::default()))
            .collect(),
        orders: Mutex::new(Vec::new()),
        seed,
        started,
        clients: traffic.clients,
        interval,
        stock: StockWatch::default(),
    });
    let clients = (0..traffic.clients)
        .map(|i| tokio::spawn(client(shared.clone(), i)))
        .collect();
    Ok(Running {
        shared,
        clients,
        started,
        plan,
    })
}

impl Running {
    /// The counts so far.
    pub fn counts(&self) -> Counts {
        self.shared.live.read()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// How many buys the store has acknowledged so far.
    pub fn orders_acknowledged(&self) -> usize {
        lock(&self.shared.orders).len()
    }

    /// Requests sent again to another front end so far.
    pub fn failovers(&self) -> u64 {
        self.shared.failovers.load(Ordering::Relaxed)
    }

    /// True once every client has stopped (the duration or budget is spent).
    pub fn is_finished(&self) -> bool {
        self.clients.iter().all(|c| c.is_finished())
    }

    /// Asks the clients to stop after the request each is on.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }

    /// Waits for the clients to stop (they stop on their own with a
    /// duration or a budget; call [`stop`](Self::stop) otherwise) and
    /// builds the report. Also returns the ids of every order the store
    /// acknowledged, in-flight buys that finished after `stop` included.
    pub async fn finish(self) -> (Report, Vec<OrderId>) {
        for c in self.clients {
            // A client task only ends by returning (it does not panic on
            // any answer); a join error would mean it was cancelled, and
            // what it recorded is in the recorders all the same.
            let _ = c.await;
        }
        let mut all = Recorder::default();
        for r in &self.shared.recorders {
            all.merge(&lock(r));
        }
        let traffic = &self.plan.traffic;
        let orders = lock(&self.shared.orders).clone();
        let elapsed = self.started.elapsed();
        let mut report = Report::new(
            &all,
            elapsed,
            self.plan.url.clone(),
            format!("{:?}", traffic.api).to_lowercase(),
            self.shared.mix.to_string(),
            traffic.clients,
            self.shared.seed,
        );
        report.stock = Some(self.shared.stock.report(elapsed));
        report.failovers = self.shared.failovers.load(Ordering::Relaxed);
        report.rate = traffic.rate.map(|asked| RateReport {
            asked,
            reached: report.total.throughput,
            most_behind_ms: self.shared.stock.most_behind_us.load(Ordering::Relaxed) as f64
                / 1000.0,
        });
        (report, orders)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means a client panicked while holding it; each
    // update is a single push or count, so the data is still whole.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The original session's next step.
#[derive(Clone, Copy)]
enum Step {
    Search,
    Lookup(ItemId),
    Buy(ItemId),
}

/// One client: sends requests until the run ends, returns what it saw.
async fn client(shared: Arc<Shared>, index: u32) {
    let mut rng = SmallRng::seed_from_u64(
        shared
            .seed
            .wrapping_add(u64::from(index).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
    );
    let recorder = &shared.recorders[index as usize % shared.recorders.len()];
    let mut next = Step::Search;
    let mut sent: u64 = 0;
    let shop = &shared.shop;
    let targets = &shared.targets[..];
    let mut at = index as usize % targets.len();
    let failovers = &shared.failovers;
    loop {
        // Open loop: wait until this request is due, and time it from then
        // (not from when it could be sent): see the module docs.
        let due = shared.interval.map(|interval| {
            let rate_interval = interval / f64::from(shared.clients.max(1));
            shared.started
                + Duration::from_secs_f64(rate_interval * f64::from(index) + interval * sent as f64)
        });
        if let Some(due) = due {
            if shared.deadline.is_some_and(|d| due >= d) {
                break;
            }
            // A client behind its schedule sends at once (a timer that is
            // already due would still cost a trip through tokio's timer).
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        if !shared.claim() {
            break;
        }
        let step = match &shared.mix {
            Mix::Original | Mix::Session => next,
            Mix::Weighted(weights) => {
                let id = shop.ids[rng.gen_range(0..shop.ids.len())];
                match Mix::pick(weights, &mut rng) {
                    Op::Search => Step::Search,
                    Op::Lookup => Step::Lookup(id),
                    Op::Buy => Step::Buy(id),
                }
            }
        };
        let began = match due {
            Some(due) => {
                let behind = Instant::now().saturating_duration_since(due);
                shared
                    .stock
                    .most_behind_us
                    .fetch_max(behind.as_micros() as u64, Ordering::Relaxed);
                due
            }
            None => Instant::now(),
        };
        let at_ms = || shared.started.elapsed().as_millis() as u64;
        let (op, result) = match step {
            Step::Search => {
                let topic = &shop.topics[rng.gen_range(0..shop.topics.len())];
                let r = across(targets, &mut at, failovers, |t| t.search(topic)).await;
                next = match &r {
                    Ok(books) if !books.is_empty() => {
                        Step::Lookup(books[rng.gen_range(0..books.len())].id)
                    }
                    _ => Step::Search,
                };
                (Op::Search, r.map(|_| ()))
            }
            Step::Lookup(id) => {
                let r = across(targets, &mut at, failovers, |t| t.lookup(id)).await;
                next = match &r {
                    Ok(book) if book.count > 0 => Step::Buy(id),
                    Ok(_) => {
                        shared.stock.sold_out(at_ms(), false);
                        match shared.mix {
                            // Buys anyway: the store restocks (module docs).
                            Mix::Session => Step::Buy(id),
                            _ => Step::Search,
                        }
                    }
                    Err(_) => Step::Search,
                };
                (Op::Lookup, r.map(|_| ()))
            }
            Step::Buy(id) => {
                let key = format!("load-{:x}-{index}-{sent}", shared.seed);
                let r = buy_across(targets, &mut at, failovers, shared.timeout, id, &key).await;
                match &r {
                    Ok(order) => {
                        lock(&shared.orders).push(*order);
                        shared.stock.bought(at_ms());
                    }
                    // The ids come from the shop's own listing: a 404 is a
                    // book with no stock.
                    Err(f) if f.kind == ErrorKind::Status(404) => {
                        shared.stock.sold_out(at_ms(), true)
                    }
                    Err(_) => {}
                }
                next = Step::Search;
                (Op::Buy, r.map(|_| ()))
            }
        };
        let latency = began.elapsed();
        sent += 1;
        match result {
            Ok(()) => {
                lock(recorder).record(op, latency, None);
                shared.live.record(None);
            }
            Err(f) => {
                lock(recorder).record(op, latency, Some((f.kind, &f.detail)));
                shared.live.record(Some(f.kind));
                // The open loop keeps its schedule whatever the answers.
                if f.kind.is_failure() && due.is_none() {
                    tokio::time::sleep(PAUSE_AFTER_FAILURE).await;
                }
            }
        }
    }
}

/// Sends a request (`call`) to front end `targets[*at]`, and on a failure
/// to each other front end in turn until one answers; `*at` is left on the
/// last one tried. Returns the last answer.
async fn across<'a, T, Fut>(
    targets: &'a [Target],
    at: &mut usize,
    failovers: &AtomicU64,
    call: impl FnMut(&'a Target) -> Fut,
) -> Result<T, client::Failure>
where
    Fut: std::future::Future<Output = Result<T, client::Failure>>,
{
    across_if(targets, at, failovers, |kind| kind.is_failure(), call).await
}

/// [`across`], moving only on failures `may_move` accepts.
async fn across_if<'a, T, Fut>(
    targets: &'a [Target],
    at: &mut usize,
    failovers: &AtomicU64,
    may_move: impl Fn(ErrorKind) -> bool,
    mut call: impl FnMut(&'a Target) -> Fut,
) -> Result<T, client::Failure>
where
    Fut: std::future::Future<Output = Result<T, client::Failure>>,
{
    let mut result = call(&targets[*at]).await;
    for _ in 1..targets.len() {
        match &result {
            Err(f) if may_move(f.kind) => {
                *at = (*at + 1) % targets.len();
                failovers.fetch_add(1, Ordering::Relaxed);
                result = call(&targets[*at]).await;
            }
            _ => break,
        }
    }
    result
}

/// A buy, [`across`] the front ends. A buy that moved may find its key's
/// first attempt still running on the order primary (409): it asks again
/// after a pause, under the same key, for up to `timeout`, to get that
/// attempt's answer. The original API's `GET /buy` carries no key, so
/// sending it again could buy twice: it moves only when it was never sent
/// (no connection).
async fn buy_across(
    targets: &[Target],
    at: &mut usize,
    failovers: &AtomicU64,
    timeout: Duration,
    id: ItemId,
    key: &str,
) -> Result<OrderId, client::Failure> {
    // This buy's own moves (`failovers` is every client's).
    let moved = AtomicU64::new(0);
    if targets[*at].api() == Api::Original {
        let result = across_if(
            targets,
            at,
            &moved,
            |kind| kind == ErrorKind::Connect,
            |t| t.buy(id, key),
        )
        .await;
        failovers.fetch_add(moved.load(Ordering::Relaxed), Ordering::Relaxed);
        return result;
    }
    let mut result = across(targets, at, &moved, |t| t.buy(id, key)).await;
    let until = Instant::now() + timeout;
    while matches!(&result, Err(f) if f.kind == ErrorKind::Status(409))
        && moved.load(Ordering::Relaxed) > 0
        && Instant::now() < until
    {
        tokio::time::sleep(IN_PROGRESS_PAUSE).await;
        result = across(targets, at, &moved, |t| t.buy(id, key)).await;
    }
    failovers.fetch_add(moved.load(Ordering::Relaxed), Ordering::Relaxed);
    result
}

/// `pygmy load`, to the end. Returns the report; the caller exits non-zero
/// if any request failed.
pub async fn run(args: &LoadArgs) -> Result<Report, String> {
    let until = match (args.duration, args.requests) {
        (_, Some(n)) => Until::Requests(n),
        (Some(d), None) => Until::Elapsed(d),
        (None, None) => Until::Elapsed(Duration::from_secs(10)),
    };
    let running = start(Plan {
        url: args.url.clone(),
        traffic: args.traffic.clone(),
        until,
    })
    .await?;
    if !args.json {
        eprintln!(
            "pygmy load: {} for {}",
            args.url,
            match until {
                Until::Elapsed(d) => humantime::format_duration(d).to_string(),
                Until::Requests(n) => format!("{n} requests"),
                Until::Stopped => "ever".into(),
            }
        );
    }
    let bar = progress_bar(until);
    let mut interrupted = false;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while !running.is_finished() {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                // The report of what ran so far is still worth printing.
                interrupted = true;
                running.stop();
            }
        }
        if let Some(bar) = &bar {
            let c = running.counts();
            let secs = running.elapsed().as_secs_f64().max(1e-3);
            match until {
                Until::Elapsed(_) => bar.set_position(running.elapsed().as_millis() as u64),
                _ => bar.set_position(c.requests),
            }
            bar.set_message(format!(
                "{} requests, {:.0} req/s, {} errors ({} failed)",
                c.requests,
                c.requests as f64 / secs,
                c.errors,
                c.failed
            ));
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(running.finish().await.0)
}

/// A progress bar on standard error, only when it is a terminal.
fn progress_bar(until: Until) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let (len, template) = match until {
        Until::Elapsed(d) => (
            d.as_millis() as u64,
            "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}%  {msg}",
        ),
        Until::Requests(n) => (
            n,
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len}  {msg}",
        ),
        Until::Stopped => (0, "{spinner} [{elapsed_precise}] {msg}"),
    };
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalised_or_refused_with_a_reason() {
        assert_eq!(
            parse_url("127.0.0.1:8010").as_deref(),
            Ok("http://127.0.0.1:8010")
        );
        assert_eq!(
            parse_url("http://localhost:9/").as_deref(),
            Ok("http://localhost:9")
        );
        assert!(parse_url("https://x:1")
            .unwrap_err()
            .contains("only http://"));
        assert!(parse_url("http://x:1/books")
            .unwrap_err()
            .contains("without a path"));
        assert!(parse_url("http://").is_err());
    }

    #[test]
    fn rates_take_a_unit_or_a_k_and_must_be_positive() {
        assert_eq!(parse_rate("500"), Ok(500.0));
        assert_eq!(parse_rate("2000/s"), Ok(2000.0));
        assert_eq!(parse_rate("1.5k"), Ok(1500.0));
        assert!(parse_rate("0").unwrap_err().contains("above 0"));
        assert!(parse_rate("-3").unwrap_err().contains("above 0"));
        assert!(parse_rate("fast").unwrap_err().contains("not a rate"));
        assert!(parse_rate("inf").is_err());
    }

    #[test]
    fn durations_need_a_unit_and_must_be_positive() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("0s").unwrap_err().contains("more than zero"));
    }
}
