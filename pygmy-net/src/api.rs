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
//! | `GET /health` | REST | the front end's health; 503 while the store cannot serve |
//! | `GET /live`, `GET /ready` | probes | on every node, see [`App`](crate::App) |
//! | `POST /books` | REST, admin | 201, the new book (body: a book) |
//! | `PUT /books/{id}/price` | REST, admin | the book (body `{"cost": c}`) |
//! | `POST /books/{id}/restock` | REST, admin | the book (body `{"qty": n}`) |
//!
//! `HEAD` is answered wherever `GET` is (the same status and headers, no
//! body), except on the original's `/buy`, whose GET buys. Path segments
//! are percent-decoded before they are matched, as query values are.
//!
//! Admin routes need `Authorization: Bearer <admin token>`. Routing errors
//! are answered in the dialect of the path: unknown paths and REST paths
//! with `{"error"}` (404, 405), the original's paths with its envelope.
//!
//! The original's `GET /buy` is not idempotent — a proxy may retry it — and
//! carries no key; the front end makes one, as the original client expects a
//! new order per call. Clients that need exactly-once use the REST buy with
//! an `Idempotency-Key`.

use crate::body::{BodyLimit, BoxError};
use crate::wire::{Failure, HttpResponse};
use crate::{original, query, rest};
use async_trait::async_trait;
use hyper::body::Body;
use hyper::Method;
use pygmy_core::unstable::state::command::Order;
use pygmy_core::unstable::types::{Book, ItemId, OrderId};
use pygmy_core::Result;
use std::borrow::Cow;
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
    /// Admin changes: applied once per `key` when one is given.
    async fn restock(&self, id: ItemId, qty: u64, key: Option<String>) -> Result<Book>;
    async fn set_price(&self, id: ItemId, cost: u64, key: Option<String>) -> Result<Book>;
    async fn add_book(&self, book: Book, key: Option<String>) -> Result<Book>;
    /// What `GET /health` shows.
    fn health(&self) -> serde_json::Value;
    /// Whether the store can serve now; `GET /health` answers 503 while it
    /// cannot (the same page), so an orchestrator's probe can wait for it.
    fn ready(&self) -> bool {
        true
    }
}

/// The public side of a server: the API and the admin token.
#[derive(Clone)]
pub struct Public {
    pub api: Arc<dyn PublicApi>,
    pub admin_token: String,
}

/// Where a public request goes, decided from its method and path alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routed {
    /// One of the original's three endpoints (method checked: GET or HEAD).
    Original(original::Route),
    /// A REST endpoint.
    Rest(rest::Route),
    /// Refused before reaching an endpoint, in the original's envelope.
    OriginalFailure(Failure),
    /// Refused before reaching an endpoint, as `{"error"}`.
    RestFailure(Failure),
}

/// Routes a request by method and (still percent-encoded) path. A pure
/// function of its input, so it can be tested and fuzzed without a server.
///
/// Path segments are percent-decoded before they are matched or parsed
/// (`/books/%31` is `/books/1`, as `?id=%31` is `id=1`); `+` in a path is
/// not a space. `HEAD` is served wherever `GET` is (hyper then sends the
/// headers without the body).
pub fn route(method: &Method, path: &str) -> Routed {
    // Every route has at most MAX_SEGMENTS segments, so a longer path is no
    // route and its segments are not decoded. Kept on the stack: routing a
    // request allocates only when a segment is percent-encoded.
    let mut decoded: [Cow<'_, str>; MAX_SEGMENTS] = Default::default();
    let mut count = 0;
    for raw in path.trim_start_matches('/').split('/') {
        if count == MAX_SEGMENTS {
            return Routed::RestFailure(Failure::no_route(method, path));
        }
        decoded[count] = query::decode_path(raw);
        count += 1;
    }
    let all: [&str; MAX_SEGMENTS] = [&decoded[0], &decoded[1], &decoded[2]];
    let segments = &all[..count];
    let get = method == Method::GET || method == Method::HEAD;
    // The original's three routes answer everything, errors included, in
    // its envelope.
    let original = match segments {
        ["search"] => Some(original::Route::Search),
        ["lookup"] => Some(original::Route::Lookup),
        ["buy"] => Some(original::Route::Buy),
        _ => None,
    };
    if let Some(route) = original {
        // HEAD must not change anything, and the original's buy is a GET
        // that buys: HEAD is refused there.
        return match route {
            original::Route::Buy if method != Method::GET => {
                Routed::OriginalFailure(Failure::method_not_allowed(method, path, "GET"))
            }
            _ if !get => {
                Routed::OriginalFailure(Failure::method_not_allowed(method, path, "GET, HEAD"))
            }
            route => Routed::Original(route),
        };
    }
    let not_allowed = |allow| Routed::RestFailure(Failure::method_not_allowed(method, path, allow));
    let route = match (segments, method) {
        (["books"], _) if get => rest::Route::Books,
        (["books"], &Method::POST) => rest::Route::AddBook,
        (["books"], _) => return not_allowed("GET, HEAD, POST"),
        (["books", id], _) if get => rest::Route::Book(id_of(id)),
        (["books", _], _) => return not_allowed("GET, HEAD"),
        (["books", id, "buy"], &Method::POST) => rest::Route::Buy(id_of(id)),
        (["books", _, "buy"], _) => return not_allowed("POST"),
        (["books", id, "price"], &Method::PUT) => rest::Route::Price(id_of(id)),
        (["books", _, "price"], _) => return not_allowed("PUT"),
        (["books", id, "restock"], &Method::POST) => rest::Route::Restock(id_of(id)),
        (["books", _, "restock"], _) => return not_allowed("POST"),
        (["orders", id], _) if get => rest::Route::Order(id_of(id)),
        (["orders", _], _) => return not_allowed("GET, HEAD"),
        (["health"], _) if get => rest::Route::Health,
        (["health"], _) => return not_allowed("GET, HEAD"),
        _ => return Routed::RestFailure(Failure::no_route(method, path)),
    };
    Routed::Rest(route)
}

/// The most path segments of any route (`/books/{id}/buy`).
const MAX_SEGMENTS: usize = 3;

/// Routes one public request and answers it.
pub async fn respond<B>(
    public: &Public,
    limits: BodyLimit,
    request: hyper::Request<B>,
) -> HttpResponse
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let routed = route(request.method(), request.uri().path());
    respond_routed(public, limits, routed, request).await
}

/// Answers one public request already routed by [`route`] (the server
/// routes each request once, for its metrics label and its answer).
pub async fn respond_routed<B>(
    public: &Public,
    limits: BodyLimit,
    routed: Routed,
    request: hyper::Request<B>,
) -> HttpResponse
where
    B: Body,
    B::Error: Into<BoxError>,
{
    match routed {
        Routed::Original(route) => {
            original::respond(public.api.as_ref(), route, request.uri().query()).await
        }
        Routed::OriginalFailure(failure) => failure.original(),
        Routed::RestFailure(failure) => failure.rest(),
        Routed::Rest(route) => match rest::respond(public, limits, route, request).await {
            Ok(response) => response,
            Err(failure) => failure.rest(),
        },
    }
}

/// Parses an id from the path or query: decimal digits only (no sign, no
/// spaces: `u64::from_str` would take `+1`), at most `u64::MAX`.
pub fn parse_id(raw: &str) -> Result<u64, Failure> {
    let malformed = || {
        Failure::bad_request(format!(
            "malformed id '{raw}': expected a non-negative integer"
        ))
    };
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    raw.parse::<u64>().map_err(|_| {
        Failure::bad_request(format!("id '{raw}' is too large (at most {})", u64::MAX))
    })
}

/// Ids in paths are parsed by the endpoint, so that a malformed one is a
/// 400 from that endpoint and not a 404 from routing.
fn id_of(raw: &str) -> Result<u64, Failure> {
    parse_id(raw)
}
