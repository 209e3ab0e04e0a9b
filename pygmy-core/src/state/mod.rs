//! The replicated state of a group: the catalog or the order ledger, behind
//! one type, [`State`], which implements the [`StateMachine`] trait that
//! replication is written against (see `machine.rs`).

pub mod archive;
pub mod catalog;
pub mod command;
pub mod machine;
pub mod orders;

pub use machine::{StateMachine, Syncer};

use crate::state::catalog::Catalog;
use crate::state::command::{Command, Outcome};
use crate::state::orders::OrderLedger;
use crate::types::{fnv1a, Group, LogPos, Lsn, DIGEST_BASIS};
use serde::{Deserialize, Serialize};

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
///
/// Generic so that replication handles `Snapshot<S>` of its
/// [`StateMachine`]; the snapshot file and the messages hold the store's
/// (the default, `Snapshot<State>`: see `machine.rs` for why).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot<S = State> {
    pub pos: LogPos,
    pub state: S,
    /// The running digest ([`chain_digest`]) at `pos`.
    pub digest: u64,
}

impl<S> Snapshot<S> {
    /// The same snapshot with its state converted (to or from the store's
    /// `State`, at the edges of replication).
    pub fn map<U>(self, f: impl FnOnce(S) -> U) -> Snapshot<U> {
        Snapshot {
            pos: self.pos,
            state: f(self.state),
            digest: self.digest,
        }
    }

    /// The same snapshot with its state converted, if it converts.
    pub fn try_map<U, E>(
        self,
        f: impl FnOnce(S) -> std::result::Result<U, E>,
    ) -> std::result::Result<Snapshot<U>, E> {
        Ok(Snapshot {
            pos: self.pos,
            state: f(self.state)?,
            digest: self.digest,
        })
    }
}
