//! The REST endpoints of the public API (routes in [`api`](crate::api)).
//!
//! Buys take an optional `Idempotency-Key` header: retrying a buy with the
//! same key after any failure yields the same single order. Admin endpoints
//! check the bearer token before reading the body.

use crate::api::Public;
use crate::auth::{bearer, token_matches};
use crate::body::{decode, read_limited, BoxError};
use crate::query::Params;
use crate::wire::{
    bought_message, json, Books, BuyBody, BuyReply, Failure, HttpResponse, PriceBody, RestockBody,
};
use hyper::body::Body;
use hyper::header::{HeaderMap, HeaderValue, LOCATION};
use hyper::StatusCode;
use pygmy_core::types::{Book, ItemId};

/// The header a client names its buy with.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Longest accepted idempotency key: keys are stored in the order ledger.
pub const MAX_KEY_LEN: usize = 200;

/// A REST route; ids are parsed already (a malformed one is the `Err`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Books,
    AddBook,
    Book(Result<ItemId, Failure>),
    Buy(Result<ItemId, Failure>),
    Price(Result<ItemId, Failure>),
    Restock(Result<ItemId, Failure>),
    Order(Result<ItemId, Failure>),
    Health,
}

/// Answers one REST request.
pub async fn respond<B>(
    public: &Public,
    limit: usize,
    route: Route,
    request: hyper::Request<B>,
) -> Result<HttpResponse, Failure>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let api = public.api.as_ref();
    let (parts, body) = request.into_parts();
    match route {
        Route::Books => {
            let params = Params::parse(parts.uri.query());
            let books = match params.get("topic") {
                None => api.all_books().await?,
                Some("") => return Err(Failure::bad_request("parameter 'topic' is empty")),
                Some(topic) => api.search(topic).await?,
            };
            Ok(json(StatusCode::OK, &Books { books }))
        }
        Route::Book(id) => Ok(json(StatusCode::OK, &api.lookup(id?).await?)),
        Route::Order(id) => Ok(json(StatusCode::OK, &api.order(id?).await?)),
        Route::Health => Ok(json(StatusCode::OK, &api.health())),
        Route::Buy(id) => {
            let id = id?;
            let key = idempotency_key(&parts.headers)?;
            let bytes = read_limited(body, limit).await?;
            let qty = if bytes.iter().all(u8::is_ascii_whitespace) {
                1
            } else {
                decode::<BuyBody>(&bytes, "the buy body")?.qty.unwrap_or(1)
            };
            if qty == 0 {
                return Err(Failure::bad_request("qty must be at least 1"));
            }
            let order = api.buy(id, qty, key).await?;
            let location = format!("/orders/{}", order.id);
            let message = bought_message(&order);
            let mut response = json(StatusCode::CREATED, &BuyReply { order, message });
            if let Ok(location) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(LOCATION, location);
            }
            Ok(response)
        }
        Route::Price(id) => {
            // Authenticate first: a caller without the token learns nothing,
            // not even whether its id parses.
            admin(public, &parts.headers)?;
            let id = id?;
            let body: PriceBody = decode(&read_limited(body, limit).await?, "the price body")?;
            Ok(json(StatusCode::OK, &api.set_price(id, body.cost).await?))
        }
        Route::Restock(id) => {
            // Authenticate first: a caller without the token learns nothing,
            // not even whether its id parses.
            admin(public, &parts.headers)?;
            let id = id?;
            let body: RestockBody = decode(&read_limited(body, limit).await?, "the restock body")?;
            Ok(json(StatusCode::OK, &api.restock(id, body.qty).await?))
        }
        Route::AddBook => {
            admin(public, &parts.headers)?;
            let book: Book = decode(&read_limited(body, limit).await?, "the book")?;
            let book = api.add_book(book).await?;
            let mut response = json(StatusCode::CREATED, &book);
            if let Ok(location) = HeaderValue::from_str(&format!("/books/{}", book.id)) {
                response.headers_mut().insert(LOCATION, location);
            }
            Ok(response)
        }
    }
}

/// Checks the admin bearer token.
fn admin(public: &Public, headers: &HeaderMap) -> Result<(), Failure> {
    match bearer(headers) {
        None => Err(Failure::unauthorized(
            "admin token required (Authorization: Bearer <token>)",
        )),
        Some(given) if token_matches(&public.admin_token, given) => Ok(()),
        Some(_) => Err(Failure::unauthorized("wrong admin token")),
    }
}

/// The buy's `Idempotency-Key`, if given: printable ASCII, 1 to
/// [`MAX_KEY_LEN`] bytes.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Failure> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| Failure::bad_request("Idempotency-Key must be printable ASCII"))?
        .trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Failure::bad_request(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} characters"
        )));
    }
    Ok(Some(key.to_string()))
}
