//! Test fixtures: a fake node handler, a fake store behind the public API,
//! a server started in-process on port 0, and a plain hyper client.
#![allow(dead_code)]

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Method, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pygmy_core::unstable::state::command::Order;
use pygmy_core::unstable::transport::message::{Query, QueryResult, Request, Response};
use pygmy_core::unstable::transport::Handler;
use pygmy_core::unstable::types::{Book, ItemId, OrderId};
use pygmy_core::{Error, Result};
use pygmy_net::{serve, Accept, App, PublicApi};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const TOKEN: &str = "internal-secret";
pub const ADMIN: &str = "admin-secret";

pub fn book(id: ItemId, title: &str, count: u64, topic: &str) -> Book {
    Book {
        id,
        title: title.to_string(),
        cost: 10 + id,
        count,
        topic: topic.to_string(),
    }
}

/// A node handler that answers from the request alone: `Lookup{id}` with a
/// book of that id (or `NotFound` for 0), `Heartbeat` with `Ok`, `Fetch`
/// after sleeping `wait_ms`, anything else with `Unavailable`.
pub struct Echo;

#[async_trait]
impl Handler for Echo {
    async fn handle(&self, request: Request) -> Response {
        match request {
            Request::Heartbeat { .. } => Response::Ok,
            Request::Read(Query::Lookup { id: 0 }) => {
                Response::Error(Error::NotFound("item 0 not found".into()))
            }
            Request::Read(Query::Lookup { id }) => Response::Read {
                result: QueryResult::Book(Some(book(id, "Echoed", 1, "echo"))),
                lsn: id,
            },
            Request::Fetch { wait_ms, .. } => {
                tokio::time::sleep(Duration::from_millis(wait_ms)).await;
                Response::Ok
            }
            _ => Response::Error(Error::Unavailable("echo only echoes".into())),
        }
    }
}

/// A store behind the public API: a map of books, buys recorded by key.
/// Items listed in `failures` fail `lookup` and `buy` with that error.
pub struct FakeStore {
    pub books: Mutex<BTreeMap<ItemId, Book>>,
    pub orders: Mutex<Vec<Order>>,
    pub failures: BTreeMap<ItemId, Error>,
}

impl FakeStore {
    /// Books 1-3 ("distributed systems"), 4 ("graduate school", sold
    /// out); items 500, 503, 409, 401 fail with the matching error.
    pub fn new() -> Self {
        let books = [
            book(
                1,
                "How to get a good grade in 677 in 20 minutes a day",
                100,
                "distributed systems",
            ),
            book(2, "RPCs for Noobs", 100, "distributed systems"),
            book(
                3,
                "Xen and the Art of Surviving Undergraduate School",
                100,
                "distributed systems",
            ),
            book(
                4,
                "Cooking for the Impatient Graduate Student",
                0,
                "graduate school",
            ),
        ];
        let failures = BTreeMap::from([
            (500, Error::Storage("disk full".into())),
            (503, Error::Unavailable("no catalog replica".into())),
            (504, Error::NotPrimary { hint: None }),
            (409, Error::Conflict("conflicting".into())),
            (401, Error::Unauthorized("not you".into())),
        ]);
        FakeStore {
            books: Mutex::new(books.into_iter().map(|b| (b.id, b)).collect()),
            orders: Mutex::new(Vec::new()),
            failures,
        }
    }

    fn fail(&self, id: ItemId) -> Result<()> {
        match self.failures.get(&id) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn change(&self, id: ItemId, f: impl FnOnce(&mut Book)) -> Result<Book> {
        let mut books = self
            .books
            .lock()
            .map_err(|_| Error::Storage("poisoned".into()))?;
        let book = books
            .get_mut(&id)
            .ok_or_else(|| Error::NotFound(format!("item {id} not found")))?;
        f(book);
        Ok(book.clone())
    }
}

#[async_trait]
impl PublicApi for FakeStore {
    async fn search(&self, topic: &str) -> Result<Vec<Book>> {
        let books = self
            .books
            .lock()
            .map_err(|_| Error::Storage("poisoned".into()))?;
        Ok(books
            .values()
            .filter(|b| b.topic == topic)
            .cloned()
            .collect())
    }
    async fn all_books(&self) -> Result<Vec<Book>> {
        let books = self
            .books
            .lock()
            .map_err(|_| Error::Storage("poisoned".into()))?;
        Ok(books.values().cloned().collect())
    }
    async fn lookup(&self, id: ItemId) -> Result<Book> {
        self.fail(id)?;
        self.change(id, |_| {})
    }
    async fn buy(&self, id: ItemId, qty: u64, key: Option<String>) -> Result<Order> {
        self.fail(id)?;
        let mut orders = self
            .orders
            .lock()
            .map_err(|_| Error::Storage("poisoned".into()))?;
        let request = key.unwrap_or_else(|| format!("made-{}", orders.len()));
        if let Some(order) = orders.iter().find(|o| o.request == request) {
            return Ok(order.clone());
        }
        let mut stock = 0;
        self.change(id, |b| stock = b.count)?;
        if stock < qty {
            return Err(Error::OutOfStock(id));
        }
        let book = self.change(id, |b| b.count -= qty)?;
        let order = Order {
            id: orders.len() as OrderId + 1,
            item_id: id,
            title: book.title,
            topic: book.topic,
            qty,
            cost: book.cost,
            remaining: book.count,
            created: 1_700_000_000_000,
            request,
        };
        orders.push(order.clone());
        Ok(order)
    }
    async fn order(&self, id: OrderId) -> Result<Order> {
        let orders = self
            .orders
            .lock()
            .map_err(|_| Error::Storage("poisoned".into()))?;
        orders
            .iter()
            .find(|o| o.id == id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("order {id} not found")))
    }
    async fn restock(&self, id: ItemId, qty: u64, _key: Option<String>) -> Result<Book> {
        self.change(id, |b| b.count += qty)
    }
    async fn set_price(&self, id: ItemId, cost: u64, _key: Option<String>) -> Result<Book> {
        self.change(id, |b| b.cost = cost)
    }
    async fn add_book(&self, book: Book, _key: Option<String>) -> Result<Book> {
        let mut books = self
            .books
            .lock()
            .map_err(|_| Error::Storage("poisoned".into()))?;
        if books.contains_key(&book.id) {
            return Err(Error::Conflict(format!("item {} already exists", book.id)));
        }
        books.insert(book.id, book.clone());
        Ok(book)
    }
    fn health(&self) -> serde_json::Value {
        serde_json::json!({"views": [], "up": ["catalog-1"], "down": []})
    }
}

/// A tokio listener that counts the connections it accepted.
pub struct Counting {
    pub listener: TcpListener,
    pub accepted: Arc<AtomicUsize>,
}

#[async_trait]
impl Accept for Counting {
    type Io = <TcpListener as Accept>::Io;
    async fn accept(&mut self) -> std::io::Result<Self::Io> {
        let io = Accept::accept(&mut self.listener).await?;
        self.accepted.fetch_add(1, Ordering::SeqCst);
        Ok(io)
    }
}

/// A running server: its address, its accept count, how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<()>,
}

impl Running {
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

pub async fn start(app: App) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().expect("local addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let acceptor = Counting {
        listener,
        accepted: accepted.clone(),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(acceptor, Arc::new(app), async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        accepted,
        stop: Some(stop),
        task,
    }
}

/// The front end's app: echo handler inside, fake store outside.
pub fn front_end_app() -> App {
    App::new(Arc::new(Echo), TOKEN).with_public(Arc::new(FakeStore::new()), ADMIN)
}

/// A reply as a plain client sees it.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {}", self.text()))
    }
}

/// Sends one request with a plain hyper client.
pub async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut request = hyper::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body.into())).expect("valid request");
    let response = client.request(request).await.expect("server answers");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("whole body")
        .to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn get(url: &str) -> Reply {
    send(Method::GET, url, &[], Bytes::new()).await
}
