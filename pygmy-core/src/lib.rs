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

// Moved; the module tree follows the folders in the next commit.
#[path = "state/archive.rs"]
pub mod archive;
// Moved; the module tree follows the folders in the next commit.
#[path = "frontend/reads/balancer.rs"]
pub mod balancer;
// Moved; the module tree follows the folders in the next commit.
#[path = "frontend/reads/batcher.rs"]
pub mod batcher;
// Moved; the module tree follows the folders in the next commit.
#[path = "frontend/reads/cache.rs"]
pub mod cache;
// Moved; the module tree follows the folders in the next commit.
#[path = "state/catalog.rs"]
pub mod catalog;
// Moved; the module tree follows the folders in the next commit.
#[path = "state/command.rs"]
pub mod command;
// Moved; the module tree follows the folders in the next commit.
#[path = "frontend/detector.rs"]
pub mod detector;
// Moved; the module tree follows the folders in the next commit.
#[path = "store.rs"]
pub mod embedded;
pub mod error;
// Moved; the module tree follows the folders in the next commit.
#[path = "frontend/mod.rs"]
pub mod frontend;
// Moved; the module tree follows the folders in the next commit.
#[path = "files/mod.rs"]
pub mod fs;
// Moved; the module tree follows the folders in the next commit.
#[path = "transport/inproc.rs"]
pub mod inproc;
// Moved; the module tree follows the folders in the next commit.
#[path = "storage/logstore.rs"]
pub mod logstore;
// Moved; the module tree follows the folders in the next commit.
#[path = "files/memfs.rs"]
pub mod memfs;
// Moved; the module tree follows the folders in the next commit.
#[path = "transport/message.rs"]
pub mod message;
// Moved; the module tree follows the folders in the next commit.
#[path = "state/orders.rs"]
pub mod orders;
// Moved; the module tree follows the folders in the next commit.
#[path = "files/record.rs"]
pub mod record;
// Moved; the module tree follows the folders in the next commit.
#[path = "replication/mod.rs"]
pub mod replica;
// Moved; the module tree follows the folders in the next commit.
#[path = "state/mod.rs"]
pub mod state;
// Moved; the module tree follows the folders in the next commit.
#[path = "storage/mod.rs"]
pub mod storage;
// Moved; the module tree follows the folders in the next commit.
#[path = "transport/mod.rs"]
pub mod transport;
pub mod types;
pub mod view;
// Moved; the module tree follows the folders in the next commit.
#[path = "frontend/viewservice.rs"]
pub mod viewservice;

pub use error::{Error, Result};
