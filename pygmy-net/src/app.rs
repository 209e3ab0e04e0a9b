//! What one node's HTTP server answers: its internal handler behind
//! `POST /internal/rpc`, two probes for orchestrators, and, on the front
//! end, the public API on every other path. Replicas have no public side;
//! their other paths answer 404.
//!
//! # Probes
//!
//! Every node answers, without a token (they reveal nothing but a yes or
//! no and the node's own status line):
//!
//! - `GET /live`: 200 while the process serves HTTP at all. An orchestrator
//!   restarts a node that stops answering it.
//! - `GET /ready`: 200 when the node can do its part, 503 (with the reason)
//!   when it cannot: on the front end, while a group has no confirmed view
//!   with a live primary; on a replica, while it is loading, resyncing,
//!   rebuilding a damaged or new disk, or has not yet accepted a view. An
//!   orchestrator sends no traffic to a node that is not ready, and does
//!   not restart it for that (a replica rebuilding from its peer needs
//!   time, not a restart).

use crate::api::{self, Public, PublicApi};
use crate::body::{BodyLimit, BoxError};
use crate::rpc::{self, RPC_PATH};
use crate::server::Limits;
use crate::wire::{json, Failure, HttpResponse};
use hyper::body::Body;
use hyper::StatusCode;
use pygmy_core::unstable::transport::Handler;
use std::sync::Arc;

/// Default body limit of internal requests (a log batch or a snapshot).
pub const INTERNAL_BODY_LIMIT: usize = 16 << 20;
/// Default body limit of public requests (a buy or an admin change).
pub const PUBLIC_BODY_LIMIT: usize = 64 << 10;

/// Whether a node can do its part now, and a JSON line saying why (what
/// `GET /ready` answers).
pub type Readiness = Arc<dyn Fn() -> (bool, serde_json::Value) + Send + Sync>;

/// A node's HTTP application.
pub struct App {
    readiness: Option<Readiness>,
    handler: Arc<dyn Handler>,
    token: String,
    public: Option<Public>,
    internal_limit: usize,
    public_limit: usize,
    limits: Limits,
}

impl App {
    /// A node answering internal RPC with `handler` to callers holding `token`.
    pub fn new(handler: Arc<dyn Handler>, token: impl Into<String>) -> Self {
        App {
            readiness: None,
            handler,
            token: token.into(),
            public: None,
            internal_limit: INTERNAL_BODY_LIMIT,
            public_limit: PUBLIC_BODY_LIMIT,
            limits: Limits::default(),
        }
    }

    /// Also serves the public API, admin routes guarded by `admin_token`.
    pub fn with_public(mut self, api: Arc<dyn PublicApi>, admin_token: impl Into<String>) -> Self {
        self.public = Some(Public {
            api,
            admin_token: admin_token.into(),
        });
        self
    }

    /// What `GET /ready` asks (without it, the node is ready whenever it
    /// answers, as `GET /live`).
    pub fn with_readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = Some(readiness);
        self
    }

    /// The probes' answers (see the module docs), or `None` for any other
    /// request.
    fn probe(&self, method: &hyper::Method, path: &str) -> Option<HttpResponse> {
        let get = method == hyper::Method::GET || method == hyper::Method::HEAD;
        let (ready, detail) = match path {
            "/live" | "/ready" if !get => {
                return Some(Failure::method_not_allowed(method, path, "GET, HEAD").rest())
            }
            "/live" => (true, serde_json::Value::Null),
            "/ready" => match &self.readiness {
                Some(readiness) => readiness(),
                None => (true, serde_json::Value::Null),
            },
            _ => return None,
        };
        let status = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let body = serde_json::json!({ "ok": ready, "detail": detail });
        Some(json(status, &body))
    }

    /// Overrides the body limits (bytes).
    pub fn with_body_limits(mut self, internal: usize, public: usize) -> Self {
        self.internal_limit = internal;
        self.public_limit = public;
        self
    }

    /// Overrides the connection limits [`serve`](crate::serve) keeps this
    /// app's clients within.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The connection limits of this app's listener.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn body_limit(&self, bytes: usize) -> BodyLimit {
        BodyLimit {
            bytes,
            time: self.limits.body_timeout,
        }
    }

    /// Answers one request. Never fails: every problem is a JSON response.
    pub async fn respond<B>(&self, request: hyper::Request<B>) -> HttpResponse
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        if request.uri().path() == RPC_PATH {
            return rpc::respond(
                self.handler.as_ref(),
                &self.token,
                self.body_limit(self.internal_limit),
                request,
            )
            .await;
        }
        if let Some(response) = self.probe(request.method(), request.uri().path()) {
            return response;
        }
        match &self.public {
            Some(public) => api::respond(public, self.body_limit(self.public_limit), request).await,
            None => Failure::no_route(request.method(), request.uri().path()).rest(),
        }
    }
}
