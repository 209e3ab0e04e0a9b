//! # Pygmy core
//!
//! Pygmy is a replicated book store: a front end that answers clients, and
//! two replicated services behind it, the **catalog** (books, prices,
//! stock) and the **order ledger** (the purchases). This crate holds all of
//! its logic, with no sockets and no files of its own: `pygmy-net` runs it
//! over HTTP and real files, `pygmy-sim` under turmoil's simulated network
//! and disk, and [`Store`] runs the whole store in one process.
//!
//! # Where to start
//!
//! Embedding the store: [`Store::builder`], then the client operations on
//! [`Store`] — [`search`](Store::search), [`lookup`](Store::lookup),
//! [`buy`](Store::buy), [`buy_once`](Store::buy_once),
//! [`order`](Store::order), [`restock`](Store::restock), … — and, for
//! experiments, [`crash`](Store::crash) and [`restart`](Store::restart) of
//! a replica.
//!
//! ```
//! use pygmy_core::{Group, Store};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> pygmy_core::Result<()> {
//! // Three replicas of each group, in memory.
//! let store = Store::builder().replicas(3).start().await?;
//! let before = store.lookup(2).await?.count;
//! store.buy_once(2, 1, "my-first-order").await?;
//!
//! // Crash the order group's primary: the next buy fails over.
//! let primary = store.primary(Group::Order).expect("the order group has a view");
//! store.crash(&primary)?;
//! store.buy(2, 1).await?;
//! store.restart(&primary)?;
//! store.wait_ready(Duration::from_secs(5)).await?;
//!
//! // Whichever replica answers, the read shows both buys.
//! assert_eq!(store.lookup(2).await?.count, before - 2);
//! # Ok(())
//! # }
//! ```
//!
//! A durable store keeps its files in a folder:
//! [`StoreBuilder::durable`], with `pygmy_net::stdfs::StdFs` for a real
//! disk (the `durable` example in the repository's `examples/`).
//!
//! Reading the code: follow one buy from [`Store::buy`] (or from the REST
//! route `POST /books/{id}/buy`, in `pygmy-net/src/rest.rs`) into the front
//! end (`FrontEnd::buy` in `frontend/writes.rs`: a `Request::Buy` to the
//! order primary), to the order primary (`services/buy.rs`: the saga —
//! it appends `OrderCommand::Begin` with `Replica::submit` and asks the
//! catalog primary for `CatalogCommand::Reserve`, which
//! `services/catalog.rs` submits to its own log), through replication (the
//! append and commit in `replication/primary.rs`, the backups' pull in
//! `replication/backup.rs`, the log's fsync in `replication/disk.rs`) to
//! storage (`storage/logstore.rs`), then the state machines that apply the
//! committed entries (`state/catalog.rs` takes the copies, `state/orders.rs`
//! records the order at `OrderCommand::Finish`).
//!
//! # Guarantees
//!
//! - **Nothing acknowledged is lost** while, in each group, one member of
//!   the last confirmed view keeps its disk: a write is acknowledged only
//!   once every member of its view holds it durably. With `n` replicas a
//!   group survives `n - 1` crashes; a disk damaged while its replica was
//!   down is set aside and rebuilt from an intact member.
//! - **Buys happen exactly once** per idempotency key, across crashes of
//!   either primary: stock and orders always agree (`initial + restocked −
//!   stock = copies in orders`, per book).
//! - **Reads are linearizable**: a read through the front end reflects
//!   every write acknowledged before it was sent, whether the cache, a
//!   backup or the primary answers it.
//! - **No split brain**: views carry epochs, and a replica refuses an older
//!   epoch, so two primaries never both commit.
//!
//! Limits: one front end decides views at a time (the view service: the
//! only one, or the leader when several share the views through a
//! coordinator such as etcd); while none can, nothing changes views. See
//! the module docs of `replication` and `frontend` for the caveats.
//!
//! # Layout
//!
//! From the bottom up; each layer uses only the ones above it in this list
//! (no module imports a layer below it), and everything but the root's
//! items is reached through [`unstable`].
//!
//! - `types.rs`, `error.rs`, `view.rs`: shared values (ids, books, log
//!   positions, the clock, cache keys), the error enum (variants named by
//!   what the caller should do), a group's view `(epoch, primary,
//!   backups)`.
//! - `files/`: the small file-system trait every durable format is written
//!   against (`mod.rs`), an in-memory disk that can lose unsynced writes
//!   (`memfs.rs`), the record framing of every file (`framing.rs`: length,
//!   CRC, payload) and the one-record file (`record.rs`).
//! - `state/`: the deterministic state machines and their log commands —
//!   the [`StateMachine`](unstable::state::StateMachine) trait replication
//!   is generic over (`machine.rs`); the catalog (`catalog.rs`, no side
//!   files) and the order ledger (`orders.rs`, with its archive file of
//!   finished buys, `archive.rs`, as side file), each implementing the
//!   trait beside its own code; the commands and outcomes (`command.rs`);
//!   and the [`State`](unstable::state::State) enum of both groups'
//!   states, what snapshots and messages carry, whose impl hands each hook
//!   to its arm's (`machine.rs`, the enum in `mod.rs`).
//! - `storage/`: a replica's durable log, snapshots and view behind the
//!   `Storage` trait (`mod.rs`), and its on-disk format and storage fault
//!   model (`logstore.rs`). It knows of the order archive only its file
//!   name, to set it aside with the rest.
//! - `transport/`: the messages between nodes (`message.rs`), the
//!   `Transport` trait (`mod.rs`), the in-process transport
//!   (`inproc.rs`) and the coalescer that lets concurrent calls to one
//!   node share an RPC (`coalesce.rs`).
//! - `replication/`: a replica of any `StateMachine` — views, log
//!   shipping by pull, commit, view start, resync (`mod.rs`, `primary.rs`,
//!   `backup.rs`, `log.rs`), its disk work (`disk.rs`: no fsync under the
//!   lock that requests wait on), and the `Service` trait a group's
//!   service implements (`service.rs`). `Replica<T, S>` calls its state
//!   only through the trait, so it names no book, buy, order, archive or
//!   cache key: it logs and ships `Command` values as opaque payloads,
//!   applies them through `S`, and hands the rest to the service.
//! - `services/`: what each group does on top of replication — the order
//!   group's buy saga, finisher, reconciliation and order reads
//!   (`buy.rs`), the catalog group's commands, reads and cache
//!   invalidation push (`catalog.rs`) and its cache leases with several
//!   front ends (`leases.rs`); `Replica::start` picks the group's, set up
//!   by the services' own settings, `ServiceConfig` (`mod.rs`), beside
//!   replication's `ReplicaConfig`.
//! - `frontend/`: what clients talk to — the view service's rules
//!   (`viewservice.rs`), failure detector (`detector.rs`), driving (the
//!   heartbeat rounds, storing and announcing views, confirmations:
//!   `views.rs`) and where its records live (`coordination/`: on the front
//!   end's disk, or shared by several front ends); the read side
//!   (`reads/`: the read path, cache, balancer, batcher); the write path
//!   (`writes.rs`); and the front end itself (`mod.rs`: configuration,
//!   the fresh-read marks, lifecycle, health, internal requests).
//! - `store.rs`: the whole store in one process, [`Store`].
//! - `invariants/`: what Pygmy promises, as checkers over a recorded client
//!   history and the replicas' final states, one file per invariant; used
//!   by the simulation, `pygmy chaos` and the process tests. Public (not
//!   under `unstable`): a user's own experiments can check the same
//!   promises.
//! - `unstable.rs`: the layers above, re-exported for Pygmy's own adapters.
//!
//! Not yet where it belongs (issue 16): the wire messages and the snapshot
//! file still carry the `State` enum and the log the `Command` enum, so a
//! state machine converts to and from `State` at replication's edges
//! (`state/machine.rs` says why).

mod error;
mod files;
mod frontend;
pub mod invariants;
mod replication;
mod services;
mod state;
mod storage;
mod store;
mod transport;
mod types;
mod view;

pub mod unstable;

pub use error::{Error, Result};
pub use files::memfs::MemFs;
pub use files::{Fs, FsFile};
pub use state::command::Order;
pub use store::{Store, StoreBuilder};
pub use types::{Book, Group, ItemId, NodeId, OrderId};
