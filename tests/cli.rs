//! The `pygmy` binary end to end: real `pygmy up` clusters of separate
//! processes on free ports, in temporary folders, killed with SIGKILL and
//! restarted as an operator would.
//!
//! Each test names the property it checks. None asserts a timing; every
//! wait polls until its condition holds or a generous deadline passes.

mod support;

use pygmy_core::invariants::check_settled;
use pygmy_core::unstable::frontend::Health;
use pygmy_core::unstable::state::{State, StateMachine};
use pygmy_core::unstable::types::{Group, NodeId};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use support::{pygmy, Cluster, Http};

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    k.sort_unstable();
    k
}

/// A book as the original's wire has it: exactly these keys, integers
/// where the original had integers.
fn assert_original_book(book: &Value) {
    assert_eq!(
        keys(book),
        ["cost", "count", "id", "title", "topic"],
        "{book}"
    );
    for k in ["id", "cost", "count"] {
        assert!(book[k].is_u64(), "{k} is not an integer in {book}");
    }
    assert!(book["title"].is_string() && book["topic"].is_string());
}

/// The original's failure envelope, with the HTTP status repeated.
fn assert_failed(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(
        keys(body),
        ["message", "status", "validation_code"],
        "{body}"
    );
    assert_eq!(body["status"], "Failed");
    assert_eq!(body["validation_code"], expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_api_round_trips_with_the_original_envelope() {
    let c = Cluster::start().await;
    let http = c.http();

    let (status, body) = http
        .get(&c.url("/search?topic=distributed%20systems"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        keys(&body),
        ["item", "message", "status", "validation_code"]
    );
    assert_eq!(
        (&body["status"], &body["validation_code"], &body["message"]),
        (&json!("Success"), &json!(200), &json!(""))
    );
    let found = body["item"].as_array().unwrap();
    assert!(!found.is_empty());
    for book in found {
        assert_original_book(book);
        assert_eq!(book["topic"], "distributed systems");
    }
    let id = found[0]["id"].as_u64().unwrap();

    let lookup = |id: u64| {
        let url = c.url(&format!("/lookup?id={id}"));
        async move { http.get(&url).await.unwrap() }
    };
    let (status, body) = lookup(id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        keys(&body),
        ["item", "message", "status", "validation_code"]
    );
    let items = body["item"].as_array().unwrap();
    assert_eq!(items.len(), 1, "lookup answers a list of one");
    assert_original_book(&items[0]);
    assert_eq!(items[0]["id"], id);
    let count = items[0]["count"].as_u64().unwrap();
    let title = items[0]["title"].as_str().unwrap().to_string();

    let (status, body) = http.get(&c.url(&format!("/buy?id={id}"))).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        keys(&body),
        ["message", "order", "status", "validation_code"]
    );
    assert_eq!(body["status"], "Success");
    assert_eq!(body["validation_code"], 200);
    assert!(body["message"].as_str().unwrap().contains(&title));
    let order = body["order"]["id"]
        .as_u64()
        .expect("order.id is an integer");

    // The buy is visible to the next lookup (the cache was invalidated)
    // and the order can be read back.
    let (_, body) = lookup(id).await;
    assert_eq!(body["item"][0]["count"], count - 1);
    let (status, body) = http.get(&c.url(&format!("/orders/{order}"))).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["item_id"], id);

    // Failures speak the envelope too, with the original's codes.
    let (status, body) = http.get(&c.url("/lookup?id=abc")).await.unwrap();
    assert_failed(status, &body, 400);
    let (status, body) = http.get(&c.url("/search")).await.unwrap();
    assert_failed(status, &body, 400);
    let (status, body) = http.get(&c.url("/buy?id=999")).await.unwrap();
    assert_failed(status, &body, 404);

    // The REST buy is exactly-once per Idempotency-Key.
    let buy_url = c.url(&format!("/books/{id}/buy"));
    let buy = || {
        http.send(
            hyper::Method::POST,
            &buy_url,
            &[("idempotency-key", "cli-test-1")],
            None,
        )
    };
    let (s1, first) = buy().await.unwrap();
    let (s2, again) = buy().await.unwrap();
    assert_eq!((s1, s2), (201, 201), "{first} {again}");
    assert_eq!(first["order"]["id"], again["order"]["id"]);
    let (_, body) = lookup(id).await;
    assert_eq!(body["item"][0]["count"], count - 2, "one copy per key");

    // `pygmy load` against it: every request counted, none failed.
    let out = pygmy()
        .args([
            "load",
            "--url",
            &c.url(""),
            "--requests",
            "300",
            "--clients",
            "4",
        ])
        .args([
            "--mix",
            "search=1,lookup=1,buy=1",
            "--api",
            "rest",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["total"]["count"], 300);
    assert_eq!(report["total"]["failed"], 0, "{report}");
    let ops: Vec<&str> = report["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["search", "lookup", "buy"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_and_admin_endpoints_refuse_callers_without_their_token() {
    let c = Cluster::start().await;
    let http = c.http();
    let dump = json!({"Read": "Dump"});

    // The internal RPC of every node: 401 with a JSON error, unless the
    // cluster's token comes along.
    for node in c.cfg.nodes() {
        let url = format!("http://{}/internal/rpc", node.addr);
        for headers in [vec![], vec![("x-pygmy-token", "not-the-token")]] {
            let (status, body) = http
                .send(hyper::Method::POST, &url, &headers, Some(dump.clone()))
                .await
                .unwrap();
            assert_eq!(status, 401, "{} with {headers:?}: {body}", node.name);
            assert!(body["error"].is_string(), "{body}");
        }
    }
    assert!(matches!(
        c.status("catalog-1").await.node,
        ref n if *n == NodeId::new("catalog-1")
    ));

    // Admin changes need the admin token (the internal one is not it).
    let price = c.url("/books/1/price");
    let restock = c.url("/books/1/restock");
    let add = c.url("/books");
    let wrong = format!("Bearer {}", c.cfg.token);
    let right = format!("Bearer {}", c.cfg.admin_token);
    let book = json!({"id": 77, "title": "New", "cost": 5, "count": 3, "topic": "t"});
    let changes = [
        (hyper::Method::PUT, &price, json!({"cost": 99})),
        (hyper::Method::POST, &restock, json!({"qty": 5})),
        (hyper::Method::POST, &add, book.clone()),
    ];
    for (method, url, body) in &changes {
        for headers in [vec![], vec![("authorization", wrong.as_str())]] {
            let (status, answer) = http
                .send(method.clone(), url, &headers, Some(body.clone()))
                .await
                .unwrap();
            assert_eq!(status, 401, "{method} {url} with {headers:?}: {answer}");
            assert!(answer["error"].is_string(), "{answer}");
        }
    }
    let (_, before) = http.get(&c.url("/books/1")).await.unwrap();
    assert_ne!(before["cost"], 99, "a refused price change changed nothing");

    let admin = [("authorization", right.as_str())];
    for (method, url, body) in &changes {
        let (status, answer) = http
            .send(method.clone(), url, &admin, Some(body.clone()))
            .await
            .unwrap();
        assert!(status == 200 || status == 201, "{method} {url}: {answer}");
    }
    let (_, after) = http.get(&c.url("/books/1")).await.unwrap();
    assert_eq!(after["cost"], 99);
    assert_eq!(after["count"], before["count"].as_u64().unwrap() + 5);
    let (status, _) = http.get(&c.url("/books/77")).await.unwrap();
    assert_eq!(status, 200);
}

/// Concurrent buyers over the REST API, each buy with its own key; every
/// answer recorded.
struct Buyers {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Order ids acknowledged.
    orders: Arc<Mutex<Vec<u64>>>,
    /// Answers that were neither a success nor a sold-out 404 (a sold-out
    /// item is the store's definite answer, and restocks it).
    failures: Arc<Mutex<Vec<String>>>,
}

impl Buyers {
    fn start(c: &Cluster, clients: usize) -> Buyers {
        // Keys are unique across every set of buyers in the process: a
        // second set reusing the first one's keys would get its orders
        // back (idempotent retries), not new ones.
        static SETS: AtomicU64 = AtomicU64::new(0);
        let set = SETS.fetch_add(1, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let orders = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..clients)
            .map(|i| {
                let (stop, orders, failures) = (stop.clone(), orders.clone(), failures.clone());
                let base = c.url("");
                tokio::spawn(async move {
                    let http = Http::new();
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let id = 1 + (n + i as u64) % 7;
                        let key = format!("buyer-{set}-{i}-{n}");
                        let answer = http
                            .send(
                                hyper::Method::POST,
                                &format!("{base}/books/{id}/buy"),
                                &[("idempotency-key", &key)],
                                None,
                            )
                            .await;
                        match answer {
                            Ok((201, body)) => orders
                                .lock()
                                .unwrap()
                                .push(body["order"]["id"].as_u64().unwrap()),
                            Ok((404, body))
                                if body["error"]
                                    .as_str()
                                    .is_some_and(|e| e.contains("out of stock")) => {}
                            other => failures.lock().unwrap().push(format!("{key}: {other:?}")),
                        }
                    }
                })
            })
            .collect();
        Buyers {
            stop,
            tasks,
            orders,
            failures,
        }
    }

    fn acknowledged(&self) -> usize {
        self.orders.lock().unwrap().len()
    }

    async fn stop(self) -> (Vec<u64>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let orders = self.orders.lock().unwrap().clone();
        let failures = self.failures.lock().unwrap().clone();
        (orders, failures)
    }
}

/// Waits until the buyers got `more` acknowledgements beyond `from`.
async fn wait_for_buys(buyers: &Buyers, from: usize, more: usize) {
    let deadline = std::time::Instant::now() + support::PATIENCE;
    while buyers.acknowledged() < from + more {
        assert!(
            std::time::Instant::now() < deadline,
            "buys stalled at {} (failures: {:?})",
            buyers.acknowledged(),
            buyers.failures.lock().unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The checks after a run, from the invariant library: each group's
/// replicas identical, every item's stock and orders balanced, no buy
/// pending, every acknowledged order on every order replica, once.
fn assert_nothing_lost(states: &[(String, State)], acknowledged: &[u64]) {
    let catalogs = states.iter().filter(|(_, s)| s.group() == Group::Catalog);
    assert_eq!(
        (catalogs.count(), states.len()),
        (2, 4),
        "expected two replicas of each group"
    );
    let violations = check_settled(states, acknowledged);
    assert!(violations.is_empty(), "{violations:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_minus_nine_of_each_replica_kind_under_concurrent_buys_loses_nothing() {
    let mut c = Cluster::start().await;
    let buyers = Buyers::start(&c, 6);
    wait_for_buys(&buyers, 0, 50).await;

    // Kill the primary of each group in turn, with buys running: the
    // catalog primary (the order primary's reservations move over), then
    // the order primary (pending buys are finished by the new one).
    let mut killed = Vec::new();
    for group in ["catalog", "order"] {
        let health = c.wait_whole().await;
        let primary = health
            .views
            .iter()
            .find(|r| r.current.group.to_string() == group)
            .map(|r| r.current.primary.to_string())
            .unwrap();
        c.kill(&primary);
        killed.push(primary.clone());
        let id = NodeId::new(&primary);
        c.wait_health("the front end to see the kill", |h| h.down.contains(&id))
            .await;
        // Buys go on while the group runs on one replica.
        let so_far = buyers.acknowledged();
        wait_for_buys(&buyers, so_far, 30).await;
        c.restart(&primary);
        c.wait_whole().await;
        let so_far = buyers.acknowledged();
        wait_for_buys(&buyers, so_far, 30).await;
    }
    let (orders, failures) = buyers.stop().await;
    assert!(failures.is_empty(), "client requests failed: {failures:?}");

    let states = c.settled_states().await;
    assert_nothing_lost(&states, &orders);
    let heartbeat = c.read("heartbeat.log");
    for name in &killed {
        assert!(
            heartbeat.contains(&format!("replica is down node={name}")),
            "heartbeat.log records {name} going down:\n{heartbeat}"
        );
    }
}

/// The primary of each group in the last view, by name.
fn last_primaries(health: &Health) -> Vec<String> {
    health
        .views
        .iter()
        .map(|r| r.current.primary.to_string())
        .collect()
}

/// What clients can see of a replica's state: its books (stock and price)
/// or its orders. The whole state is not compared across a restart: a
/// resumed order group's new primary settles the catalog's reservations of
/// finished buys (bookkeeping no client sees) whenever it gets to it, and
/// the replicas' convergence is checked by `assert_nothing_lost`.
fn visible(state: &State) -> Value {
    match state {
        State::Catalog(c) => json!(c.all()),
        State::Orders(o) => json!(o.orders()),
    }
}

/// Every file directly in `dir`.
fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_last_primary_loses_nothing_committed() {
    // Buys, then the whole cluster stops; the last primary of each group
    // has its folder emptied (a replaced disk), then, in a second stop,
    // one byte flipped in each of its files. Each time the cluster
    // resumes, both replicas of each group hold exactly the state that was
    // committed before the stop: the damaged one is rebuilt from its
    // intact peer, never the other way round.
    let mut c = Cluster::start().await;
    let mut acknowledged = Vec::new();
    for round in ["emptied folder", "a byte flipped in each file"] {
        let buyers = Buyers::start(&c, 4);
        wait_for_buys(&buyers, 0, 60).await;
        let (orders, failures) = buyers.stop().await;
        assert!(failures.is_empty(), "client requests failed: {failures:?}");
        acknowledged.extend(orders);
        let before = c.settled_states().await;
        assert_nothing_lost(&before, &acknowledged);
        let damaged = last_primaries(&c.wait_whole().await);
        let data = c.cfg.data_dir.clone();
        c.stop_and_resume(|_| {
            for name in &damaged {
                for file in files_in(&data.join(name)) {
                    if round == "emptied folder" {
                        std::fs::remove_file(&file).unwrap();
                        continue;
                    }
                    let mut bytes = std::fs::read(&file).unwrap();
                    if bytes.is_empty() {
                        continue;
                    }
                    let middle = bytes.len() / 2;
                    bytes[middle] ^= 0x10;
                    std::fs::write(&file, &bytes).unwrap();
                }
            }
        })
        .await;
        let after = c.settled_states().await;
        for (name, state) in &after {
            let expected = &before.iter().find(|(n, _)| n == name).unwrap().1;
            assert!(
                visible(state) == visible(expected),
                "{round}: {name} does not hold the books and orders committed before the stop"
            );
        }
        assert_nothing_lost(&after, &acknowledged);
        let up = c.read("up.out");
        for name in &damaged {
            let log = c.read(&format!("{name}.log"));
            let said = if round == "emptied folder" {
                "new disk"
            } else {
                "storage damaged"
            };
            assert!(
                log.contains(said),
                "{round}: {name}'s log says what it found ({said}):\n{log}"
            );
        }
        assert!(!up.contains("exited"), "{round}: a node exited:\n{up}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_backup_resyncs_what_it_missed() {
    let mut c = Cluster::start().await;
    let health = c.wait_whole().await;
    let catalog = health
        .views
        .iter()
        .find(|r| r.current.group == pygmy_core::unstable::types::Group::Catalog)
        .unwrap();
    let backup = catalog.current.backups[0].to_string();
    let primary = catalog.current.primary.to_string();
    c.kill(&backup);
    let id = NodeId::new(&backup);
    c.wait_health("the backup dropped from the view", |h| {
        h.views.iter().all(|r| !r.current.contains(&id)) && h.views.iter().all(|r| r.is_confirmed())
    })
    .await;

    // Changes it misses: buys and an admin price change.
    let http = c.http();
    for id in 1..=7 {
        let (status, body) = http.get(&c.url(&format!("/buy?id={id}"))).await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let auth = format!("Bearer {}", c.cfg.admin_token);
    let (status, body) = http
        .send(
            hyper::Method::PUT,
            &c.url("/books/3/price"),
            &[("authorization", &auth)],
            Some(json!({"cost": 123})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    // What the primary had committed while the backup was dead.
    let missed = c.status(&primary).await.commit;

    c.restart(&backup);
    c.wait_whole().await;
    let states = c.settled_states().await;
    let state = |name: &str| &states.iter().find(|(n, _)| n == name).unwrap().1;
    assert!(
        state(&backup) == state(&primary),
        "the restarted backup differs"
    );
    let (b, p) = (c.status(&backup).await, c.status(&primary).await);
    assert!(
        b.commit >= missed,
        "it holds what was committed while it was dead"
    );
    assert_eq!((b.commit, b.digest), (p.commit, p.digest));
    match state(&backup) {
        State::Catalog(cat) => assert_eq!(cat.lookup(3).map(|b| b.cost), Some(123)),
        other => panic!("not a catalog: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_front_end_keeps_its_views_and_serves_the_same_data() {
    let mut c = Cluster::start().await;
    let before = c.wait_whole().await;
    let (status, body) = c.http().get(&c.url("/buy?id=2")).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let order = body["order"]["id"].as_u64().unwrap();

    c.kill("frontend");
    assert!(c.health().await.is_none(), "the front end is dead");
    c.restart("frontend");
    let after = c.wait_whole().await;
    let views = |h: &pygmy_core::unstable::frontend::Health| {
        h.views
            .iter()
            .map(|r| r.current.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        views(&after),
        views(&before),
        "the views survived the restart"
    );

    let (status, body) = c
        .http()
        .get(&c.url(&format!("/orders/{order}")))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["item_id"], 2);
    let (status, body) = c.http().get(&c.url("/buy?id=2")).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body["order"]["id"].as_u64().unwrap() > order);
    let heartbeat = c.read("heartbeat.log");
    assert_eq!(
        heartbeat.matches("front end started").count(),
        2,
        "both starts are in heartbeat.log:\n{heartbeat}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kills_every_replica_in_turn_and_reports_nothing_lost() {
    let c = Cluster::start().await;
    c.wait_whole().await;
    let out = pygmy()
        .args(["chaos", "--dir"])
        .arg(&c.dir)
        .args([
            "--target",
            "each",
            "--downtime",
            "500ms",
            "--settle",
            "300ms",
        ])
        .args(["--clients", "4", "--json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["ok"], true);
    let rounds = report["rounds"].as_array().unwrap();
    let killed: Vec<&str> = rounds
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert_eq!(killed, ["catalog-1", "catalog-2", "order-1", "order-2"]);
    for r in rounds {
        assert_eq!(r["requests"]["failed"], 0, "{r}");
        assert!(r["requests"]["requests"].as_u64().unwrap() > 0, "{r}");
        assert!(r["recover_ms"].is_number(), "{r}");
        assert_ne!(r["restarted_pid"], r["killed_pid"]);
    }
    assert_eq!(report["failed_requests"], 0);
    assert!(report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .all(|g| g["identical"] == true));
    assert!(report["books"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["balanced"] == true));
    assert_eq!(report["orders_missing"], json!([]));
    assert!(report["orders_acknowledged"].as_u64().unwrap() > 0);
    // Independently of chaos's own checks: the replicas agree.
    let states = c.settled_states().await;
    assert_nothing_lost(&states, &[]);
}

#[test]
fn bad_flags_and_missing_clusters_are_named_in_the_error() {
    let run = |args: &[&str]| {
        let out = pygmy().args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["load", "--mix", "search=1,serch=2"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown operation \"serch\""), "{err}");
    let (code, err) = run(&["load", "--duration", "10"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--duration"), "{err}");
    let (code, err) = run(&["load", "--duration", "1s", "--requests", "5"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cannot be used with"), "{err}");

    let port = support::free_ports(1);
    let (code, err) = run(&[
        "load",
        "--url",
        &format!("127.0.0.1:{port}"),
        "--requests",
        "1",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot list the books"), "{err}");

    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let (code, err) = run(&["chaos", "--dir", dir]);
    assert_eq!(code, Some(1));
    assert!(err.contains("pygmy.toml"), "{err}");
    // Values out of range are bad flags: exit 2, the flag named.
    for (flag, value) in [
        ("--replicas", "0"),
        ("--replicas", "10"),
        ("--base-port", "65533"),
        ("--base-port", "0"),
    ] {
        let (code, err) = run(&["up", "--dir", dir, flag, value]);
        assert_eq!(code, Some(2), "{flag} {value}: {err}");
        assert!(err.contains(flag), "{err}");
    }

    // A pygmy.toml that cannot be used is named, with the problem, before
    // any node starts.
    let toml = empty.path().join("pygmy.toml");
    std::fs::write(&toml, b"data_dir = \"\xff\xfe\"\n").unwrap();
    let (code, err) = run(&["up", "--dir", dir]);
    assert_eq!(code, Some(1));
    assert!(err.contains("pygmy.toml") && err.contains("UTF-8"), "{err}");
    assert!(!err.contains("is there a cluster"), "{err}");
    let mut cfg = pygmy::config::ClusterConfig::local(
        empty.path().to_path_buf(),
        2,
        support::free_ports(1),
        "t".into(),
        "a".into(),
    );
    cfg.order[0].addr = cfg.catalog[1].addr.clone();
    std::fs::write(&toml, cfg.to_toml()).unwrap();
    let (code, err) = run(&["up", "--dir", dir]);
    assert_eq!(code, Some(1));
    assert!(err.contains("catalog-2 and order-1 both use"), "{err}");
    let (code, err) = run(&[
        "node",
        "--config",
        toml.to_str().unwrap(),
        "--name",
        "frontend",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("both use"), "{err}");
}
