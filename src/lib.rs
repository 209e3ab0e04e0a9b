//! # Pygmy
//!
//! A replicated book store: a front end answering `search`, `lookup` and
//! `buy` over REST, and replicated catalog and order services that survive
//! crashes and resync after restarts. This package holds the command-line
//! tool and the glue that runs nodes on real TCP and files; the logic is in
//! `pygmy-core`, the HTTP adapter in `pygmy-net`, the simulation in
//! `pygmy-sim`.
//!
//! # Layout
//!
//! - `config`: a cluster's configuration (TOML).
//! - `node`: runs one node of a cluster.
//! - `recent`: the newest heartbeat-log lines, for the operations page.
//! - `up`: `pygmy up`, a local cluster of separate processes.
//! - `init`: `pygmy init`, the configuration of a cluster on many machines.
//! - `proc`: the node processes of such a cluster: start, pid files, kill.
//! - `load`: `pygmy load`, a traffic generator with a latency report.
//! - `chaos`: `pygmy chaos`, kills and restarts nodes under load and checks
//!   that nothing was lost.
//! - `inspect`: reads replicas' status and state over the internal RPC.
//! - `check`: `pygmy check`, the chaos verdict on any running cluster.
//! - `probe`: `pygmy probe`, an HTTP health check for images with no curl.
//! - `http`: a small JSON client for the tool's own checks.
//! - `malloc`: one malloc arena per node process (less memory held).

pub mod chaos;
pub mod check;
pub mod config;
pub mod http;
pub mod init;
pub mod inspect;
pub mod load;
pub mod malloc;
pub mod node;
pub mod probe;
pub mod proc;
pub mod recent;
pub mod up;
