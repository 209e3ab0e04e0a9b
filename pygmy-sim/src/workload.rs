//! Simulated clients: they talk to the front end's public HTTP API exactly
//! as a user would (REST and the original's API), and record a history of
//! what they asked and what they were told.
//!
//! - Buys carry an `Idempotency-Key` and are retried under it until they get
//!   a definite answer, so one logical buy is one history operation.
//! - Restocks and price changes are not idempotent: one without a definite
//!   answer is recorded as indeterminate and not retried.
//! - Reads are retried the same way; a read that never got an answer is
//!   indeterminate (reads change nothing, so that is harmless).

use crate::cluster::{ADMIN, FRONTEND_PORT};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, StatusCode};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use pygmy_core::invariants::history::{ClientId, Op, Recorder, Ret};
use pygmy_core::unstable::state::command::Order;
use pygmy_core::unstable::types::{Book, ItemId};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::net::SimConnector;

/// What the clients do and for how long.
#[derive(Clone, Debug)]
pub struct WorkloadOptions {
    /// The front ends' host names: each client starts on one (client `i`
    /// on front end `i mod n`) and moves to the next when its own fails to
    /// answer (no answer, or a 5xx).
    pub frontends: Vec<String>,
    pub clients: usize,
    /// Clients start no new operation after this simulated time.
    pub stop_at: Duration,
    /// A retried request gives up (indeterminate) after this long.
    pub give_up_after: Duration,
    /// Items the clients use (few, so they contend).
    pub items: Vec<ItemId>,
    pub topics: Vec<String>,
}

/// How long a client waits for one HTTP exchange before it gives it up
/// (and moves to the next front end).
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(4);

/// Simulated time in nanoseconds.
pub fn now() -> u64 {
    turmoil::sim_elapsed().map_or(0, |d| d.as_nanos() as u64)
}

/// A client's HTTP client and the front end it uses now.
struct Http {
    client: HttpClient<SimConnector, Full<Bytes>>,
    frontends: Vec<String>,
    at: AtomicUsize,
}

impl Http {
    fn frontend(&self) -> &str {
        &self.frontends[self.at.load(Ordering::Relaxed) % self.frontends.len()]
    }

    /// Its front end failed to answer: use the next one.
    fn move_on(&self) {
        self.at.fetch_add(1, Ordering::Relaxed);
    }
}

/// One HTTP exchange's result: status and JSON body, or why there was none.
async fn send(
    http: &Http,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    body: Option<Value>,
) -> Result<(StatusCode, Value), String> {
    let uri = format!("http://{}:{FRONTEND_PORT}{path}", http.frontend());
    let mut req = hyper::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = req
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let resp = http.client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let json = serde_json::from_slice(&bytes).map_err(|e| format!("bad JSON: {e}"))?;
        Ok((status, json))
    };
    let result = match tokio::time::timeout(EXCHANGE_TIMEOUT, exchange).await {
        Ok(r) => r,
        Err(_) => Err("client timeout".into()),
    };
    match &result {
        Ok((status, _)) if status.is_server_error() => http.move_on(),
        Err(_) => http.move_on(),
        Ok(_) => {}
    }
    result
}

fn message(body: &Value) -> String {
    body.get("error")
        .or_else(|| body.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// Is this a failure whose outcome is unknown (worth retrying a buy)?
fn indeterminate(status: StatusCode) -> bool {
    status.is_server_error()
}

async fn buy(http: &Http, item: ItemId, qty: u64, key: &str, give_up: u64) -> Ret {
    let mut last = String::new();
    while now() < give_up {
        let reply = send(
            http,
            Method::POST,
            &format!("/books/{item}/buy"),
            &[("idempotency-key", key.to_string())],
            Some(serde_json::json!({ "qty": qty })),
        )
        .await;
        match reply {
            Ok((s, body)) if s.is_success() => {
                let order: Option<Order> = body
                    .get("order")
                    .and_then(|o| serde_json::from_value(o.clone()).ok());
                return match order {
                    Some(o) => Ret::Bought {
                        order_id: o.id,
                        remaining: o.remaining,
                    },
                    None => Ret::Failed(format!("buy answered without an order: {body}")),
                };
            }
            Ok((StatusCode::NOT_FOUND, body)) => {
                let m = message(&body);
                return if m.contains("out of stock") {
                    Ret::OutOfStock
                } else {
                    Ret::NotFound
                };
            }
            Ok((s, body)) if indeterminate(s) => last = format!("{s}: {}", message(&body)),
            Ok((s, body)) => return Ret::Failed(format!("{s}: {}", message(&body))),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ret::Failed(format!("gave up: {last}"))
}

/// An admin price change under an idempotency key, retried with it until
/// `give_up` like a buy: the key makes a retry apply once, so only a
/// change that never got an answer is indeterminate.
async fn set_price(http: &Http, item: ItemId, cost: u64, key: &str, give_up: u64) -> Ret {
    let mut last = String::new();
    while now() < give_up {
        let reply = send(
            http,
            Method::PUT,
            &format!("/books/{item}/price"),
            &admin_headers(key),
            Some(serde_json::json!({ "cost": cost })),
        )
        .await;
        match reply {
            Ok((s, body)) if s.is_success() => {
                return match serde_json::from_value::<Book>(body.clone()) {
                    Ok(book) if book.cost == cost => Ret::PriceSet,
                    _ => Ret::Failed(format!("price change answered {body}")),
                }
            }
            Ok((StatusCode::NOT_FOUND, _)) => return Ret::NotFound,
            Ok((s, body)) if indeterminate(s) => last = format!("{s}: {}", message(&body)),
            Ok((s, body)) => return Ret::Failed(format!("{s}: {}", message(&body))),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ret::Failed(format!("price change gave up: {last}"))
}

/// A restock under an idempotency key, retried with it (see `set_price`).
/// A retry answers with the first application's count.
async fn restock(http: &Http, item: ItemId, qty: u64, key: &str, give_up: u64) -> Ret {
    let mut last = String::new();
    while now() < give_up {
        let reply = send(
            http,
            Method::POST,
            &format!("/books/{item}/restock"),
            &admin_headers(key),
            Some(serde_json::json!({ "qty": qty })),
        )
        .await;
        match reply {
            Ok((s, body)) if s.is_success() => {
                return match serde_json::from_value::<Book>(body.clone()) {
                    Ok(book) => Ret::Restocked { count: book.count },
                    Err(_) => Ret::Failed(format!("restock answered {body}")),
                }
            }
            Ok((StatusCode::NOT_FOUND, _)) => return Ret::NotFound,
            Ok((s, body)) if indeterminate(s) => last = format!("{s}: {}", message(&body)),
            Ok((s, body)) => return Ret::Failed(format!("{s}: {}", message(&body))),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ret::Failed(format!("restock gave up: {last}"))
}

fn admin_headers(key: &str) -> [(&'static str, String); 2] {
    [
        ("authorization", format!("Bearer {ADMIN}")),
        ("idempotency-key", key.to_string()),
    ]
}

/// A lookup, half the time through the original's API, retried until
/// `give_up` like any patient client.
async fn lookup(http: &Http, item: ItemId, original: bool, give_up: u64) -> Ret {
    let path = if original {
        format!("/lookup?id={item}")
    } else {
        format!("/books/{item}")
    };
    let mut last = String::new();
    while now() < give_up {
        match send(http, Method::GET, &path, &[], None).await {
            Ok((s, body)) if s.is_success() => {
                let book = if original {
                    body.get("item")
                        .and_then(|i| i.get(0))
                        .and_then(|b| serde_json::from_value::<Book>(b.clone()).ok())
                } else {
                    serde_json::from_value::<Book>(body.clone()).ok()
                };
                return match book {
                    Some(b) => Ret::Book(b),
                    None => Ret::Failed(format!("lookup answered {body}")),
                };
            }
            Ok((StatusCode::NOT_FOUND, _)) => return Ret::NotFound,
            Ok((s, body)) if indeterminate(s) => last = format!("{s}: {}", message(&body)),
            Ok((s, body)) => return Ret::Failed(format!("{s}: {}", message(&body))),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ret::Failed(format!("lookup gave up: {last}"))
}

async fn search(http: &Http, topic: &str, give_up: u64) -> Ret {
    let path = format!("/search?topic={}", topic.replace(' ', "%20"));
    let mut last = String::new();
    while now() < give_up {
        match send(http, Method::GET, &path, &[], None).await {
            Ok((s, body)) if s.is_success() => {
                let books = body
                    .get("item")
                    .and_then(|i| serde_json::from_value::<Vec<Book>>(i.clone()).ok());
                return match books {
                    Some(b) => Ret::Books(b),
                    None => Ret::Failed(format!("search answered {body}")),
                };
            }
            Ok((s, body)) if indeterminate(s) => last = format!("{s}: {}", message(&body)),
            Ok((s, body)) => return Ret::Failed(format!("{s}: {}", message(&body))),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ret::Failed(format!("search gave up: {last}"))
}

/// An order read (`GET /orders/{id}`), retried until `give_up` like a
/// lookup.
async fn read_order(http: &Http, id: u64, give_up: u64) -> Ret {
    let path = format!("/orders/{id}");
    let mut last = String::new();
    while now() < give_up {
        match send(http, Method::GET, &path, &[], None).await {
            Ok((s, body)) if s.is_success() => {
                return match serde_json::from_value::<Order>(body.clone()) {
                    Ok(o) if o.id == id => Ret::Order {
                        item: o.item_id,
                        qty: o.qty,
                    },
                    _ => Ret::Failed(format!("order read answered {body}")),
                };
            }
            Ok((StatusCode::NOT_FOUND, _)) => return Ret::NotFound,
            Ok((s, body)) if indeterminate(s) => last = format!("{s}: {}", message(&body)),
            Ok((s, body)) => return Ret::Failed(format!("{s}: {}", message(&body))),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ret::Failed(format!("order read gave up: {last}"))
}

/// One client's life: operations until `stop_at`, each recorded.
pub async fn client(
    id: ClientId,
    seed: u64,
    opts: WorkloadOptions,
    rec: Recorder,
) -> turmoil::Result {
    let http = Http {
        client: HttpClient::builder(TokioExecutor::new()).build(SimConnector),
        at: AtomicUsize::new(id),
        frontends: opts.frontends.clone(),
    };
    let mut rng = SmallRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(id as u64));
    let mut n = 0;
    while now() < opts.stop_at.as_nanos() as u64 {
        n += 1;
        let item = opts.items[rng.gen_range(0..opts.items.len())];
        let roll = rng.gen_range(0..100);
        let op = match roll {
            0..=39 => Op::Buy {
                item,
                qty: rng.gen_range(1..=2),
                key: format!("c{id}-{n}"),
            },
            40..=44 if id == 0 => Op::Restock {
                item,
                qty: rng.gen_range(1..=5),
            },
            // Unique costs, so every cost seen names the write behind it.
            40..=44 if id == 1 => Op::SetPrice {
                item,
                cost: 1_000 + n,
            },
            45..=56 => Op::Search {
                topic: opts.topics[rng.gen_range(0..opts.topics.len())].clone(),
            },
            // Any client's acknowledged order, so a read may follow another
            // client's buy by little.
            57..=64 => match rec.acked_order(rng.gen_range(0..1_000)) {
                Some(id) => Op::ReadOrder { id },
                None => Op::Lookup { item },
            },
            _ => Op::Lookup { item },
        };
        let index = rec.invoke(id, op.clone(), now());
        let give_up = now() + opts.give_up_after.as_nanos() as u64;
        let ret = match &op {
            Op::Buy { item, qty, key } => buy(&http, *item, *qty, key, give_up).await,
            Op::Restock { item, qty } => {
                restock(&http, *item, *qty, &format!("c{id}-{n}"), give_up).await
            }
            Op::SetPrice { item, cost } => {
                set_price(&http, *item, *cost, &format!("c{id}-{n}"), give_up).await
            }
            Op::Lookup { item } => lookup(&http, *item, rng.gen_bool(0.5), give_up).await,
            Op::Search { topic } => search(&http, topic, give_up).await,
            Op::ReadOrder { id } => read_order(&http, *id, give_up).await,
        };
        rec.complete(index, now(), ret)?;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(5..60))).await;
    }
    Ok(())
}
