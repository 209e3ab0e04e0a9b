//! # Pygmy core
//!
//! All of Pygmy's logic, with no sockets, no files and no wall clock: the
//! catalog and order state machines, primary-backup replication, the view
//! service, the read cache, the balancer and the front end. Transport and
//! storage sit behind traits ([`Transport`](transport::Transport),
//! [`Storage`](storage::Storage), [`Fs`](fs::Fs)); `pygmy-net` implements
//! them over hyper and real files, `pygmy-sim` over turmoil.
//!
//! # Layout
//!
//! - `types`, `error`, `command`: shared values, the error enum, log commands.
//! - `catalog`, `orders`, `state`: the deterministic state machines;
//!   `archive`: the file of finished buys under the order ledger.
//! - `view`, `viewservice`, `detector`: views, how the front end picks the
//!   next one, heartbeat failure detection.
//! - `message`, `transport`, `inproc`: what nodes send each other and how.
//! - `fs`, `memfs`, `storage`, `logstore`, `record`: the durable formats.
//! - `replica`: a replica of either group (replication, view change, resync).
//! - `cache`, `balancer`, `batcher`, `frontend`: the front end.
//! - `invariants`: what Pygmy promises, as checkers over a recorded client
//!   history and the replicas' final states; used by the simulation, `pygmy
//!   chaos` and the process tests.

pub mod archive;
pub mod balancer;
pub mod batcher;
pub mod cache;
pub mod catalog;
pub mod command;
pub mod detector;
pub mod embedded;
pub mod error;
pub mod frontend;
pub mod fs;
pub mod inproc;
pub mod invariants;
pub mod logstore;
pub mod memfs;
pub mod message;
pub mod orders;
pub mod record;
pub mod replica;
pub mod state;
pub mod storage;
pub mod transport;
pub mod types;
pub mod view;
pub mod viewservice;

pub use error::{Error, Result};
