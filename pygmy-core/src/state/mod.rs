//! The replicated state of a group: the catalog or the order ledger, behind
//! one type so the replication code is written once.

pub mod archive;
pub mod catalog;
pub mod command;
pub mod orders;

use crate::state::catalog::Catalog;
use crate::state::command::{Command, Outcome};
use crate::state::orders::OrderLedger;
use crate::types::{fnv1a, Group, LogPos, Lsn, DIGEST_BASIS};
use serde::{Deserialize, Serialize};

/// See [`State::archive_syncer`].
pub type ArchiveSyncer = Box<dyn FnOnce() -> crate::Result<()> + Send>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Catalog(Catalog),
    Orders(OrderLedger),
}

impl State {
    pub fn group(&self) -> Group {
        match self {
            State::Catalog(_) => Group::Catalog,
            State::Orders(_) => Group::Order,
        }
    }

    /// How many records the state holds (books and reservations, or orders
    /// and buys): what a snapshot's size grows with.
    pub fn records(&self) -> u64 {
        let n = match self {
            State::Catalog(c) => c.records(),
            State::Orders(o) => o.records(),
        };
        n as u64
    }

    /// The first I/O error of the order ledger's archive (a catalog has
    /// none): once set, the state may be missing finished buys, and the
    /// replica must not acknowledge anything from it.
    pub fn failure(&self) -> Option<String> {
        match self {
            State::Catalog(_) => None,
            State::Orders(o) => o.failure(),
        }
    }

    /// A copy fit to send: an order ledger carries its archive records from
    /// byte `from` (0: all of them, for a dump).
    pub fn shipping(&self, from: u64) -> Result<State, String> {
        match self {
            State::Catalog(c) => Ok(State::Catalog(c.clone())),
            State::Orders(o) => o.shipping(from).map(State::Orders),
        }
    }

    /// Something that makes the order ledger's archive durable up to at
    /// least this state's mark, to run before a snapshot of this state is
    /// written (nothing for a catalog).
    pub fn archive_syncer(&self) -> crate::Result<Option<ArchiveSyncer>> {
        match self {
            State::Catalog(_) => Ok(None),
            State::Orders(o) => {
                let sync = o.archive_syncer().map_err(crate::Error::Storage)?;
                Ok(Some(Box::new(move || {
                    sync().map_err(|e| {
                        crate::Error::Storage(format!("syncing the order archive failed: {e}"))
                    })
                })))
            }
        }
    }

    /// How far the order ledger's archive goes, in bytes (0 for a catalog).
    pub fn archived(&self) -> u64 {
        match self {
            State::Catalog(_) => 0,
            State::Orders(o) => o.archived().len,
        }
    }

    /// Applies the committed command at `lsn`. Deterministic: the same commands in the
    /// same order give the same state and outcomes on every replica.
    pub fn apply(&mut self, lsn: Lsn, command: &Command) -> Outcome {
        match (self, command) {
            (State::Catalog(c), Command::Catalog(cmd)) => Outcome::Catalog(c.apply(cmd)),
            (State::Orders(o), Command::Order(cmd)) => Outcome::Order(o.apply(lsn, cmd)),
            _ => Outcome::WrongGroup,
        }
    }

    /// A digest of the whole state, equal on replicas that hold the same data.
    /// FNV-1a over the canonical JSON (ordered maps), so it is stable across
    /// processes and platforms.
    pub fn digest(&self) -> u64 {
        let bytes = serde_json::to_vec(self).expect("state serialises");
        fnv1a(DIGEST_BASIS, &bytes)
    }
}

/// Folds one applied command into a replica's running digest.
///
/// A replica reports this in every heartbeat instead of [`State::digest`],
/// which serialises the whole state (milliseconds once the store has served
/// many buys). Replicas that applied the same commands from the same start
/// have the same running digest — and, since `apply` is deterministic, the
/// same state. Snapshots carry the running digest so a replica that installs
/// or loads one continues the same chain.
pub fn chain_digest(previous: u64, command: &Command) -> u64 {
    let bytes = serde_json::to_vec(command).expect("commands serialise");
    fnv1a(fnv1a(DIGEST_BASIS, &previous.to_le_bytes()), &bytes)
}

/// A snapshot: the state after applying every entry up to `pos`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub pos: LogPos,
    pub state: State,
    /// The running digest ([`chain_digest`]) at `pos`.
    pub digest: u64,
}
