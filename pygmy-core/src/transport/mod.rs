//! The transport boundary: send a typed request to a named node and await its
//! typed reply, with a deadline. pygmy-net implements it over hyper (on tokio
//! TCP in production, on turmoil TCP in the simulation); `inproc.rs` is an
//! in-process implementation for embedding and benches.

pub mod coalesce;
pub mod inproc;
pub mod message;

use crate::error::{Error, Result};
use crate::transport::message::{Request, Response};
use crate::types::NodeId;
use async_trait::async_trait;
use std::time::Duration;

/// Moves requests to nodes.
///
/// Contract:
/// - `call` returns `Ok(response)` only with the reply the node's handler
///   produced for this request; a `Response::Error(e)` reply is returned as
///   `Err(e)`, so callers see remote and local failures alike.
/// - `Err(Error::Transport(_))` means the request may or may not have been
///   handled (lost request, lost reply, timeout): callers must only retry
///   operations that are idempotent, which every Pygmy request is.
/// - The call gives up after `timeout`.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    async fn call(&self, to: &NodeId, request: Request, timeout: Duration) -> Result<Response>;
}

/// A node's request handler: what a transport's server side calls.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, request: Request) -> Response;
}

/// Turns a `Response::Error` into `Err`, for transports.
pub fn into_result(response: Response) -> Result<Response> {
    match response {
        Response::Error(e) => Err(e),
        other => Ok(other),
    }
}

/// The error for a reply of the wrong kind (a protocol bug or version skew).
pub fn unexpected(what: &str, got: &Response) -> Error {
    Error::Transport(format!("unexpected reply to {what}: {got:?}"))
}
