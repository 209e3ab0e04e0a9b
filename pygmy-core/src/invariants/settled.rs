//! The checks on a settled cluster's final states: what can be observed of
//! a real cluster from outside (its replicas' committed states and the
//! order ids clients were told), without a recorded history.
//!
//! `pygmy chaos` and the process tests (`tests/cli.rs`) call
//! [`check_settled`] after a run; the simulation runs the same invariants
//! with more data (commit lsns, idempotency keys, the history).

use super::completion::check_buys_finished;
use super::convergence::CONVERGED;
use super::orders::check_order_ids;
use super::stock::check_stock_of;
use super::Violation;
use crate::state::{State, StateMachine};
use crate::types::{Group, OrderId};

/// Every violation of invariants 1–3 and of
/// [`BUYS_FINISH`](super::BUYS_FINISH) in `states`
/// (every replica's committed state, by replica name) given the order ids
/// acknowledged to clients; empty if none. Checks: each group's replicas
/// hold identical states ([`CONVERGED`]); both groups were read; no buy is
/// pending; every acknowledged id is on every order replica, once; stock is
/// conserved item by item (on the first replica of each group, the others
/// being identical or already reported).
pub fn check_settled(states: &[(String, State)], acknowledged: &[OrderId]) -> Vec<Violation> {
    let mut violations = Vec::new();
    for group in Group::ALL {
        let members: Vec<_> = states.iter().filter(|(_, s)| s.group() == group).collect();
        if let Some(((first, state), rest)) = members.split_first() {
            for (name, other) in rest {
                if other != state {
                    violations.push(Violation::new(
                        CONVERGED,
                        format!(
                            "the {group} replicas hold different states: {first} has digest \
                             {:016x}, {name} has {:016x}",
                            state.digest(),
                            other.digest()
                        ),
                    ));
                }
            }
        }
    }
    let catalogs: Vec<_> = states
        .iter()
        .filter_map(|(n, s)| match s {
            State::Catalog(c) => Some((n.as_str(), c)),
            State::Orders(_) => None,
        })
        .collect();
    let ledgers: Vec<_> = states
        .iter()
        .filter_map(|(n, s)| match s {
            State::Orders(o) => Some((n.as_str(), o)),
            State::Catalog(_) => None,
        })
        .collect();
    let (Some((_, catalog)), Some((_, ledger))) = (catalogs.first(), ledgers.first()) else {
        violations.push(Violation::new(
            CONVERGED,
            format!(
                "could not read both groups ({} replicas answered)",
                states.len()
            ),
        ));
        return violations;
    };
    // Pending buys would break conservation too; name them first, it is the
    // more useful message.
    let pending = check_buys_finished(ledgers.iter().copied());
    let finished = pending.is_ok();
    violations.extend(pending.err());
    violations.extend(check_order_ids(acknowledged, &ledgers).err());
    if finished {
        violations.extend(check_stock_of(catalog, ledger).err());
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::{CONSERVATION, ORDERS_DURABLE, UNIQUE_ORDER_IDS};
    use crate::state::catalog::Catalog;
    use crate::state::command::CatalogCommand;
    use crate::state::orders::OrderLedger;

    fn cluster() -> Vec<(String, State)> {
        vec![
            ("catalog-1".into(), State::Catalog(Catalog::builtin())),
            ("catalog-2".into(), State::Catalog(Catalog::builtin())),
            ("order-1".into(), State::Orders(OrderLedger::new())),
            ("order-2".into(), State::Orders(OrderLedger::new())),
        ]
    }

    /// Takes one copy of item 1 on `replica`'s catalog, as a reservation no
    /// order ever follows.
    fn reserve(states: &mut [(String, State)], replica: usize) {
        let State::Catalog(c) = &mut states[replica].1 else {
            panic!("not a catalog replica");
        };
        c.apply(&CatalogCommand::Reserve {
            request: "r1".into(),
            item: 1,
            qty: 1,
            begin: 1,
            epoch: Default::default(),
        });
    }

    fn names(v: &[Violation]) -> Vec<&'static str> {
        v.iter().map(|v| v.invariant).collect()
    }

    #[test]
    fn identical_untouched_replicas_pass() {
        assert_eq!(check_settled(&cluster(), &[]), Vec::new());
    }

    #[test]
    fn an_acknowledged_order_nobody_holds_is_caught() {
        assert_eq!(names(&check_settled(&cluster(), &[7])), [ORDERS_DURABLE]);
        assert_eq!(
            names(&check_settled(&cluster(), &[7, 7])),
            [UNIQUE_ORDER_IDS]
        );
    }

    #[test]
    fn copies_taken_that_no_order_holds_break_conservation() {
        let mut states = cluster();
        reserve(&mut states, 0);
        reserve(&mut states, 1);
        assert_eq!(names(&check_settled(&states, &[])), [CONSERVATION]);
    }

    #[test]
    fn replicas_that_differ_are_caught() {
        let mut states = cluster();
        reserve(&mut states, 1);
        assert_eq!(names(&check_settled(&states, &[])), [CONVERGED]);
    }

    #[test]
    fn a_missing_group_is_reported() {
        let states: Vec<_> = cluster().into_iter().take(2).collect();
        assert_eq!(names(&check_settled(&states, &[])), [CONVERGED]);
    }
}
