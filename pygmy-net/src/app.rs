//! What one node's HTTP server answers: its internal handler behind
//! `POST /internal/rpc`, `GET /metrics`, two probes (`/live`, `/ready`),
//! and, on the front end, the pages and the public API on every other path
//! (see [`web`]). Replicas have no public side; their other
//! paths answer 404.
//!
//! Every request is counted in the node's [`Metrics`] and handled under a
//! request id (see [`request_id`]), which its answer
//! carries back in `X-Request-Id`.
//!
//! # Request log
//!
//! One line per request, under the log target `access`, with the request
//! id, method, path, status and time taken:
//!
//! - public requests that change something (buys, admin changes) and every
//!   public answer of 400 or more: `info`;
//! - public reads answered successfully, and pages: `debug` (a load test
//!   makes tens of thousands a second; `RUST_LOG=info,access=debug` shows
//!   them);
//! - internal calls that carry a request id (caused by a public request):
//!   `info` for a buy or catalog change, `debug` for reads; internal
//!   traffic of the nodes' own (heartbeats, log pulls) is not logged.
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
use crate::metrics::{fixed_label, routed_label, Metrics};
use crate::observe::Observe;
use crate::request_id::{self, IdMaker};
use crate::rpc::{self, RPC_PATH};
use crate::server::Limits;
use crate::web;
use crate::wire::{json, Failure, HttpResponse};
use hyper::body::Body;
use hyper::Method;
use hyper::StatusCode;
use pygmy_core::unstable::transport::Handler;
use std::sync::Arc;
use tokio::time::Instant;

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
    observe: Option<Arc<dyn Observe>>,
    metrics: Arc<Metrics>,
    ids: IdMaker,
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
            observe: None,
            metrics: Arc::new(Metrics::new(None)),
            ids: IdMaker::default(),
        }
    }

    /// Reads the node's figures from `observe` for `/metrics` (and, on the
    /// front end, `/ops/status`).
    pub fn with_observer(mut self, observe: Arc<dyn Observe>) -> Self {
        self.metrics = Arc::new(Metrics::new(Some(observe.clone())));
        self.observe = Some(observe);
        self
    }

    /// This node's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
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
    /// Counts it, and handles it under its request id (see the module docs).
    ///
    /// The request is routed once, here: the route gives both the metrics
    /// label and, for a public request, the endpoint that answers it.
    pub async fn respond<B>(&self, request: hyper::Request<B>) -> HttpResponse
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let started = Instant::now();
        let internal = request.uri().path() == RPC_PATH;
        let given = request_id::given(request.headers());
        // Internal traffic of the nodes' own carries no id and gets none.
        let id = match given {
            Some(id) => Some(id),
            None if internal => None,
            None => Some(self.ids.make()),
        };
        let method = request.method().clone();
        let (route, routed) = match fixed_label(request.uri().path()) {
            Some(label) => (label, None),
            None => {
                let routed = api::route(&method, request.uri().path());
                (routed_label(&routed), Some(routed))
            }
        };
        // A clone of the Uri shares its bytes (no copy of the path).
        let uri = (!internal).then(|| request.uri().clone());
        let (mut response, kind) = match &id {
            Some(id) => request_id::scope(id.clone(), self.dispatch(request, routed)).await,
            None => self.dispatch(request, routed).await,
        };
        let took = started.elapsed();
        let status = response.status();
        self.metrics.request(route, status.as_u16(), took);
        if let Some(id) = &id {
            response
                .headers_mut()
                .insert(request_id::HEADER, id.header_value());
            let micros = took.as_micros() as u64;
            match &uri {
                Some(uri) => {
                    let path = uri.path();
                    let writes =
                        !(method == Method::GET || method == Method::HEAD) || route == "buy";
                    if writes || status.as_u16() >= 400 {
                        tracing::info!(target: "access", request = %id, %method, %path, status = status.as_u16(), micros);
                    } else {
                        tracing::debug!(target: "access", request = %id, %method, %path, status = status.as_u16(), micros);
                    }
                }
                None => {
                    let kind = kind.unwrap_or("?");
                    if kind == "buy" || kind == "catalog" {
                        tracing::info!(target: "access", request = %id, internal = kind, status = status.as_u16(), micros);
                    } else {
                        tracing::debug!(target: "access", request = %id, internal = kind, status = status.as_u16(), micros);
                    }
                }
            }
        }
        response
    }

    /// Answers a request (`routed`: its public route, when [`respond`]
    /// routed it); for an internal one, also names its message.
    ///
    /// [`respond`]: App::respond
    async fn dispatch<B>(
        &self,
        request: hyper::Request<B>,
        routed: Option<api::Routed>,
    ) -> (HttpResponse, Option<&'static str>)
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
            return (response, None);
        }
        if let Some(response) = web::respond(
            request.method(),
            request.uri().path(),
            &self.metrics,
            self.observe.as_ref(),
            self.public.is_some(),
        ) {
            return (response, None);
        }
        let response = match &self.public {
            Some(public) => {
                // A page's path that no page answered (a POST to `/ops`,
                // say) was not routed above: route it now.
                let routed =
                    routed.unwrap_or_else(|| api::route(request.method(), request.uri().path()));
                let limit = self.body_limit(self.public_limit);
                api::respond_routed(public, limit, routed, request).await
            }
            None => Failure::no_route(request.method(), request.uri().path()).rest(),
        };
        (response, None)
    }
}
