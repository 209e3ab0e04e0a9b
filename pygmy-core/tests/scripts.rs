//! Scripted, readable tests of replication and the view service, in the
//! spirit of toydb's golden scripts: each file in `tests/scripts/` is a
//! script of steps (`> start`, `> buy 1`, `> crash order-1`, `> isolate
//! order-2`, `> settle`, `> views`, ...) with what each step must print
//! underneath it: the messages the nodes exchanged while it ran, then its
//! own result. A change to the protocol — which replica a view change
//! promotes, what a resync asks for, what a buy answers, one message more
//! or less — shows up as a diff of a script.
//!
//! The cluster is pygmy-core's own `Embedded` store: a front end (the view
//! service) and two replicas per group over the in-process transport, each
//! on an in-memory disk that loses unsynced writes on a crash.
//!
//! # Determinism
//!
//! Each script runs on its own single-threaded tokio runtime with paused
//! time (waits cost no real time) and a fixed seed (`RngSeed`, which the
//! workspace's `--cfg tokio_unstable` in `.cargo/config.toml` makes
//! available): tokio's only randomness, `select!`'s branch order, is then
//! the same on every run, so tasks interleave the same way and a script
//! prints the same text every time, alone or beside the others (without
//! the seed, most scripts differ between runs). A tokio upgrade may pick
//! another interleaving for the same seed: regenerate, and check that only
//! the order of messages moved. Nothing
//! printed comes from the wall clock (order timestamps, digests of them) or
//! from timing (how many heartbeats a wait saw): a step prints each distinct
//! message line once, in the order they first happened.
//!
//! A broken change can make a step wait forever (a task that never yields
//! stops paused time from advancing). Each script therefore runs on a
//! thread of its own, and the test fails after [`REAL_LIMIT`] of real time
//! naming the step that hung.
//!
//! Regenerate the expected output after an intended change with
//! `UPDATE_GOLDEN=1 cargo test -p pygmy-core --test scripts`, then read the
//! diff (`git diff pygmy-core/tests/scripts`) before committing it.
//!
//! # Steps
//!
//! | step | does | prints (after its messages) |
//! |---|---|---|
//! | `start` | starts the cluster, waits until both groups have a confirmed view | nothing |
//! | `buy ITEM [QTY] [KEY]` | a buy through the front end | `order ID: item I x Q, R left` or `error: ...` |
//! | `lookup ITEM` | a read through the front end | `book I: C copies` or `error: ...` |
//! | `crash NODE` | kills a replica: unreachable, unsynced writes lost | nothing |
//! | `restart NODE` | boots it again from its disk | nothing |
//! | `isolate NODE` | cuts a node off from every other, both ways; it keeps running | nothing |
//! | `heal NODE` | reconnects it | nothing |
//! | `settle` | waits until every group's confirmed view holds every live, connected replica and they agree | `settled` or what did not |
//! | `wait MS` | lets `MS` milliseconds of (paused) time pass | nothing |
//! | `views` | the view service's record of each group | one line per group |
//! | `replicas` | each live replica's epoch, log end, commit point and data | one line per replica |
//! | `hang` | blocks the runtime for good (only for the hang guard's own test) | never returns |
//!
//! # Messages
//!
//! One line per distinct exchange, `FROM → TO: REQUEST ⇒ REPLY`, with the
//! fields the protocol turns on (epochs, log positions `epoch.lsn`, commit
//! points, items) and none that vary by timing or by run (request ids,
//! disk identities, long-poll lengths, timestamps). For example
//! `order-2 → order-1: Fetch epoch 1 after 1.1 commit 1 ⇒ entries 1.2 commit 2`
//! is a backup pulling the entry after its log end `1.1` and learning that
//! commit is now 2; `frontend → order-2: Heartbeat catalog 1, order 2 ⇒
//! epoch 2 end 2.6 commit 6` a probe carrying each group's view epoch,
//! answered with the replica's status.

use parking_lot::Mutex;
use pygmy_core::unstable::state::command::{BuyStatus, CatalogCommand, CatalogOutcome, Command};
use pygmy_core::unstable::state::State;
use pygmy_core::unstable::store::{Embedded, EmbeddedOptions};
use pygmy_core::unstable::transport::message::{Fetched, Query, ReplicaStatus, Request, Response};
use pygmy_core::unstable::types::{Group, NodeId};
use pygmy_core::Result;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long `start` and `settle` may wait (paused time: free).
const PATIENCE: Duration = Duration::from_secs(60);
/// How often `settle` looks again.
const POLL: Duration = Duration::from_millis(20);
/// Real (wall-clock) time a whole script may take before the test fails
/// as hung. A script takes well under a second; this is far above that
/// even on a loaded machine.
const REAL_LIMIT: Duration = Duration::from_secs(60);

/// The message lines of the current step, in the order the exchanges ended.
type Log = Arc<Mutex<Vec<String>>>;

/// One exchange as a script line (see "Messages" above).
fn exchange(
    from: Option<&NodeId>,
    to: &NodeId,
    request: &Request,
    reply: &Result<Response>,
) -> String {
    let from = from.map_or("client".to_string(), NodeId::to_string);
    let reply = match reply {
        Ok(r) => response(r),
        Err(e) => format!("error: {e}"),
    };
    format!("{from} → {to}: {} ⇒ {reply}", request_line(request))
}

fn request_line(request: &Request) -> String {
    match request {
        Request::Heartbeat { views, .. } => {
            let epochs: Vec<_> = views
                .iter()
                .map(|v| format!("{} {}", v.group, v.epoch))
                .collect();
            if epochs.is_empty() {
                "Heartbeat (no views yet)".to_string()
            } else {
                format!("Heartbeat {}", epochs.join(", "))
            }
        }
        Request::ViewReady {
            group,
            epoch,
            commit,
            ..
        } => {
            format!("ViewReady {group} epoch {epoch} commit {commit}")
        }
        Request::Invalidate { keys, lsn, .. } => format!("Invalidate {} keys at {lsn}", keys.len()),
        Request::Read(q) => format!("Read {}", query(q)),
        Request::ReadAt { query: q, min } => format!("ReadAt {} min {min}", query(q)),
        Request::ReadBatch { queries, min } => {
            let qs: Vec<_> = queries.iter().map(query).collect();
            format!("ReadBatch [{}] min {min}", qs.join(", "))
        }
        Request::Catalog(c) => format!("Catalog {}", catalog(c)),
        Request::Buy { item, qty, .. } => format!("Buy item {item} x{qty}"),
        Request::Batch { requests } => {
            let each: Vec<_> = requests.iter().map(request_line).collect();
            format!("Batch [{}]", each.join(", "))
        }
        Request::StartView { view } => {
            let backups: Vec<_> = view.backups.iter().map(NodeId::to_string).collect();
            format!(
                "StartView {} epoch {} primary {} backups [{}]",
                view.group,
                view.epoch,
                view.primary,
                backups.join(", ")
            )
        }
        Request::Fetch {
            epoch,
            after,
            commit,
            rebuild,
            ..
        } => format!(
            "Fetch epoch {epoch} after {after} commit {commit}{}",
            if *rebuild { " rebuild" } else { "" }
        ),
    }
}

fn query(q: &Query) -> String {
    match q {
        Query::Search { topic } => format!("search {topic:?}"),
        Query::Lookup { id } => format!("lookup {id}"),
        Query::AllBooks => "all books".into(),
        Query::Order { id } => format!("order {id}"),
        Query::Orders => "orders".into(),
        Query::BuyStatus { .. } => "buy status".into(),
        Query::Dump => "dump".into(),
    }
}

fn catalog(c: &CatalogCommand) -> String {
    match c {
        CatalogCommand::Reserve {
            item,
            qty,
            begin,
            epoch,
            ..
        } => {
            format!("Reserve item {item} x{qty} begin {begin} epoch {epoch}")
        }
        CatalogCommand::Forget { below, epoch } => format!("Forget below {below} epoch {epoch}"),
        CatalogCommand::Fence { epoch } => format!("Fence epoch {epoch}"),
        CatalogCommand::Restock { item, qty } => format!("Restock item {item} x{qty}"),
        CatalogCommand::SetPrice { item, cost } => format!("SetPrice item {item} cost {cost}"),
        CatalogCommand::AddBook { book } => format!("AddBook {}", book.id),
        CatalogCommand::Keyed { change, .. } => format!("Keyed {}", catalog(change)),
    }
}

fn response(r: &Response) -> String {
    match r {
        Response::Ok => "ok".into(),
        Response::Status(s) => status(s),
        Response::Read { lsn, .. } => format!("read at {lsn}"),
        Response::ReadBatch { results, lsn } => format!("{} results at {lsn}", results.len()),
        Response::Catalog { outcome, lsn } => {
            let outcome = match outcome {
                CatalogOutcome::Reserved(Ok(r)) => format!("reserved, {} left", r.remaining),
                CatalogOutcome::Reserved(Err(why)) => format!("not reserved: {why:?}"),
                CatalogOutcome::Changed(Ok(b)) => format!("book {}: {} copies", b.id, b.count),
                CatalogOutcome::Changed(Err(why)) => format!("not changed: {why:?}"),
                CatalogOutcome::Forgot(n) => format!("forgot {n}"),
                CatalogOutcome::Fenced(held) => format!("fenced, {} inherited", held.len()),
                CatalogOutcome::Stale { fence } => format!("stale, fence {fence}"),
            };
            format!("{outcome} at {lsn}")
        }
        Response::Buy { status, lsn, .. } => match status {
            BuyStatus::Pending { .. } => format!("pending at {lsn}"),
            BuyStatus::Done(Ok(o)) => format!("order {} at {lsn}", o.id),
            BuyStatus::Done(Err(why)) => format!("refused {why:?} at {lsn}"),
        },
        Response::Batch { responses } => {
            let each: Vec<_> = responses.iter().map(response).collect();
            format!("batch [{}]", each.join(", "))
        }
        Response::LogEnd { end } => format!("log end {end}"),
        Response::Fetched(Fetched::Entries { entries, commit }) => {
            match (entries.first(), entries.last()) {
                (Some(first), Some(last)) if entries.len() > 1 => {
                    format!("entries {}..{} commit {commit}", first.pos, last.pos)
                }
                (Some(only), _) => format!(
                    "entry {} {} commit {commit}",
                    only.pos,
                    command(&only.command)
                ),
                _ => format!("no entries, commit {commit}"),
            }
        }
        Response::Fetched(Fetched::Diverged { truncate_to }) => {
            format!("diverged: truncate to {truncate_to}")
        }
        Response::Fetched(Fetched::Snapshot(s)) => format!("snapshot at {}", s.pos),
        Response::Error(e) => format!("error: {e}"),
    }
}

/// A single shipped entry's command, by kind (a lone entry is most often
/// the step's own write, worth naming).
fn command(c: &Command) -> String {
    match c {
        Command::Catalog(c) => catalog(c),
        Command::Order(o) => {
            let debug = format!("{o:?}");
            debug
                .split([' ', '{', '('])
                .next()
                .unwrap_or_default()
                .to_string()
        }
    }
}

fn status(s: &ReplicaStatus) -> String {
    let mut line = format!("epoch {} end {} commit {}", s.epoch, s.end, s.commit);
    for (flag, name) in [
        (s.serving, "serving"),
        (!s.ready, "not ready"),
        (s.uncertain, "uncertain"),
        (s.recovering, "recovering"),
    ] {
        if flag {
            let _ = write!(line, ", {name}");
        }
    }
    line
}

struct Runner {
    cluster: Option<Embedded>,
    /// What the transport's tap saw during the current step.
    log: Log,
    /// Nodes cut off by `isolate` (not expected in a settled view).
    isolated: Vec<NodeId>,
}

impl Runner {
    fn cluster(&self) -> &Embedded {
        self.cluster
            .as_ref()
            .expect("the script must `start` first")
    }

    async fn step(&mut self, line: &str) -> Vec<String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let arg = |i: usize| words.get(i).copied();
        let num = |i: usize| arg(i).and_then(|w| w.parse::<u64>().ok());
        match words.as_slice() {
            ["start"] => {
                let cluster = Embedded::start(EmbeddedOptions::default()).expect("cluster starts");
                // No node has run yet (they run once this task waits): the
                // tap sees the bootstrap's first message.
                let log = self.log.clone();
                cluster
                    .transport
                    .tap(Some(Arc::new(move |from, to, request, reply| {
                        log.lock().push(exchange(from, to, request, reply));
                    })));
                cluster.wait_ready(PATIENCE).await.expect("cluster ready");
                self.cluster = Some(cluster);
                vec![]
            }
            ["buy", ..] => {
                let (item, qty) = (num(1).expect("buy ITEM"), num(2).unwrap_or(1));
                let key = arg(3).map(str::to_string);
                match self.cluster().frontend.buy(item, qty, key).await {
                    Ok(r) => vec![format!(
                        "order {}: item {} x{}, {} left",
                        r.order.id, r.order.item_id, r.order.qty, r.order.remaining
                    )],
                    Err(e) => vec![format!("error: {e}")],
                }
            }
            ["lookup", _] => match self.cluster().frontend.lookup(num(1).unwrap()).await {
                Ok(b) => vec![format!("book {}: {} copies", b.id, b.count)],
                Err(e) => vec![format!("error: {e}")],
            },
            ["crash", node] => {
                self.cluster().crash(&NodeId::new(*node));
                vec![]
            }
            ["restart", node] => {
                self.cluster()
                    .restart(&NodeId::new(*node))
                    .expect("replica restarts");
                vec![]
            }
            ["isolate", node] => {
                let node = NodeId::new(*node);
                self.cluster().transport.isolate(&node);
                self.isolated.push(node);
                vec![]
            }
            ["heal", node] => {
                let node = NodeId::new(*node);
                self.cluster().transport.heal(&node);
                self.isolated.retain(|n| *n != node);
                vec![]
            }
            // Blocks the runtime's only thread for good, as a deadlock
            // would: only for the test of the hang guard.
            ["hang"] => loop {
                std::thread::park();
            },
            ["wait", ms] => {
                tokio::time::sleep(Duration::from_millis(ms.parse().expect("wait MS"))).await;
                vec![]
            }
            ["settle"] => vec![self.settle().await],
            ["views"] => self.views(),
            ["replicas"] => self.replicas(),
            _ => panic!("unknown step {line:?}"),
        }
    }

    /// Every group's view confirmed, holding exactly its live replicas, all
    /// at one commit point and digest, with no buy pending.
    async fn settle(&self) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let Some(why) = self.unsettled() else {
                return "settled".to_string();
            };
            if tokio::time::Instant::now() >= deadline {
                return format!("not settled: {why}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn unsettled(&self) -> Option<String> {
        let cluster = self.cluster();
        let health = cluster.frontend.health();
        for group in Group::ALL {
            let Some(record) = health.views.iter().find(|r| r.current.group == group) else {
                return Some(format!("no {group} view"));
            };
            if !record.is_confirmed() {
                return Some(format!("the {group} view is not confirmed"));
            }
            let live: Vec<_> = self.live(group);
            let mut members: Vec<_> = record.current.members().cloned().collect();
            members.sort();
            let names: Vec<_> = live.iter().map(|(s, _)| s.node.clone()).collect();
            if members != names {
                return Some(format!("the {group} view is not {names:?}"));
            }
            let first = (live[0].0.commit, live[0].0.digest);
            if live.iter().any(|(s, _)| (s.commit, s.digest) != first) {
                return Some(format!("the {group} replicas differ"));
            }
            let pending = live.iter().any(|(_, state)| match state {
                State::Orders(o) => !o.pending().is_empty(),
                State::Catalog(_) => false,
            });
            if pending {
                return Some("a buy is pending".to_string());
            }
        }
        None
    }

    /// The running, connected replicas of `group`, by name, with their
    /// status and state.
    fn live(&self, group: Group) -> Vec<(ReplicaStatus, State)> {
        self.running(group, false)
    }

    /// The running replicas of `group`, the isolated ones too if `all`.
    fn running(&self, group: Group, all: bool) -> Vec<(ReplicaStatus, State)> {
        let cluster = self.cluster();
        cluster
            .replicas()
            .iter()
            .filter(|n| all || !self.isolated.contains(n))
            .filter_map(|n| cluster.replica(n))
            .map(|r| (r.status(), r.state()))
            .filter(|(s, _)| s.group == group)
            .collect()
    }

    fn views(&self) -> Vec<String> {
        let health = self.cluster().frontend.health();
        let mut lines = Vec::new();
        for group in Group::ALL {
            let Some(r) = health.views.iter().find(|r| r.current.group == group) else {
                lines.push(format!("{group}: no view"));
                continue;
            };
            let v = &r.current;
            let backups: Vec<_> = v.backups.iter().map(|b| b.as_str()).collect();
            lines.push(format!(
                "{group}: epoch {} primary {} backups [{}] {}",
                v.epoch,
                v.primary,
                backups.join(", "),
                if r.is_confirmed() {
                    "confirmed"
                } else {
                    "not confirmed"
                }
            ));
        }
        lines
    }

    /// One line per running replica (`isolated` if cut off). Data is shown as what a reader can
    /// check by eye: the stock of every book that is not at 100, or each
    /// order; not digests (an order's timestamp comes from the wall clock).
    fn replicas(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for group in Group::ALL {
            for (s, state) in self.running(group, true) {
                let mut line = format!(
                    "{}: epoch {} end {} commit {}{}{}",
                    s.node,
                    s.epoch,
                    s.end,
                    s.commit,
                    if s.serving { " serving" } else { "" },
                    if self.isolated.contains(&s.node) {
                        " isolated"
                    } else {
                        ""
                    }
                );
                match state {
                    State::Catalog(c) => {
                        let changed: Vec<_> = c
                            .all()
                            .iter()
                            .filter(|b| b.count != 100)
                            .map(|b| format!("{}={}", b.id, b.count))
                            .collect();
                        let _ = write!(line, "; stock [{}]", changed.join(" "));
                    }
                    State::Orders(o) => {
                        let orders: Vec<_> = o
                            .orders()
                            .iter()
                            .map(|o| format!("{}:{}x{}", o.id, o.item_id, o.qty))
                            .collect();
                        let _ = write!(line, "; orders [{}]", orders.join(" "));
                        if !o.pending().is_empty() {
                            let _ = write!(line, " pending {}", o.pending().len());
                        }
                    }
                }
                lines.push(line);
            }
        }
        lines
    }
}

/// Runs `text` and returns the text it should hold: every step and comment as written, each step followed by
/// the messages exchanged while it ran and what it printed. `current` names
/// the step running, for the hang report.
async fn run(text: &str, current: &Mutex<String>) -> String {
    let mut runner = Runner {
        cluster: None,
        log: Log::default(),
        isolated: Vec::new(),
    };
    let mut out = String::new();
    for line in text.lines() {
        if let Some(step) = line.strip_prefix("> ") {
            *current.lock() = line.to_string();
            out.push_str(line);
            out.push('\n');
            let printed = runner.step(step).await;
            // Each distinct exchange once, in the order they first ended:
            // how often a heartbeat or a long poll repeated is timing.
            let mut seen = std::collections::BTreeSet::new();
            for message in std::mem::take(&mut *runner.log.lock()) {
                if seen.insert(message.clone()) {
                    out.push_str("  ");
                    out.push_str(&message);
                    out.push('\n');
                }
            }
            for printed in printed {
                out.push_str(&printed);
                out.push('\n');
            }
        } else if line.is_empty() || line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
        }
        // Anything else is the output of the step above it: regenerated.
    }
    if let Some(cluster) = runner.cluster.take() {
        cluster.shutdown();
    }
    out
}

/// Runs script `name` (its text `text`) on a seeded, paused,
/// single-threaded runtime of its own thread (see "Determinism"), and
/// returns what it printed, or fails the test if it takes more than
/// `limit` of real time.
fn run_script(name: &str, text: String, limit: Duration) -> String {
    let current = Arc::new(Mutex::new("(before the first step)".to_string()));
    let (done, result) = std::sync::mpsc::channel();
    let thread = {
        let (current, name) = (current.clone(), name.to_string());
        std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .start_paused(true)
                    .rng_seed(tokio::runtime::RngSeed::from_bytes(name.as_bytes()))
                    .build()
                    .expect("runtime builds");
                let _ = done.send(runtime.block_on(run(&text, &current)));
            })
            .expect("thread starts")
    };
    match result.recv_timeout(limit) {
        Ok(texts) => texts,
        // The script panicked: report its panic as the test's.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the script thread ended without a result"),
        },
        // The thread is left behind: it cannot be stopped, and the test
        // process ends after the failure anyway.
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!(
            "script {name} hung: not finished after {limit:?} of real time; \
             the step running was `{}` (a task that never yields, or a wait that never ends)",
            current.lock()
        ),
    }
}

fn check(name: &str) {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "scripts", name]
        .iter()
        .collect();
    let expected = std::fs::read_to_string(&path).expect("script readable");
    let actual = run_script(name, expected.clone(), REAL_LIMIT);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &actual).expect("script writable");
        return;
    }
    if expected != actual {
        let mut diff = String::new();
        let (e, a): (Vec<_>, Vec<_>) = (expected.lines().collect(), actual.lines().collect());
        for i in 0..e.len().max(a.len()) {
            match (e.get(i), a.get(i)) {
                (Some(x), Some(y)) if x == y => {}
                (x, y) => {
                    let _ = writeln!(diff, "line {}:\n  expected {x:?}\n  got      {y:?}", i + 1);
                }
            }
        }
        panic!(
            "{} differs from what the cluster did (UPDATE_GOLDEN=1 to accept):\n{diff}\n--- whole run:\n{actual}",
            path.display()
        );
    }
}

macro_rules! script {
    ($name:ident, $file:literal) => {
        #[test]
        fn $name() {
            check($file);
        }
    };
}

script!(a_write_is_replicated_to_the_backup, "replicate.txt");
script!(a_crashed_backup_is_dropped_and_resyncs, "backup_crash.txt");
script!(
    a_crashed_primary_is_replaced_by_its_backup,
    "primary_crash.txt"
);
script!(
    a_replica_restarted_with_an_older_log_is_not_promoted,
    "older_log.txt"
);
script!(
    a_cut_off_backup_is_dropped_then_healed_and_resynced,
    "partition.txt"
);
script!(
    a_cut_off_primary_is_replaced_and_rejoins_as_a_backup,
    "partition_primary.txt"
);

/// The guard against a hung script works: a step that blocks the runtime
/// for good fails the test in real time, naming the step.
#[test]
fn a_hung_script_fails_naming_its_step() {
    let script = "> start\n> hang\n".to_string();
    let hung = std::panic::catch_unwind(|| run_script("hang", script, Duration::from_secs(2)));
    let panic = hung.expect_err("a hung script must fail the test");
    let message = panic
        .downcast_ref::<String>()
        .expect("the failure is a message");
    assert!(
        message.contains("script hang hung") && message.contains("`> hang`"),
        "{message}"
    );
}
