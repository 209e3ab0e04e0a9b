//! Scripted, readable tests of replication and the view service, in the
//! spirit of toydb's golden scripts: each file in `tests/scripts/` is a
//! script of steps (`> start`, `> buy 1`, `> crash order-1`, `> restart
//! order-1`, `> settle`, `> views`, `> replicas`, ...) with the output each
//! step must print underneath it. A change to the protocol that changes
//! what a step shows — which replica a view change promotes, whether a
//! restarted replica catches up, what a buy answers — shows up as a diff of
//! the script.
//!
//! The cluster is pygmy-core's own `Embedded` store: a front end (the view
//! service) and two replicas per group over the in-process transport, each
//! on an in-memory disk that loses unsynced writes on a crash. Time is
//! tokio's paused clock, so waits cost no real time and a script runs the
//! same way every time.
//!
//! Regenerate the expected output after an intended change with
//! `UPDATE_GOLDEN=1 cargo test -p pygmy-core --test scripts`, then read the
//! diff (`git diff pygmy-core/tests/scripts`) before committing it.
//!
//! # Steps
//!
//! | step | does | prints |
//! |---|---|---|
//! | `start` | starts the cluster, waits until both groups have a confirmed view | nothing |
//! | `buy ITEM [QTY] [KEY]` | a buy through the front end | `order ID: item I x Q, R left` or `error: ...` |
//! | `lookup ITEM` | a read through the front end | `book I: C copies` or `error: ...` |
//! | `crash NODE` | kills a replica: unreachable, unsynced writes lost | nothing |
//! | `restart NODE` | boots it again from its disk | nothing |
//! | `settle` | waits until every group's confirmed view holds every live replica and they agree | `settled` or what did not |
//! | `wait MS` | lets `MS` milliseconds of (paused) time pass | nothing |
//! | `views` | the view service's record of each group | one line per group |
//! | `replicas` | each live replica's epoch, log end, commit point and data | one line per replica |

use pygmy_core::unstable::state::State;
use pygmy_core::unstable::store::{Embedded, EmbeddedOptions};
use pygmy_core::unstable::transport::message::ReplicaStatus;
use pygmy_core::unstable::types::{Group, NodeId};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long `start` and `settle` may wait (paused time: free).
const PATIENCE: Duration = Duration::from_secs(60);
/// How often `settle` looks again.
const POLL: Duration = Duration::from_millis(20);

struct Runner {
    cluster: Option<Embedded>,
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

    /// The running replicas of `group`, by name, with their status and state.
    fn live(&self, group: Group) -> Vec<(ReplicaStatus, State)> {
        let cluster = self.cluster();
        cluster
            .replicas()
            .iter()
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

    /// One line per running replica. Data is shown as what a reader can
    /// check by eye: the stock of every book that is not at 100, or each
    /// order; not digests (an order's timestamp comes from the wall clock).
    fn replicas(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for group in Group::ALL {
            for (s, state) in self.live(group) {
                let mut line = format!(
                    "{}: epoch {} end {} commit {}{}",
                    s.node,
                    s.epoch,
                    s.end,
                    s.commit,
                    if s.serving { " serving" } else { "" }
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

/// Runs the script at `path` and returns the text it should hold: every
/// step and comment as written, each step followed by what it printed.
async fn run(path: &Path) -> (String, String) {
    let text = std::fs::read_to_string(path).expect("script readable");
    let mut runner = Runner { cluster: None };
    let mut out = String::new();
    for line in text.lines() {
        if let Some(step) = line.strip_prefix("> ") {
            out.push_str(line);
            out.push('\n');
            for printed in runner.step(step).await {
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
    (text, out)
}

async fn check(name: &str) {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "scripts", name]
        .iter()
        .collect();
    let (expected, actual) = run(&path).await;
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
        #[tokio::test(start_paused = true)]
        async fn $name() {
            check($file).await;
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
