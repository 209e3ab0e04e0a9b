//! What travels on the public wire: the JSON bodies of both public dialects,
//! the error-to-status mapping, and helpers that build JSON responses.
//!
//! Two dialects share one mapping from [`Error`] to HTTP status:
//!
//! - the **original's** envelope, which clients written for the original
//!   Pygmy parse: `{"item": [...], "message": "", "status": "Success",
//!   "validation_code": 200}`, and on failure `{"message": "...", "status":
//!   "Failed", "validation_code": C}` with `C` equal to the HTTP status. Keys
//!   are declared in alphabetical order because the original (Flask's
//!   `jsonify`) sent them sorted;
//! - the **REST** dialect: plain values, and `{"error": "..."}` on failure.
//!
//! | error | status |
//! |---|---|
//! | `NotFound`, `OutOfStock` | 404 |
//! | `InvalidInput` | 400 |
//! | `Unauthorized` | 401 |
//! | `Conflict` | 409 |
//! | `KeyReused` | 422 |
//! | `Unavailable`, `Transport`, `NotPrimary`, `StaleEpoch` | 503 |
//! | `Storage` | 500 |
//!
//! These types derive `Deserialize` too, so Rust clients (the simulation's
//! workload, the CLI) parse exactly what the server writes.

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::StatusCode;
use pygmy_core::unstable::state::command::Order;
use pygmy_core::unstable::types::{Book, OrderId};
use pygmy_core::Error;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

/// Every response this crate's servers send.
pub type HttpResponse = hyper::Response<Full<Bytes>>;

/// The original's `status` on success.
pub const SUCCESS: &str = "Success";
/// The original's `status` on failure.
pub const FAILED: &str = "Failed";

/// The original's answer to `/search` and `/lookup`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub item: Vec<Book>,
    pub message: String,
    pub status: String,
    pub validation_code: u16,
}

/// The original's answer to a successful `/buy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bought {
    pub message: String,
    pub order: OrderRef,
    pub status: String,
    pub validation_code: u16,
}

/// The order part of [`Bought`]: `{"id": N}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRef {
    pub id: OrderId,
}

/// The original's answer to any failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failed {
    pub message: String,
    pub status: String,
    pub validation_code: u16,
}

/// REST and internal failures: `{"error": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// `GET /books`: `{"books": [...]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Books {
    pub books: Vec<Book>,
}

/// `POST /books/{id}/buy` body (optional): `{"qty": n}`, 1 when absent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuyBody {
    #[serde(default)]
    pub qty: Option<u64>,
}

/// An order as the public API shows it: the ledger's [`Order`] without its
/// request id. That id is the buyer's `Idempotency-Key`, and whoever knows
/// a key can retry (and so learn the outcome of) its buy, so keys are shown
/// to nobody, the buyer included (it has it already).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicOrder {
    pub id: OrderId,
    pub item_id: pygmy_core::unstable::types::ItemId,
    pub title: String,
    pub topic: String,
    pub qty: u64,
    pub cost: u64,
    pub remaining: u64,
    pub created: u64,
}

impl From<Order> for PublicOrder {
    fn from(order: Order) -> Self {
        PublicOrder {
            id: order.id,
            item_id: order.item_id,
            title: order.title,
            topic: order.topic,
            qty: order.qty,
            cost: order.cost,
            remaining: order.remaining,
            created: order.created,
        }
    }
}

/// `POST /books/{id}/buy` answer (201).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuyReply {
    pub order: PublicOrder,
    pub message: String,
}

/// `PUT /books/{id}/price` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceBody {
    pub cost: u64,
}

/// `POST /books/{id}/restock` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestockBody {
    pub qty: u64,
}

/// The HTTP status for an error, in both dialects.
pub fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::NotFound(_) | Error::OutOfStock(_) => StatusCode::NOT_FOUND,
        Error::InvalidInput(_) => StatusCode::BAD_REQUEST,
        Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::KeyReused(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Unavailable(_)
        | Error::Transport(_)
        | Error::NotPrimary { .. }
        | Error::StaleEpoch { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A request that fails before or after reaching the store: its status and
/// message, rendered in whichever dialect the route speaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub status: StatusCode,
    pub message: String,
    /// For 405: the methods the route allows (the `Allow` header).
    pub allow: Option<&'static str>,
}

impl Failure {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
            allow: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn no_route(method: &hyper::Method, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("no route for {method} {path}"),
        )
    }

    pub fn method_not_allowed(method: &hyper::Method, path: &str, allow: &'static str) -> Self {
        Failure {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: format!("{method} is not allowed on {path} (allowed: {allow})"),
            allow: Some(allow),
        }
    }

    /// As the REST and internal endpoints answer it: `{"error": "..."}`.
    pub fn rest(self) -> HttpResponse {
        let status = self.status;
        let allow = self.allow;
        let body = ErrorBody {
            error: self.message,
        };
        with_allow(json(status, &body), allow)
    }

    /// As the original answered it: the `Failed` envelope.
    pub fn original(self) -> HttpResponse {
        let status = self.status;
        let allow = self.allow;
        let body = Failed {
            message: self.message,
            status: FAILED.to_string(),
            validation_code: status.as_u16(),
        };
        with_allow(json(status, &body), allow)
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::new(status_of(&error), error.to_string())
    }
}

fn with_allow(mut response: HttpResponse, allow: Option<&'static str>) -> HttpResponse {
    if let Some(allow) = allow {
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
    }
    response
}

/// A JSON response. Serialising the types above cannot fail; should it
/// anyway, the client gets a 500 with a JSON error rather than a dropped
/// connection.
///
/// The body is encoded into a per-thread buffer and split off it (see
/// `encode`), so an answer costs no allocation of its own.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> HttpResponse {
    match encode(value) {
        Some(body) => body_response(status, body),
        None => body_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            Bytes::from_static(br#"{"error":"cannot encode the reply"}"#),
        ),
    }
}

/// Bytes the encoding buffer holds at least before an answer is written
/// into it: when less is left, a new block this size is taken (the old one
/// is freed once the last answer cut from it has been sent).
const ENCODE_BLOCK: usize = 16 << 10;

thread_local! {
    /// Each worker thread's encoding buffer (see [`encode`]).
    static ENCODE_BUF: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// `value` as JSON bytes, written into this thread's buffer and split off
/// it: many answers share one allocation (a block of [`ENCODE_BLOCK`]
/// bytes), each holding a reference to it until sent, instead of each
/// growing a `Vec` of its own. `None` if serialising fails.
fn encode<T: Serialize + ?Sized>(value: &T) -> Option<Bytes> {
    ENCODE_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        if buf.capacity() < ENCODE_BLOCK / 4 {
            buf.reserve(ENCODE_BLOCK);
        }
        let mut writer = (&mut *buf).writer();
        match serde_json::to_writer(&mut writer, value) {
            Ok(()) => Some(buf.split().freeze()),
            Err(_) => {
                buf.clear();
                None
            }
        }
    })
}

/// A response whose body is already JSON.
pub fn bytes_response(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    body_response(status, Bytes::from(body))
}

fn body_response(status: StatusCode, body: Bytes) -> HttpResponse {
    let mut response = hyper::Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// [`Listing`] as written: borrows the books and the constant strings, so
/// an answer copies nothing before encoding. The same keys in the same
/// order (a test compares the two).
#[derive(Serialize)]
struct ListingOut<'a> {
    item: &'a [Book],
    message: &'static str,
    status: &'static str,
    validation_code: u16,
}

/// The original's success envelope for `/search` and `/lookup`.
pub fn listing(books: &[Book]) -> HttpResponse {
    json(
        StatusCode::OK,
        &ListingOut {
            item: books,
            message: "",
            status: SUCCESS,
            validation_code: 200,
        },
    )
}

/// The message of a successful buy, shared by both dialects.
pub fn bought_message(order: &Order) -> String {
    format!("Successfully bought {}", order.title)
}

/// The original's success envelope for `/buy`.
pub fn bought(order: &Order) -> HttpResponse {
    json(
        StatusCode::OK,
        &Bought {
            message: bought_message(order),
            order: OrderRef { id: order.id },
            status: SUCCESS.to_string(),
            validation_code: 200,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_retryable_error_is_503_and_storage_alone_is_500() {
        let retryable = [
            Error::Unavailable("x".into()),
            Error::Transport("x".into()),
            Error::NotPrimary { hint: None },
            Error::StaleEpoch { got: 1, current: 2 },
        ];
        for e in retryable {
            assert!(e.is_retryable());
            assert_eq!(status_of(&e), StatusCode::SERVICE_UNAVAILABLE);
        }
        assert_eq!(
            status_of(&Error::Storage("disk".into())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(status_of(&Error::OutOfStock(3)), StatusCode::NOT_FOUND);
        assert_eq!(
            status_of(&Error::Conflict("x".into())),
            StatusCode::CONFLICT
        );
    }

    #[test]
    fn a_listing_is_written_as_the_listing_type_reads_it() {
        let book = Book {
            id: 3,
            title: "T".into(),
            topic: "t".into(),
            count: 5,
            cost: 10,
        };
        let response = listing(std::slice::from_ref(&book));
        let body = response.into_body();
        let bytes = body_bytes(body);
        let expected = Listing {
            item: vec![book],
            message: String::new(),
            status: SUCCESS.into(),
            validation_code: 200,
        };
        assert_eq!(bytes, serde_json::to_vec(&expected).unwrap_or_default());
    }

    #[test]
    fn answers_encoded_one_after_another_keep_their_own_bytes() {
        let bodies: Vec<Bytes> = (0..2000u32)
            .map(|i| {
                encode(&ErrorBody {
                    error: format!("e{i}"),
                })
                .unwrap_or_default()
            })
            .collect();
        for (i, body) in bodies.iter().enumerate() {
            assert_eq!(body.as_ref(), format!(r#"{{"error":"e{i}"}}"#).as_bytes());
        }
    }

    /// The bytes of a `Full` body (one frame, ready at once).
    fn body_bytes(body: Full<Bytes>) -> Vec<u8> {
        use http_body_util::BodyExt;
        let runtime = tokio::runtime::Builder::new_current_thread().build();
        let runtime = runtime.expect("a runtime");
        runtime
            .block_on(body.collect())
            .map(|c| c.to_bytes().to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn failed_envelope_has_the_originals_keys_in_its_order() {
        let body = Failed {
            message: "m".into(),
            status: FAILED.into(),
            validation_code: 404,
        };
        assert_eq!(
            serde_json::to_string(&body).ok().as_deref(),
            Some(r#"{"message":"m","status":"Failed","validation_code":404}"#)
        );
    }
}
