//! # The invariants, in one place
//!
//! What Pygmy promises, as checkers over plain data: a recorded client
//! [`history`] and the states the replicas hold once the faults have healed
//! and the cluster is quiet. The simulation (`pygmy-sim`), the `pygmy chaos`
//! command and the process tests (`tests/cli.rs`) all call these functions;
//! none keeps a copy of its own. Each checker returns `Ok` or the first
//! [`Violation`] it finds, naming the invariant (one of the named constants
//! below) and what broke it. The design behind each is in
//! `docs/DESIGN.md`, §8 "Invariants".
//!
//! | invariant | file | names |
//! |---|---|---|
//! | 1. no item's stock is ever negative; stock is conserved | [`stock`] | [`NO_NEGATIVE_STOCK`], [`CONSERVATION`] |
//! | 2. every acknowledged order is on every live order replica, once | [`orders`] | [`ORDERS_DURABLE`], [`ONE_ORDER_PER_KEY`], [`UNIQUE_ORDER_IDS`], [`ORDER_REPLICAS_AGREE`] |
//! | 3. the replicas of a group converge to identical state | [`convergence`] | [`CONVERGED`] |
//! | 4. buys and restocks are linearizable per item | [`linearizable`] | [`LINEARIZABLE`], [`BUDGET_EXHAUSTED`] |
//! | 4. no read shows a write that is later lost | [`reads`] | [`READS_NOT_LOST`] |
//! | 4. the whole history per item, reads included, is linearizable; order reads find acknowledged orders | [`fresh`] | [`FRESH_READS`], [`INCONCLUSIVE`], [`ORDER_READS`] |
//! | 4. no acknowledged or observed price change is lost | [`prices`] | [`PRICES`] |
//! | 5. after healing, buys finish and every request completes within a bound | [`completion`] | [`BUYS_FINISH`], [`RESERVATIONS_FORGOTTEN`], [`COMPLETES_AFTER_HEALING`] |
//!
//! [`check_settled`] bundles the checks that need only the final states and
//! the acknowledged order ids (1, 2, 3 and buys finishing): what `pygmy
//! chaos` and the process tests can observe of a real cluster. The
//! simulation, which also records every client's history, adds 4 and 5.
//!
//! # Limits
//!
//! - The checks run on the state after quiescence; a transient violation
//!   that heals before the end (say, a backup briefly ahead of a commit) is
//!   seen only through the history (invariant 4), not through the states.
//! - Convergence compares state digests (or whole states in
//!   [`check_settled`]); a digest collision could hide a difference.
//! - The linearizability searches (invariant 4's and the fresh-read
//!   check's, one search over two kinds of operations: `search.rs`) are
//!   exact within a budget of visited states ([`DEFAULT_SEARCH_BUDGET`]);
//!   an exhausted budget is reported as a violation of its own, never as a
//!   pass.
//! - [`check_reads_not_lost`] checks reads against the one linearization
//!   [`check_linearizable_ending_at`] found: sound, but it may miss a read
//!   only another order of operations would explain (see [`reads`]).

pub mod completion;
pub mod convergence;
pub mod fresh;
pub mod history;
pub mod linearizable;
pub mod orders;
pub mod prices;
pub mod reads;
mod search;
pub mod settled;
pub mod stock;
pub mod views;

#[cfg(test)]
mod tests;

pub use completion::{
    check_buys_finished, check_completion, check_reservations_forgotten, BUYS_FINISH,
    COMPLETES_AFTER_HEALING, RESERVATIONS_FORGOTTEN,
};
pub use convergence::{check_converged, CONVERGED};
pub use fresh::{
    check_fresh_reads, check_order_reads, ItemState, FRESH_READS, INCONCLUSIVE, ORDER_READS,
};
pub use history::{ClientId, Event, History, Op, Recorder, Ret};
pub use linearizable::{
    check_linearizable, check_linearizable_ending_at, Linearization, Step, BUDGET_EXHAUSTED,
    DEFAULT_SEARCH_BUDGET, LINEARIZABLE,
};
pub use orders::{
    check_order_ids, check_orders, ONE_ORDER_PER_KEY, ORDERS_DURABLE, ORDER_REPLICAS_AGREE,
    UNIQUE_ORDER_IDS,
};
pub use prices::{check_prices, PRICES};
pub use reads::{check_reads_not_lost, READS_NOT_LOST};
pub use settled::check_settled;
pub use stock::{balances, check_stock, ItemBalance, CONSERVATION, NO_NEGATIVE_STOCK};
pub use views::{check_view_history, ONE_VIEW_PER_EPOCH, RECORDS_MOVE_FORWARD, VIEWS_BY_LEADER};

use std::fmt;

/// The history itself is malformed (a harness bug, not a Pygmy bug).
pub const WELL_FORMED: &str = "well-formed history";

/// A broken invariant: which one (a named constant of this module), and what
/// broke it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    pub detail: String,
}

impl Violation {
    pub fn new(invariant: &'static str, detail: impl Into<String>) -> Self {
        Violation {
            invariant,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invariant `{}` violated: {}",
            self.invariant, self.detail
        )
    }
}

impl std::error::Error for Violation {}
