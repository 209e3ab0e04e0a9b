//! An etcd v3 client, for coordinating several front ends (the design
//! note "Many front ends"): views kept in etcd and changed only by
//! compare-and-swap, and a leader elected with a lease.
//!
//! This module only talks to etcd; what the keys mean (views, the leader
//! record) belongs to the coordinator that uses it.
//!
//! # What it offers
//!
//! - [`Etcd::get`], [`Etcd::get_prefix`]: values with their
//!   `mod_revision` (what a compare-and-swap compares) and
//!   `create_revision`.
//! - [`Etcd::txn`]: "if every [`Compare`] holds (key A's mod revision is
//!   x, key B's is y, …) then apply these [`Op`]s, else tell me the
//!   compared keys' current values" — one atomic, linearizable step.
//!   [`Etcd::campaign`] is its leader-election form: create the key with a
//!   lease only if it is absent (`create_revision == 0`).
//! - [`Etcd::put`] (optionally with a lease), [`Etcd::delete`].
//! - Leases: [`Etcd::grant`], [`Etcd::keep_alive`], [`Etcd::revoke`];
//!   [`LeaseKeeper`] renews one in the background and tells its holder
//!   until when it surely holds it.
//! - [`EtcdCoordinator`]: the front ends' [`Coordinator`](pygmy_core::unstable::frontend::coordination::Coordinator)
//!   on these calls (view records by compare-and-swap, a leader lease, live
//!   front ends).
//! - [`LocalEtcd`]: starts a one-member etcd from the `etcd` binary (tests,
//!   benchmarks, `pygmy up` on one machine).
//!
//! # Why the HTTP/JSON gateway and not the `etcd-client` crate
//!
//! etcd serves its v3 API over gRPC and, on the same port, through a
//! grpc-gateway that maps each call to `POST /v3/<service>/<method>` with
//! a JSON body. The two ways to reach it from Rust:
//!
//! - **`etcd-client`** (gRPC over tonic and prost): the complete API,
//!   watches as streams. But it generates its protobuf code at build time
//!   (`tonic-build`), which needs `protoc` on every machine that builds
//!   Pygmy — a tool outside cargo, where the tests now need nothing beyond
//!   cargo — and its current releases need tonic 0.14, whose minimum Rust
//!   (1.86) is above the workspace's 1.85. It would add tonic, prost, h2,
//!   tower and their dependencies to a tree that has an HTTP client
//!   already.
//! - **The gateway over hyper** (chosen): the hyper client and serde_json
//!   already in pygmy-net, plus `base64` (keys and values are base64 in
//!   the JSON; one small crate with no dependencies). Builds with cargo
//!   alone. Each call is one HTTP/1.1 POST on a pooled keep-alive
//!   connection; the gateway turns it into a gRPC call to its own server
//!   inside the etcd process, so a call costs one extra in-process hop and
//!   JSON instead of protobuf. Measured on this (loaded, 2-core) machine
//!   with `cargo run -p pygmy-net --example etcd_latency` (docs/BENCHMARKS.md,
//!   "etcd client"): a get takes 0.4 ms at the median, a compare-and-swap
//!   0.7–1 ms, a keep-alive 0.3 ms; etcd's own metrics put its handling at
//!   0.15 ms per get and 0.4–0.5 ms per transaction, so the way in (the
//!   gateway's hop, JSON, HTTP on loopback, this client) costs about
//!   0.4–0.5 ms a call. gRPC would save part of that (not measured: it
//!   needs the crate above). It does not matter here: no etcd call is on a
//!   read's or a buy's path; views change rarely and a lease is renewed a
//!   few times per TTL.
//!
//!   What it costs in features: a gRPC stream becomes one HTTP exchange,
//!   so [`Etcd::keep_alive`] is one request per renewal (not a long-lived
//!   stream) and there is no watch here: a front end learns of a new view
//!   by reading (a range of the views' prefix is one call). Both are
//!   enough for leases of seconds and views that change rarely.
//!
//! The gateway paths used exist in etcd 3.4 (Debian 12's `etcd-server`)
//! and later (3.5 and 3.6 keep `/v3/`): `/v3/kv/range`, `/v3/kv/put`,
//! `/v3/kv/deleterange`, `/v3/kv/txn`, `/v3/lease/grant`,
//! `/v3/lease/keepalive`, `/v3/lease/revoke`. The process tests
//! (`pygmy-net/tests/etcd.rs`) run every one against a real etcd.
//!
//! # Endpoints, timeouts, failover
//!
//! [`EtcdConfig`] lists the members' client URLs. A call tries the
//! endpoint that last answered, then each other one at most once; every
//! attempt is bounded (connect timeout, then a request timeout that covers
//! the whole exchange), so a call never hangs: it ends within
//! `endpoints × request_timeout`, with [`EtcdError::Unreachable`] if no
//! member could serve. A member that answers "no leader" or "timed out"
//! counts as unreachable too.
//!
//! Reads, keep-alives, grants and revokes fail over freely. A write (put,
//! delete, transaction) moves to another endpoint only when the request
//! never left (the connection was refused or not made): once it may have
//! reached a member it is not sent again, so it is never applied twice and
//! a compare-and-swap never fails on its own earlier attempt. Such a write
//! reports `Unreachable`, meaning "outcome unknown": the caller re-reads,
//! and the revisions tell it whether its write took.
//!
//! # Guarantees (etcd's, passed through)
//!
//! - A transaction is atomic and linearizable: of two compare-and-swaps on
//!   the same revision, exactly one succeeds (a process test races two
//!   clients on it).
//! - A key put with a lease is deleted when the lease ends (revoked, or not
//!   renewed within its TTL); a campaign on it succeeds again only then.
//! - A lease's holder must count its TTL from *before* the keep-alive it
//!   sent: etcd renews at some point during the call, so that start is the
//!   safe lower bound on when the lease may expire.
//!
//! # Caveats
//!
//! - Plain HTTP only (no TLS, no etcd authentication): for a loopback or
//!   private-network etcd, as `pygmy up` runs it.
//! - No watch: readers poll.
//! - etcd counts TTLs in whole seconds, with a minimum of about 1.5
//!   election timeouts (2 s with etcd's default timing).

mod client;
mod coordinator;
mod keeper;
pub mod launch;
mod wire;

pub use client::{
    prefix_end, Compare, Etcd, EtcdConfig, EtcdError, KeyValue, Lease, LeaseId, Op, Range,
    Revision, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, MAX_ANSWER_BYTES,
};
pub use coordinator::{EtcdCoordinator, DEFAULT_PREFIX};
pub use keeper::{LeaseKeeper, LeaseState};
pub use launch::{LaunchError, LocalEtcd, LocalEtcdOptions};
