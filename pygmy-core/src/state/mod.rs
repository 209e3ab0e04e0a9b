//! The replicated state of a group: the catalog or the order ledger. Each
//! implements the [`StateMachine`] trait that replication is written
//! against, in its own file (`catalog.rs`, `orders.rs`); [`State`], either
//! of them, is what the snapshot file and the messages carry, and its impl
//! hands each hook to the arm it holds (see `machine.rs`).

pub mod archive;
pub mod catalog;
pub mod command;
pub mod machine;
pub mod orders;

pub use machine::{StateMachine, Syncer};

use crate::state::catalog::Catalog;
use crate::state::command::Command;
use crate::state::orders::OrderLedger;
use crate::types::{fnv1a, LogPos, DIGEST_BASIS};
use serde::{Deserialize, Serialize};

/// The state of either group: what the snapshot file and the messages
/// between nodes carry (see `machine.rs`). Its [`StateMachine`] impl hands
/// each hook to the arm's own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Catalog(Catalog),
    Orders(OrderLedger),
}

impl From<Catalog> for State {
    fn from(catalog: Catalog) -> Self {
        State::Catalog(catalog)
    }
}

impl From<OrderLedger> for State {
    fn from(ledger: OrderLedger) -> Self {
        State::Orders(ledger)
    }
}

/// The catalog a `State` holds; a ledger is given back unchanged.
impl TryFrom<State> for Catalog {
    type Error = State;

    fn try_from(state: State) -> std::result::Result<Self, State> {
        match state {
            State::Catalog(catalog) => Ok(catalog),
            other => Err(other),
        }
    }
}

/// The ledger a `State` holds; a catalog is given back unchanged.
impl TryFrom<State> for OrderLedger {
    type Error = State;

    fn try_from(state: State) -> std::result::Result<Self, State> {
        match state {
            State::Orders(ledger) => Ok(ledger),
            other => Err(other),
        }
    }
}

/// A catalog or a ledger, borrowed, serialised as the [`State`] holding it
/// would be (the same variant names, externally tagged).
#[derive(Serialize)]
enum Tagged<'a> {
    Catalog(&'a Catalog),
    Orders(&'a OrderLedger),
}

/// The digest of a state machine ([`StateMachine::digest`]): FNV-1a over
/// the canonical JSON (ordered maps) of the `State` holding it, so it is
/// stable across processes and platforms, and a catalog's or ledger's
/// digest equals that of the `State` wrapping it. That equality keeps the
/// digests as they were: a replica without a snapshot starts its running
/// digest ([`chain_digest`]) from its initial state's digest, and replicas
/// compare running digests, so a replica run over `Catalog` and one run
/// over `State` must start the same chain.
fn state_digest(state: Tagged) -> u64 {
    let bytes = serde_json::to_vec(&state).expect("state serialises");
    fnv1a(DIGEST_BASIS, &bytes)
}

/// Folds one applied command into a replica's running digest.
///
/// A replica reports this in every heartbeat instead of
/// [`StateMachine::digest`],
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::command::{CatalogCommand, OrderCommand};

    /// The digest as it was computed before each state machine had its own
    /// impl: over the `State` holding it.
    fn state_json_digest(state: &State) -> u64 {
        fnv1a(DIGEST_BASIS, &serde_json::to_vec(state).unwrap())
    }

    #[test]
    fn a_state_machines_digest_is_that_of_the_state_holding_it() {
        let mut catalog = Catalog::builtin();
        let reserve = CatalogCommand::Reserve {
            request: "r".into(),
            item: 1,
            qty: 1,
            begin: 1,
            epoch: 0,
        };
        catalog.apply(&reserve);
        let mut ledger = OrderLedger::new();
        let begin = OrderCommand::Begin {
            request: "r".into(),
            item: 1,
            qty: 1,
            created: 0,
        };
        ledger.apply(1, &begin);
        assert_ne!(catalog.digest(), Catalog::builtin().digest());
        assert_ne!(ledger.digest(), OrderLedger::new().digest());
        for state in [State::from(catalog), State::from(ledger)] {
            let inner = match &state {
                State::Catalog(c) => c.digest(),
                State::Orders(o) => o.digest(),
            };
            assert_eq!(inner, state_json_digest(&state));
            assert_eq!(state.digest(), inner);
        }
    }

    #[test]
    fn a_state_converts_back_only_to_the_machine_it_holds() {
        let state = State::from(OrderLedger::new());
        let state = Catalog::try_from(state).expect_err("a ledger is no catalog");
        assert_eq!(OrderLedger::try_from(state), Ok(OrderLedger::new()));
        let state = State::from(Catalog::builtin());
        let state = OrderLedger::try_from(state).expect_err("a catalog is no ledger");
        assert_eq!(Catalog::try_from(state), Ok(Catalog::builtin()));
    }
}
