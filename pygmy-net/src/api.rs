//! The public API of the front end: what it offers ([`PublicApi`]) and which
//! route reaches what.
//!
//! Two dialects are served side by side on the same port:
//!
//! | route | dialect | answer |
//! |---|---|---|
//! | `GET /search?topic=T` | original | envelope with the topic's books; 404 for a topic with none |
//! | `GET /lookup?id=N` | original | envelope with a list of one book |
//! | `GET /buy?id=N` | original | envelope with `"order": {"id": N}` |
//! | `GET /books[?topic=T]` | REST | `{"books": [...]}` (all books without `topic`) |
//! | `GET /books/{id}` | REST | the book |
//! | `POST /books/{id}/buy` | REST | 201 `{"order", "message"}`; `Idempotency-Key` header, body `{"qty": n}` optional |
//! | `GET /orders/{id}` | REST | the order |
//! | `GET /health` | REST | the front end's health |
//! | `POST /books` | REST, admin | 201, the new book (body: a book) |
//! | `PUT /books/{id}/price` | REST, admin | the book (body `{"cost": c}`) |
//! | `POST /books/{id}/restock` | REST, admin | the book (body `{"qty": n}`) |
//!
//! Admin routes need `Authorization: Bearer <admin token>`. Routing errors
//! are answered in the dialect of the path: unknown paths and REST paths
//! with `{"error"}` (404, 405), the original's paths with its envelope.
//!
//! The original's `GET /buy` is not idempotent — a proxy may retry it — and
//! carries no key; the front end makes one, as the original client expects a
//! new order per call. Clients that need exactly-once use the REST buy with
//! an `Idempotency-Key`.

use crate::body::BoxError;
use crate::wire::{Failure, HttpResponse};
use crate::{original, rest};
use async_trait::async_trait;
use hyper::body::Body;
use hyper::Method;
use pygmy_core::command::Order;
use pygmy_core::types::{Book, ItemId, OrderId};
use pygmy_core::Result;
use std::sync::Arc;

/// What the public API needs from the store. The front end implements it;
/// tests implement it with a map of books. Errors map to statuses as
/// [`wire`](crate::wire) describes.
#[async_trait]
pub trait PublicApi: Send + Sync + 'static {
    /// The books of `topic` (empty when the topic has none).
    async fn search(&self, topic: &str) -> Result<Vec<Book>>;
    /// Every book.
    async fn all_books(&self) -> Result<Vec<Book>>;
    async fn lookup(&self, id: ItemId) -> Result<Book>;
    /// Buys `qty` copies, exactly once per `key` (one is made when `None`).
    async fn buy(&self, id: ItemId, qty: u64, key: Option<String>) -> Result<Order>;
    async fn order(&self, id: OrderId) -> Result<Order>;
    async fn restock(&self, id: ItemId, qty: u64) -> Result<Book>;
    async fn set_price(&self, id: ItemId, cost: u64) -> Result<Book>;
    async fn add_book(&self, book: Book) -> Result<Book>;
    /// What `GET /health` shows.
    fn health(&self) -> serde_json::Value;
}

/// The public side of a server: the API and the admin token.
#[derive(Clone)]
pub struct Public {
    pub api: Arc<dyn PublicApi>,
    pub admin_token: String,
}

/// Routes one public request.
pub async fn respond<B>(public: &Public, limit: usize, request: hyper::Request<B>) -> HttpResponse
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let api = public.api.as_ref();
    // The original's three routes answer everything, errors included, in
    // its envelope.
    let original = match segments.as_slice() {
        ["search"] => Some(original::Route::Search),
        ["lookup"] => Some(original::Route::Lookup),
        ["buy"] => Some(original::Route::Buy),
        _ => None,
    };
    if let Some(route) = original {
        if method != Method::GET {
            return Failure::method_not_allowed(&method, &path, "GET").original();
        }
        return original::respond(api, route, request.uri().query()).await;
    }
    let route = match (segments.as_slice(), &method) {
        (["books"], &Method::GET) => rest::Route::Books,
        (["books"], &Method::POST) => rest::Route::AddBook,
        (["books"], _) => return not_allowed(&method, &path, "GET, POST"),
        (["books", id], &Method::GET) => rest::Route::Book(id_of(id)),
        (["books", _], _) => return not_allowed(&method, &path, "GET"),
        (["books", id, "buy"], &Method::POST) => rest::Route::Buy(id_of(id)),
        (["books", _, "buy"], _) => return not_allowed(&method, &path, "POST"),
        (["books", id, "price"], &Method::PUT) => rest::Route::Price(id_of(id)),
        (["books", _, "price"], _) => return not_allowed(&method, &path, "PUT"),
        (["books", id, "restock"], &Method::POST) => rest::Route::Restock(id_of(id)),
        (["books", _, "restock"], _) => return not_allowed(&method, &path, "POST"),
        (["orders", id], &Method::GET) => rest::Route::Order(id_of(id)),
        (["orders", _], _) => return not_allowed(&method, &path, "GET"),
        (["health"], &Method::GET) => rest::Route::Health,
        (["health"], _) => return not_allowed(&method, &path, "GET"),
        _ => return Failure::no_route(&method, &path).rest(),
    };
    match rest::respond(public, limit, route, request).await {
        Ok(response) => response,
        Err(failure) => failure.rest(),
    }
}

fn not_allowed(method: &Method, path: &str, allow: &'static str) -> HttpResponse {
    Failure::method_not_allowed(method, path, allow).rest()
}

/// Parses an id from the path or query: a non-negative integer.
pub fn parse_id(raw: &str) -> Result<u64, Failure> {
    raw.parse::<u64>().map_err(|_| {
        Failure::bad_request(format!(
            "malformed id '{raw}': expected a non-negative integer"
        ))
    })
}

/// Ids in paths are parsed by the endpoint, so that a malformed one is a
/// 400 from that endpoint and not a 404 from routing.
fn id_of(raw: &str) -> Result<u64, Failure> {
    parse_id(raw)
}
