//! The internal RPC endpoint: `POST /internal/rpc`.
//!
//! Every node-to-node message is one HTTP request: the body is the JSON of a
//! [`Request`], the `x-pygmy-token` header carries the cluster's shared
//! token, and a handled request always answers 200 with the JSON of the
//! node's [`Response`] — a `Response::Error` included, so the caller sees
//! the node's own error and not an HTTP one. Non-200 answers mean the
//! request never reached the node's handler:
//!
//! - 401: token missing or wrong (checked before the body is read, so an
//!   unauthenticated caller cannot make the node buffer a large body);
//! - 413: body over the limit; 400: body not a `Request`; 405: not a POST.

use crate::auth::{internal_token, token_matches};
use crate::body::{decode, read_limited, BodyLimit, BoxError};
use crate::wire::{bytes_response, Failure, HttpResponse};
use hyper::body::Body;
use hyper::{Method, StatusCode};
use pygmy_core::unstable::transport::message::{Request, Response};
use pygmy_core::unstable::transport::Handler;

/// The path of the internal endpoint.
pub const RPC_PATH: &str = "/internal/rpc";

/// Answers one internal request with `handler`; also names the message's
/// kind (for the request log), once decoded.
pub async fn respond<B>(
    handler: &dyn Handler,
    token: &str,
    limit: BodyLimit,
    request: hyper::Request<B>,
) -> (HttpResponse, Option<&'static str>)
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let mut kind = None;
    match call(handler, token, limit, request, &mut kind).await {
        Ok(response) => (response, kind),
        Err(failure) => (failure.rest(), kind),
    }
}

/// A message's kind, for the request log.
fn kind_of(message: &Request) -> &'static str {
    match message {
        Request::Heartbeat { .. } => "heartbeat",
        Request::ViewReady { .. } => "view_ready",
        Request::Invalidate { .. } => "invalidate",
        Request::Read(_) | Request::ReadAt { .. } | Request::ReadBatch { .. } => "read",
        Request::Catalog(_) => "catalog",
        Request::Buy { .. } => "buy",
        Request::Batch { .. } => "batch",
        Request::StartView { .. } => "start_view",
        _ => "other",
    }
}

async fn call<B>(
    handler: &dyn Handler,
    token: &str,
    limit: BodyLimit,
    request: hyper::Request<B>,
    kind: &mut Option<&'static str>,
) -> Result<HttpResponse, Failure>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    if request.method() != Method::POST {
        return Err(Failure::method_not_allowed(
            request.method(),
            RPC_PATH,
            "POST",
        ));
    }
    match internal_token(request.headers()) {
        None => return Err(Failure::unauthorized("missing x-pygmy-token header")),
        Some(given) if !token_matches(token, given) => {
            return Err(Failure::unauthorized("wrong x-pygmy-token"))
        }
        Some(_) => {}
    }
    let bytes = read_limited(request.into_body(), limit).await?;
    let message: Request = decode(&bytes, "the rpc request")?;
    *kind = Some(kind_of(&message));
    let reply: Response = handler.handle(message).await;
    let body = serde_json::to_vec(&reply).map_err(|e| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the reply: {e}"),
        )
    })?;
    Ok(bytes_response(StatusCode::OK, body))
}
