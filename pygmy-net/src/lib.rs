//! # Pygmy net
//!
//! Pygmy over HTTP: hyper servers and pooled clients for node-to-node
//! messages, the front end's public API (the original Pygmy's endpoints and
//! a plain REST one), and file-backed storage. Nothing here decides anything
//! about the store; it moves bytes to and from `pygmy-core`.
//!
//! Servers and clients are generic over how connections are made
//! ([`Accept`], the client's connector), so `pygmy-sim` runs this exact code
//! over turmoil's simulated TCP.
//!
//! # Layout
//!
//! - `accept`: the [`Accept`] trait, and its tokio TCP implementation.
//! - `server`: [`serve`], the connection loop with its [`Limits`] and
//!   graceful stop.
//! - `app`: [`App`], what a node answers: internal RPC and the public API.
//! - `rpc`: the internal endpoint `POST /internal/rpc` (token-checked).
//! - `client`: [`HttpTransport`], the `Transport` over a pooled hyper client.
//! - `etcd`: an etcd v3 client (its HTTP/JSON gateway over hyper) and a
//!   launcher for a local etcd, for coordinating several front ends.
//! - `api`: the [`PublicApi`] trait and the public routes.
//! - `frontend_api`: `PublicApi` for pygmy-core's `FrontEnd`.
//! - `original`, `rest`: the two public dialects' endpoints.
//! - `wire`: public JSON bodies, error-to-status mapping, response helpers.
//! - `body`, `query`, `auth`: size-limited bodies, query strings, tokens.
//! - `stdfs`: pygmy-core's file-system trait on the real disk (its fsyncs
//!   timed for the metrics).
//! - `metrics`: [`Metrics`], the Prometheus registry and exposition.
//! - `observe`: [`Observe`], the figures a node shows (metrics, `/ops`).
//! - `request_id`: request ids, from `X-Request-Id` or made, carried on
//!   the internal calls a request causes.
//! - `web`: `/metrics`, the storefront (`/`), the operations page (`/ops`)
//!   and `/openapi.json`.

pub mod accept;
pub mod api;
pub mod app;
pub mod auth;
pub mod body;
pub mod client;
pub mod etcd;
pub mod frontend_api;
pub mod metrics;
pub mod observe;
pub mod original;
pub mod query;
pub mod request_id;
pub mod rest;
pub mod rpc;
pub mod server;
pub mod stdfs;
pub mod web;
pub mod wire;

pub use accept::Accept;
pub use api::PublicApi;
pub use app::{App, Readiness};
pub use client::{tokio_transport, HttpTransport};
pub use metrics::Metrics;
pub use observe::{Figures, Observe};
pub use server::{serve, Limits};
