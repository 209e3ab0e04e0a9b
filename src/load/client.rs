//! The requests a load client sends, in either public dialect, over one
//! pooled keep-alive hyper client shared by all load clients, and how each
//! answer is classified.
//!
//! An answer is a success only if it has the success status *and* its body
//! parses as the dialect's success body (for the original's envelope:
//! `"status": "Success"` and `validation_code` 200). Anything else is an
//! [`ErrorKind`]; nothing is retried here, so every failure is counted.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use pygmy_core::unstable::types::{Book, ItemId, OrderId};
use pygmy_net::wire::{Books, Bought, BuyReply, Listing, SUCCESS};
use serde::de::DeserializeOwned;
use std::fmt;
use std::time::Duration;

/// Which of the front end's public dialects the load speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// The original Pygmy's `GET /search?topic=`, `/lookup?id=`, `/buy?id=`.
    Original,
    /// `GET /books?topic=`, `GET /books/{id}`, `POST /books/{id}/buy` with
    /// a fresh `Idempotency-Key` per buy.
    Rest,
}

/// Why a request did not succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// The server answered with this (non-success) HTTP status.
    Status(u16),
    /// No connection could be made (refused, unreachable).
    Connect,
    /// No whole answer within the timeout.
    Timeout,
    /// The connection failed mid-request (reset, closed).
    Io,
    /// A success status with a body that is not the expected answer.
    BadAnswer,
}

impl ErrorKind {
    /// True unless the server gave a definite "no" to this request (4xx:
    /// unknown or sold-out item, malformed request). Failures are what a
    /// replicated store promises its clients never to see.
    pub fn is_failure(self) -> bool {
        !matches!(self, ErrorKind::Status(400..=499))
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Status(code) => write!(f, "{code}"),
            ErrorKind::Connect => f.write_str("connect"),
            ErrorKind::Timeout => f.write_str("timeout"),
            ErrorKind::Io => f.write_str("io"),
            ErrorKind::BadAnswer => f.write_str("bad-answer"),
        }
    }
}

/// A failed request: its kind and what the server or the socket said.
#[derive(Clone, Debug)]
pub struct Failure {
    pub kind: ErrorKind,
    pub detail: String,
}

impl Failure {
    fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Failure {
            kind,
            detail: detail.into(),
        }
    }
}

/// The front end, as the load clients reach it.
pub struct Target {
    /// `http://host:port`, no trailing slash.
    base: String,
    api: Api,
    timeout: Duration,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Target {
    /// `pool`: how many idle connections to keep (one per load client, so
    /// each client's next request reuses a warm connection).
    pub fn new(base: String, api: Api, timeout: Duration, pool: usize) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(pool)
            .build(connector);
        Target {
            base,
            api,
            timeout,
            client,
        }
    }

    /// The API this target speaks.
    pub fn api(&self) -> Api {
        self.api
    }

    /// The books of `topic`.
    pub async fn search(&self, topic: &str) -> Result<Vec<Book>, Failure> {
        let topic = encode(topic);
        match self.api {
            Api::Original => {
                let listing: Listing = self
                    .call(Method::GET, &format!("/search?topic={topic}"), None)
                    .await?;
                envelope_ok(&listing.status, listing.validation_code)?;
                Ok(listing.item)
            }
            Api::Rest => {
                let books: Books = self
                    .call(Method::GET, &format!("/books?topic={topic}"), None)
                    .await?;
                Ok(books.books)
            }
        }
    }

    /// Book `id`.
    pub async fn lookup(&self, id: ItemId) -> Result<Book, Failure> {
        match self.api {
            Api::Original => {
                let listing: Listing = self
                    .call(Method::GET, &format!("/lookup?id={id}"), None)
                    .await?;
                envelope_ok(&listing.status, listing.validation_code)?;
                match <[Book; 1]>::try_from(listing.item) {
                    Ok([book]) if book.id == id => Ok(book),
                    _ => Err(Failure::new(
                        ErrorKind::BadAnswer,
                        format!("lookup of {id} did not answer that one book"),
                    )),
                }
            }
            Api::Rest => self.call(Method::GET, &format!("/books/{id}"), None).await,
        }
    }

    /// Buys one copy of `id`; `key` is the REST buy's idempotency key.
    pub async fn buy(&self, id: ItemId, key: &str) -> Result<OrderId, Failure> {
        match self.api {
            Api::Original => {
                let bought: Bought = self
                    .call(Method::GET, &format!("/buy?id={id}"), None)
                    .await?;
                envelope_ok(&bought.status, bought.validation_code)?;
                Ok(bought.order.id)
            }
            Api::Rest => {
                let reply: BuyReply = self
                    .call(Method::POST, &format!("/books/{id}/buy"), Some(key))
                    .await?;
                Ok(reply.order.id)
            }
        }
    }

    /// Every book (`GET /books`), to learn the topics and ids to ask for.
    pub async fn all_books(&self) -> Result<Vec<Book>, Failure> {
        let books: Books = self.call(Method::GET, "/books", None).await?;
        Ok(books.books)
    }

    /// Sends one request and parses a 2xx answer as `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        idempotency_key: Option<&str>,
    ) -> Result<T, Failure> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| Failure::new(ErrorKind::BadAnswer, format!("bad request: {e}")))?;
        let (status, body) = tokio::time::timeout(self.timeout, self.exchange(request))
            .await
            .map_err(|_| {
                Failure::new(
                    ErrorKind::Timeout,
                    format!("no answer within {:?}", self.timeout),
                )
            })??;
        if !status.is_success() {
            return Err(Failure::new(
                ErrorKind::Status(status.as_u16()),
                String::from_utf8_lossy(&body).into_owned(),
            ));
        }
        serde_json::from_slice(&body).map_err(|e| {
            Failure::new(
                ErrorKind::BadAnswer,
                format!("{status} with an unexpected body ({e})"),
            )
        })
    }

    async fn exchange(
        &self,
        request: hyper::Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let response = self.client.request(request).await.map_err(|e| {
            let kind = if e.is_connect() {
                ErrorKind::Connect
            } else {
                ErrorKind::Io
            };
            Failure::new(kind, pygmy_net::client::chain(&e))
        })?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Failure::new(ErrorKind::Io, pygmy_net::client::chain(&e)))?
            .to_bytes();
        Ok((status, body))
    }
}

/// The original's envelope must say `Success` / 200 on a 200 answer.
fn envelope_ok(status: &str, code: u16) -> Result<(), Failure> {
    if status == SUCCESS && code == 200 {
        Ok(())
    } else {
        Err(Failure::new(
            ErrorKind::BadAnswer,
            format!("HTTP 200 with status {status:?}, validation_code {code}"),
        ))
    }
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved
/// characters), so `distributed systems` travels as `distributed%20systems`.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_spaces_and_reserved_characters() {
        assert_eq!(encode("distributed systems"), "distributed%20systems");
        assert_eq!(encode("a&b=c/d"), "a%26b%3Dc%2Fd");
        assert_eq!(encode("plain-text_1.~"), "plain-text_1.~");
    }

    #[test]
    fn only_client_errors_are_not_failures() {
        assert!(!ErrorKind::Status(404).is_failure());
        assert!(!ErrorKind::Status(400).is_failure());
        assert!(ErrorKind::Status(503).is_failure());
        assert!(ErrorKind::Connect.is_failure());
        assert!(ErrorKind::Timeout.is_failure());
        assert!(ErrorKind::BadAnswer.is_failure());
    }
}
