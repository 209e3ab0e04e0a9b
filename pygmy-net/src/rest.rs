//! The REST endpoints of the public API (routes in [`api`](crate::api)).
//!
//! Buys and admin changes take an optional `Idempotency-Key` header
//! (printable ASCII, 1 to 200 bytes), as the IETF Idempotency-Key draft and
//! payment APIs use it: retrying a request with the same key after any
//! failure yields the same single order or change, and its first answer;
//! the same key with a different request (another book, quantity or
//! change) answers 422 and does nothing; while a different buy under the
//! key is still running, 409. Keys are never shown back (an order's JSON
//! has no request id). Admin endpoints check the bearer token before
//! reading the body.

use crate::api::Public;
use crate::auth::{bearer, token_matches};
use crate::body::{decode_object, read_limited, BodyLimit, BoxError};
use crate::query::Params;
use crate::wire::{
    bought_message, json, Books, BuyBody, BuyReply, Failure, HttpResponse, PriceBody, PublicOrder,
    RestockBody,
};
use hyper::body::Body;
use hyper::header::{HeaderMap, HeaderValue, LOCATION};
use hyper::StatusCode;
use pygmy_core::unstable::types::{Book, ItemId};

/// The header a client names its buy with.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Longest accepted idempotency key: keys are stored in the order ledger
/// and the catalog's admin table.
pub use pygmy_core::unstable::frontend::MAX_KEY_LEN;

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
    limit: BodyLimit,
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
        Route::Order(id) => Ok(json(
            StatusCode::OK,
            &PublicOrder::from(api.order(id?).await?),
        )),
        Route::Health => {
            let status = if api.ready() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            Ok(json(status, &api.health()))
        }
        Route::Buy(id) => {
            let id = id?;
            let key = idempotency_key(&parts.headers)?;
            let qty = buy_qty(&read_limited(body, limit).await?)?;
            let order = api.buy(id, qty, key).await?;
            let location = format!("/orders/{}", order.id);
            let message = bought_message(&order);
            let order = PublicOrder::from(order);
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
            let key = idempotency_key(&parts.headers)?;
            let body: PriceBody =
                decode_object(&read_limited(body, limit).await?, "the price body")?;
            Ok(json(
                StatusCode::OK,
                &api.set_price(id, body.cost, key).await?,
            ))
        }
        Route::Restock(id) => {
            // Authenticate first: a caller without the token learns nothing,
            // not even whether its id parses.
            admin(public, &parts.headers)?;
            let id = id?;
            let key = idempotency_key(&parts.headers)?;
            let body: RestockBody =
                decode_object(&read_limited(body, limit).await?, "the restock body")?;
            Ok(json(StatusCode::OK, &api.restock(id, body.qty, key).await?))
        }
        Route::AddBook => {
            admin(public, &parts.headers)?;
            let key = idempotency_key(&parts.headers)?;
            let book: Book = decode_object(&read_limited(body, limit).await?, "the book")?;
            let book = api.add_book(book, key).await?;
            let mut response = json(StatusCode::CREATED, &book);
            if let Ok(location) = HeaderValue::from_str(&format!("/books/{}", book.id)) {
                response.headers_mut().insert(LOCATION, location);
            }
            Ok(response)
        }
    }
}

/// The quantity a buy body asks for: an empty body is 1, otherwise a JSON
/// object `{"qty": n}` with `n` at least 1 (`qty` absent: 1).
pub fn buy_qty(bytes: &[u8]) -> Result<u64, Failure> {
    let qty = if bytes.iter().all(u8::is_ascii_whitespace) {
        1
    } else {
        decode_object::<BuyBody>(bytes, "the buy body")?
            .qty
            .unwrap_or(1)
    };
    if qty == 0 {
        return Err(Failure::bad_request("qty must be at least 1"));
    }
    Ok(qty)
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
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Failure> {
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
