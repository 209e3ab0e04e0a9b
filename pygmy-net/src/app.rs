//! What one node's HTTP server answers: its internal handler behind
//! `POST /internal/rpc` and, on the front end, the public API on every other
//! path. Replicas have no public side; their other paths answer 404.

use crate::api::{self, Public, PublicApi};
use crate::body::{BodyLimit, BoxError};
use crate::rpc::{self, RPC_PATH};
use crate::server::Limits;
use crate::wire::{Failure, HttpResponse};
use hyper::body::Body;
use pygmy_core::unstable::transport::Handler;
use std::sync::Arc;

/// Default body limit of internal requests (a log batch or a snapshot).
pub const INTERNAL_BODY_LIMIT: usize = 16 << 20;
/// Default body limit of public requests (a buy or an admin change).
pub const PUBLIC_BODY_LIMIT: usize = 64 << 10;

/// A node's HTTP application.
pub struct App {
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
        match &self.public {
            Some(public) => api::respond(public, self.body_limit(self.public_limit), request).await,
            None => Failure::no_route(request.method(), request.uri().path()).rest(),
        }
    }
}
