//! The routes for people and for monitoring, beside the APIs:
//!
//! | route | on | answer |
//! |---|---|---|
//! | `GET /metrics` | every node | Prometheus text exposition ([`metrics`](crate::metrics)) |
//! | `GET /` | front end | the storefront page |
//! | `GET /ops` | front end | the operations page |
//! | `GET /pygmy.css` | front end | the stylesheet both pages share |
//! | `GET /ops/status` | front end | the figures the operations page shows, as JSON |
//! | `GET /openapi.json` | front end | the OpenAPI 3 description of the public API |
//!
//! The pages are static HTML with inline script and their own style, plus
//! the stylesheet they share, all built into the binary (`include_str!`),
//! with no asset from elsewhere: they work offline and need no build step. They use only public routes: the storefront the REST
//! API, the operations page `/ops/status` and `/health`.
//!
//! **Access.** All of these are public and read-only. They show figures a
//! monitoring system scrapes (views, epochs, commit points, lag, cache
//! counters, heartbeat transitions), never a token, an idempotency key or
//! an order, and they change nothing: no admin or internal route is
//! reachable from them. An operator who wants them private puts the front
//! end behind a proxy that filters `/metrics` and `/ops*`, as is usual for
//! metrics endpoints.
//!
//! The OpenAPI document is `openapi.json` beside this file (inside the
//! crate, so the packaged crate carries it), included
//! as it is, so the file and the served document cannot differ.

use crate::metrics::{Metrics, CONTENT_TYPE as METRICS_TYPE};
use crate::observe::Observe;
use crate::wire::{json, HttpResponse};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, StatusCode};
use std::sync::Arc;

/// The storefront page.
pub const STOREFRONT: &str = include_str!("storefront.html");
/// The operations page.
pub const OPS: &str = include_str!("ops.html");
/// The stylesheet both pages link to.
pub const STYLESHEET: &str = include_str!("pygmy.css");
/// The OpenAPI document of the public API (the repository's file).
pub const OPENAPI: &str = include_str!("openapi.json");

/// Answers one of the routes above, or `None` when `path` is none of them
/// (or the node does not serve it: replicas serve only `/metrics`).
pub fn respond(
    method: &Method,
    path: &str,
    metrics: &Metrics,
    observe: Option<&Arc<dyn Observe>>,
    public: bool,
) -> Option<HttpResponse> {
    let page = |body: &'static str, kind: &'static str| {
        Some(text(kind, Bytes::from_static(body.as_bytes())))
    };
    let get = method == Method::GET || method == Method::HEAD;
    match path {
        "/metrics" if get => Some(text(METRICS_TYPE, Bytes::from(metrics.render()))),
        _ if !public || !get => None,
        "/" | "/index.html" => page(STOREFRONT, "text/html; charset=utf-8"),
        "/ops" => page(OPS, "text/html; charset=utf-8"),
        "/pygmy.css" => page(STYLESHEET, "text/css; charset=utf-8"),
        "/openapi.json" => page(OPENAPI, "application/json"),
        "/ops/status" => Some(json(
            StatusCode::OK,
            &observe.map(|o| o.figures()).unwrap_or_default(),
        )),
        _ => None,
    }
}

fn text(kind: &'static str, body: Bytes) -> HttpResponse {
    let mut response = hyper::Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_pages_link_the_stylesheet_the_front_end_serves() {
        for page in [STOREFRONT, OPS] {
            assert!(page.contains(r#"<link rel="stylesheet" href="/pygmy.css">"#));
        }
        let metrics = Metrics::new(None);
        let css = respond(&Method::GET, "/pygmy.css", &metrics, None, true).expect("served");
        assert_eq!(css.headers()[CONTENT_TYPE], "text/css; charset=utf-8");
        // Replicas serve no page.
        assert!(respond(&Method::GET, "/pygmy.css", &metrics, None, false).is_none());
    }
}
