//! [`HttpTransport`]: the [`Transport`] over HTTP, the client side of
//! [`rpc`](crate::rpc).
//!
//! One pooled keep-alive client serves all nodes, so steady traffic reuses
//! connections instead of paying a TCP handshake per call. The client is
//! generic over its connector: hyper-util's `HttpConnector` on tokio
//! ([`tokio_transport`]), a turmoil connector in the simulation.
//!
//! Failure mapping, per the `Transport` contract: anything that keeps the
//! node's own reply from arriving — unknown node, refused or reset
//! connection, timeout, a non-200 status (bad token, body too large), a
//! reply that does not decode — is `Error::Transport`, so the caller treats
//! the request as possibly handled and may retry. A decoded
//! `Response::Error(e)` is returned as `Err(e)`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Method, StatusCode, Uri};
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use pygmy_core::unstable::transport::message::{Request, Response};
use pygmy_core::unstable::transport::{into_result, Transport};
use pygmy_core::unstable::types::NodeId;
use pygmy_core::{Error, Result};
use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::time::Duration;

use crate::auth::TOKEN_HEADER;
use crate::rpc::RPC_PATH;
use crate::wire::ErrorBody;

/// The content type of every request body.
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// How long an unused pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends [`Request`]s to nodes over HTTP.
pub struct HttpTransport<C> {
    client: Client<C, Full<Bytes>>,
    /// Each node's RPC URI, parsed once (`Err`: the address does not make
    /// one, reported on every call to that node).
    uris: BTreeMap<NodeId, std::result::Result<Uri, String>>,
    /// The token header's value, checked once.
    token: std::result::Result<HeaderValue, String>,
}

impl<C> HttpTransport<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    /// A transport reaching `addrs` (node → `host:port`) through
    /// `connector`, authenticating with `token`.
    pub fn new(connector: C, addrs: BTreeMap<NodeId, String>, token: impl Into<String>) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        let uris = addrs
            .into_iter()
            .map(|(node, authority)| {
                let uri = format!("http://{authority}{RPC_PATH}")
                    .parse::<Uri>()
                    .map_err(|e| format!("bad address {authority:?} for {node}: {e}"));
                (node, uri)
            })
            .collect();
        let token = HeaderValue::from_str(&token.into())
            .map_err(|_| "the token is not a valid header value".to_string());
        HttpTransport {
            client,
            uris,
            token,
        }
    }

    fn http_request(&self, to: &NodeId, request: &Request) -> Result<hyper::Request<Full<Bytes>>> {
        let uri = match self.uris.get(to) {
            Some(Ok(uri)) => uri.clone(),
            Some(Err(e)) => return Err(Error::Transport(e.clone())),
            None => return Err(Error::Transport(format!("unknown node {to}"))),
        };
        let token = self.token.clone().map_err(Error::Transport)?;
        let body = serde_json::to_vec(request)
            .map_err(|e| Error::Transport(format!("cannot encode request to {to}: {e}")))?;
        let mut builder = hyper::Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(CONTENT_TYPE, JSON)
            .header(HeaderName::from_static(TOKEN_HEADER), token);
        // The public request this call serves, if any: the receiving node
        // logs its part under the same id.
        if let Some(id) = crate::request_id::current() {
            builder = builder.header(crate::request_id::HEADER, id.header_value());
        }
        builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Error::Transport(format!("cannot build a request to {to}: {e}")))
    }

    /// Sends and reads the whole reply (no deadline: the caller adds it).
    async fn exchange(
        &self,
        to: &NodeId,
        request: hyper::Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes)> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| Error::Transport(format!("{to}: {}", chain(&e))))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Error::Transport(format!("{to}: reading the reply: {}", chain(&e))))?
            .to_bytes();
        Ok((status, body))
    }
}

#[async_trait::async_trait]
impl<C> Transport for HttpTransport<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    async fn call(&self, to: &NodeId, request: Request, timeout: Duration) -> Result<Response> {
        let http = self.http_request(to, &request)?;
        let (status, body) = tokio::time::timeout(timeout, self.exchange(to, http))
            .await
            .map_err(|_| Error::Transport(format!("{to}: no reply within {timeout:?}")))??;
        if status != StatusCode::OK {
            let detail = serde_json::from_slice::<ErrorBody>(&body)
                .map(|b| b.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            return Err(Error::Transport(format!(
                "{to} answered {status}: {detail}"
            )));
        }
        let response: Response = serde_json::from_slice(&body)
            .map_err(|e| Error::Transport(format!("{to}: undecodable reply: {e}")))?;
        into_result(response)
    }
}

/// A transport over tokio TCP, `TCP_NODELAY` on (requests are small and
/// latency-bound).
pub fn tokio_transport(
    addrs: BTreeMap<NodeId, String>,
    token: impl Into<String>,
) -> HttpTransport<HttpConnector> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    HttpTransport::new(connector, addrs, token)
}

/// An error and its causes, `outer: inner: ...` (hyper's top-level messages
/// alone, like "client error (Connect)", do not say what happened).
pub fn chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
