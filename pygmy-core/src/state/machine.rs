//! What replication needs of a replicated state: the [`StateMachine`]
//! trait. `replication/` is written against it alone (its `Replica` is
//! generic over it), so it cannot look inside a state: it never matches on
//! [`State`]'s arms and names no catalog, ledger or archive.
//!
//! # The trait
//!
//! A state machine applies committed commands deterministically, digests
//! itself, and says how big it is (which paces snapshots). A state may
//! also keep **side files** beside the replica's log — data too big to
//! hold in memory or to carry in every snapshot, written as entries are
//! applied. The order ledger's archive of finished buys is the one such
//! file today (see `archive.rs`); the catalog has none. Replication
//! treats side files through five generic hooks, which hold its
//! durability promise for them:
//!
//! - [`attach`](StateMachine::attach): open them at start, cut back to
//!   what the loaded snapshot covers (the log replays the rest);
//! - [`failure`](StateMachine::failure): their first I/O error, after
//!   which the replica acknowledges nothing;
//! - [`syncer`](StateMachine::syncer): what makes them durable up to the
//!   state's mark, run before a snapshot of the state is written;
//! - [`mark`](StateMachine::mark) and [`shipping`](StateMachine::shipping):
//!   how far they go, and a copy of the state carrying their contents from
//!   a mark, so a snapshot sent to a lagging replica holds only what it
//!   lacks;
//! - [`adopt`](StateMachine::adopt): put such a received copy on the
//!   receiver's own side files before it replaces the receiver's state.
//!
//! # The implementations
//!
//! Each state machine implements the trait itself, beside its own code:
//! [`Catalog`](super::catalog::Catalog) in `catalog.rs` (no side files:
//! `Files = ()`, mark 0, the copy it ships is a clone) and
//! [`OrderLedger`](super::orders::OrderLedger) in `orders.rs` (its archive:
//! `Files` is the [`ArchiveOpener`], `adopt` refuses a copy shipped from
//! another mark than the receiver's archive end). [`State`], either of
//! them, implements it too, by handing each hook to the arm it holds: that
//! impl, below, adds only what comes of being either (an order state
//! started without an archive opener is refused; states of two groups do
//! not fit each other).
//!
//! # Why it still converts to `State` (the one intermediate step)
//!
//! The messages between nodes (`transport/message.rs`: a `Fetch` answer's
//! snapshot, a dump's state) and the snapshot file (`storage/`) carry the
//! [`State`] enum, as they did before this trait: making `Request`,
//! `Response`, `Transport` and `Storage` generic too would ripple through
//! every adapter (`pygmy-net`, `pygmy-sim`, the binary) for no change in
//! behaviour, and the wire and disk formats must stay as they are. So a
//! state machine also converts to and from `State` (the `Into`/`TryFrom`
//! supertraits), which replication uses only at those two edges. The
//! store's replicas all run over `State` (its services, `services/`, serve
//! `State`, and a node picks a group at run time); with their own impls a
//! replica could run over `Catalog` or `OrderLedger` alone, given a
//! service for it, and would report the same digests (see `state_digest`
//! in `state/mod.rs`). A new kind of state machine would be a new arm of
//! `State` (and of `Command`, the log's commands, which replication also
//! carries as opaque values).

use crate::error::{Error, Result};
use crate::state::archive::ArchiveOpener;
use crate::state::command::{Command, Outcome};
use crate::state::State;
use crate::types::{Group, Lsn};

/// See [`StateMachine::syncer`].
pub type Syncer = Box<dyn FnOnce() -> Result<()> + Send>;

/// A replicated state, as replication sees it (see the module docs).
///
/// `Clone` must be cheap (the store's states are persistent maps: O(1)):
/// replication copies the state under its lock to encode or ship it
/// without the lock.
pub trait StateMachine: Clone + Send + Sync + 'static + Into<State> + TryFrom<State> {
    /// What opens the side files at start (`()`-like when there are none).
    type Files: Send;

    /// The group whose state this is.
    fn group(&self) -> Group;

    /// Applies the committed command at `lsn`. Deterministic: the same
    /// commands in the same order give the same state and outcomes on every
    /// replica.
    fn apply(&mut self, lsn: Lsn, command: &Command) -> Outcome;

    /// A digest of the whole state, equal on replicas that hold the same
    /// data (slow: see [`chain_digest`](super::chain_digest) for the one
    /// replicas report).
    fn digest(&self) -> u64;

    /// How many records the state holds: what a snapshot's size grows with.
    fn records(&self) -> u64;

    /// Opens the side files through `files` and cuts them back to this
    /// state's mark (it was just loaded from a snapshot, or is the initial
    /// state). `Err`: they could not be opened at all (fatal). `Ok(Err(p))`:
    /// they do not match the state (problem `p`): damage, to be set aside
    /// with the rest of the disk.
    fn attach(&mut self, files: &mut Self::Files) -> Result<std::result::Result<(), String>>;

    /// The side files' first I/O error: once set, the state may be wrong
    /// (a record it needed not found), and the replica must not acknowledge
    /// anything from it.
    fn failure(&self) -> Option<String>;

    /// How far the side files go, in bytes (0 without any): a pulling
    /// replica sends it, so a snapshot it gets ships only what it lacks.
    fn mark(&self) -> u64;

    /// A copy fit to send: it carries the side files' contents from byte
    /// `from` (0: all of them, for a dump). Reads them as of this state's
    /// mark, so it runs without holding the replica.
    fn shipping(&self, from: u64) -> std::result::Result<Self, String>;

    /// Readies this state, received from a primary (see
    /// [`shipping`](Self::shipping)), to replace `current`: the side-file
    /// contents it carries are appended to `current`'s files, which it then
    /// shares. `Ok(false)`: it was shipped from another mark than
    /// `current`'s, so it does not fit and must be dropped (nothing was
    /// written). `Err`: an I/O error.
    fn adopt(&mut self, current: &Self) -> std::result::Result<bool, String>;

    /// What makes the side files durable up to at least this state's mark,
    /// to run before a snapshot of this state is written, without holding
    /// the replica (`None`: nothing to do).
    fn syncer(&self) -> Result<Option<Syncer>>;
}

/// Calls the hook `$hook` of the state machine `$state` holds, by the
/// trait's path (so no inherent method of the same name can take its
/// place): most of [`State`]'s hooks, whole.
macro_rules! each_arm {
    ($state:expr, $hook:ident($($arg:expr),*)) => {
        match $state {
            State::Catalog(s) => StateMachine::$hook(s $(, $arg)*),
            State::Orders(s) => StateMachine::$hook(s $(, $arg)*),
        }
    };
}

/// The store's state: each hook is the one of the arm it holds (see
/// `catalog.rs` and `orders.rs`).
impl StateMachine for State {
    /// The order ledger's archive opener; a catalog needs none.
    type Files = Option<ArchiveOpener>;

    fn group(&self) -> Group {
        each_arm!(self, group())
    }

    fn apply(&mut self, lsn: Lsn, command: &Command) -> Outcome {
        each_arm!(self, apply(lsn, command))
    }

    fn digest(&self) -> u64 {
        each_arm!(self, digest())
    }

    fn records(&self) -> u64 {
        each_arm!(self, records())
    }

    fn attach(&mut self, files: &mut Self::Files) -> Result<std::result::Result<(), String>> {
        match (self, files) {
            (State::Catalog(c), _) => StateMachine::attach(c, &mut ()),
            (State::Orders(o), Some(open)) => StateMachine::attach(o, open),
            (State::Orders(_), None) => Err(Error::InvalidInput(
                "an order replica needs its archive file".into(),
            )),
        }
    }

    fn failure(&self) -> Option<String> {
        each_arm!(self, failure())
    }

    fn mark(&self) -> u64 {
        each_arm!(self, mark())
    }

    fn shipping(&self, from: u64) -> std::result::Result<Self, String> {
        match self {
            State::Catalog(c) => StateMachine::shipping(c, from).map(State::from),
            State::Orders(o) => StateMachine::shipping(o, from).map(State::from),
        }
    }

    fn adopt(&mut self, current: &Self) -> std::result::Result<bool, String> {
        match (self, current) {
            (State::Catalog(new), State::Catalog(mine)) => StateMachine::adopt(new, mine),
            (State::Orders(new), State::Orders(mine)) => StateMachine::adopt(new, mine),
            // States of different groups are refused before (replication
            // compares `group`); one would not fit.
            _ => Ok(false),
        }
    }

    fn syncer(&self) -> Result<Option<Syncer>> {
        each_arm!(self, syncer())
    }
}
