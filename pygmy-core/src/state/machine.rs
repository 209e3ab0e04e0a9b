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
//! # Why it still converts to `State` (the one intermediate step)
//!
//! The messages between nodes (`transport/message.rs`: a `Fetch` answer's
//! snapshot, a dump's state) and the snapshot file (`storage/`) carry the
//! [`State`] enum, as they did before this trait: making `Request`,
//! `Response`, `Transport` and `Storage` generic too would ripple through
//! every adapter (`pygmy-net`, `pygmy-sim`, the binary) for no change in
//! behaviour, and the wire and disk formats must stay as they are. So a
//! state machine also converts to and from `State` (the `Into`/`TryFrom`
//! supertraits), which replication uses only at those two edges. `State`
//! itself is the one implementation; its impl hands each hook to the arm
//! it holds — [`Catalog`](super::catalog::Catalog) (no side files) or
//! [`OrderLedger`](super::orders::OrderLedger) (its archive). A new kind of
//! state machine would be a new arm of `State` (and of `Command`, the log's
//! commands, which replication also carries as opaque values).

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

/// The store's state: every hook goes to the arm it holds.
impl StateMachine for State {
    /// The order ledger's archive opener; a catalog needs none.
    type Files = Option<ArchiveOpener>;

    fn group(&self) -> Group {
        State::group(self)
    }

    fn apply(&mut self, lsn: Lsn, command: &Command) -> Outcome {
        State::apply(self, lsn, command)
    }

    fn digest(&self) -> u64 {
        State::digest(self)
    }

    fn records(&self) -> u64 {
        State::records(self)
    }

    fn attach(&mut self, files: &mut Self::Files) -> Result<std::result::Result<(), String>> {
        let State::Orders(ledger) = self else {
            return Ok(Ok(()));
        };
        let Some(open) = files.as_mut() else {
            return Err(Error::InvalidInput(
                "an order replica needs its archive file".into(),
            ));
        };
        Ok(ledger.attach(open()?).map_err(|e| format!("orders: {e}")))
    }

    fn failure(&self) -> Option<String> {
        match self {
            State::Catalog(_) => None,
            State::Orders(o) => o.failure(),
        }
    }

    fn mark(&self) -> u64 {
        match self {
            State::Catalog(_) => 0,
            State::Orders(o) => o.archived().len,
        }
    }

    fn shipping(&self, from: u64) -> std::result::Result<Self, String> {
        match self {
            State::Catalog(c) => Ok(State::Catalog(c.clone())),
            State::Orders(o) => o.shipping(from).map(State::Orders),
        }
    }

    fn adopt(&mut self, current: &Self) -> std::result::Result<bool, String> {
        match (self, current) {
            (State::Orders(new), State::Orders(mine)) => {
                if !new.fits(mine) {
                    return Ok(false);
                }
                new.adopt(mine).map(|()| true)
            }
            // A catalog has no side files; states of different groups are
            // refused before (replication compares `group`).
            _ => Ok(true),
        }
    }

    fn syncer(&self) -> Result<Option<Syncer>> {
        match self {
            State::Catalog(_) => Ok(None),
            State::Orders(o) => {
                let sync = o.archive_syncer().map_err(Error::Storage)?;
                Ok(Some(Box::new(move || {
                    sync().map_err(|e| {
                        Error::Storage(format!("syncing the order archive failed: {e}"))
                    })
                })))
            }
        }
    }
}
