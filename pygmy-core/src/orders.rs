//! The order ledger: where every buy stands, and the orders buys produced.
//!
//! A buy is two entries in the order group's log. `Begin` records it as
//! pending *before* the catalog is asked to reserve copies; `Finish` records
//! the catalog's answer. A crash in between leaves the buy pending, and a new
//! order primary finishes every buy in [`OrderLedger::pending`] by asking the
//! catalog again with the same request id — the catalog's reservation is
//! idempotent, so the answer is the one it first gave.
//!
//! Like the catalog, the ledger is a pure, deterministic state machine over
//! ordered maps, so replicas applying the same log hold byte-identical state.
//!
//! # Guarantees
//!
//! - **One order per request id.** Once a buy is done its status never
//!   changes; a repeated `Begin` or `Finish` returns it unchanged.
//! - **Dense order ids.** Orders are numbered 1, 2, 3, ... in log order, so
//!   the id says nothing a backup cannot recompute.
//! - **Total.** Every command has an outcome; none panics.
//! - **Settled mark.** [`OrderLedger::settled_below`] is an lsn below which
//!   every buy's `Begin` is finished; the catalog forgets reservations
//!   below it (see `catalog.rs`).
//!
//! # Caveats
//!
//! - Orders and buy statuses are kept forever, in memory: a client may retry
//!   a buy under its request id at any time and must get its one order.
//!   The ledger's memory grows with the number of buys (a disk-backed
//!   ledger is the way to bound it; not done yet).
//! - `Finish` trusts the reservation for item, quantity and price: it is what
//!   the catalog actually took, even if a `Begin` said otherwise.

use crate::command::{BuyStatus, Order, OrderCommand, Rejection, Reservation};
use crate::types::{ItemId, Lsn, OrderId, RequestId};
use imbl::OrdMap;
use serde::{Deserialize, Serialize};

/// A buy's status as the ledger stores it (see [`OrderLedger::status`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Stand {
    Pending {
        item: ItemId,
        qty: u64,
        created: u64,
    },
    Ordered(OrderId),
    Refused(Rejection),
}

/// The order state machine (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLedger {
    // Persistent maps: they grow with every buy, and a snapshot clones them
    // in O(1) under the replica's lock.
    orders: OrdMap<OrderId, Order>,
    /// Where each buy stands; a finished one names its order rather than
    /// holding a second copy of it.
    buys: OrdMap<RequestId, Stand>,
    /// The lsn of each pending buy's `Begin`: the catalog is told to
    /// forget the reservations of buys that began below the lowest one.
    #[serde(default)]
    begun: OrdMap<RequestId, Lsn>,
    /// The id the next order gets; the first is 1.
    next_id: OrderId,
}

impl Default for OrderLedger {
    fn default() -> Self {
        OrderLedger {
            orders: OrdMap::new(),
            buys: OrdMap::new(),
            begun: OrdMap::new(),
            next_id: 1,
        }
    }
}

impl OrderLedger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies the committed command at `lsn` and returns the buy's status
    /// after it.
    pub fn apply(&mut self, lsn: Lsn, cmd: &OrderCommand) -> BuyStatus {
        match cmd {
            OrderCommand::Begin {
                request,
                item,
                qty,
                created,
            } => {
                if let Some(status) = self.status(request) {
                    return status;
                }
                let stand = Stand::Pending {
                    item: *item,
                    qty: *qty,
                    created: *created,
                };
                self.buys.insert(request.clone(), stand);
                self.begun.insert(request.clone(), lsn);
                BuyStatus::Pending {
                    item: *item,
                    qty: *qty,
                    created: *created,
                }
            }
            OrderCommand::Finish { request, outcome } => self.finish(request, outcome),
        }
    }

    fn finish(&mut self, request: &str, outcome: &Result<Reservation, Rejection>) -> BuyStatus {
        let created = match self.status(request) {
            Some(done @ BuyStatus::Done(_)) => return done,
            Some(BuyStatus::Pending { created, .. }) => created,
            // A Finish with no Begin should not be in a log, but recording it
            // keeps the ledger total and the catalog's answer known.
            None => 0,
        };
        let result = match outcome {
            Ok(reservation) => self.record_order(request, reservation, created),
            Err(rejection) => Err(rejection.clone()),
        };
        let stand = match &result {
            Ok(order) => Stand::Ordered(order.id),
            Err(rejection) => Stand::Refused(rejection.clone()),
        };
        self.buys.insert(request.to_string(), stand);
        self.begun.remove(request);
        BuyStatus::Done(result)
    }

    fn record_order(
        &mut self,
        request: &str,
        reservation: &Reservation,
        created: u64,
    ) -> Result<Order, Rejection> {
        let id = self.next_id;
        // 2^64 orders cannot happen; checked only so that no input panics.
        let next_id = id
            .checked_add(1)
            .ok_or_else(|| Rejection::Invalid("order ids exhausted".into()))?;
        let order = Order {
            id,
            item_id: reservation.item,
            title: reservation.title.clone(),
            topic: reservation.topic.clone(),
            qty: reservation.qty,
            cost: reservation.cost,
            remaining: reservation.remaining,
            created,
            request: request.to_string(),
        };
        self.orders.insert(id, order.clone());
        self.next_id = next_id;
        Ok(order)
    }

    /// Orders plus buy statuses.
    pub fn records(&self) -> usize {
        self.orders.len() + self.buys.len()
    }

    pub fn order(&self, id: OrderId) -> Option<Order> {
        self.orders.get(&id).cloned()
    }

    /// Every order, by id.
    pub fn orders(&self) -> Vec<Order> {
        self.orders.values().cloned().collect()
    }

    pub fn status(&self, request: &str) -> Option<BuyStatus> {
        Some(match self.buys.get(request)? {
            Stand::Pending { item, qty, created } => BuyStatus::Pending {
                item: *item,
                qty: *qty,
                created: *created,
            },
            // Recorded together with the order, so it is there.
            Stand::Ordered(id) => BuyStatus::Done(Ok(self.orders.get(id)?.clone())),
            Stand::Refused(rejection) => BuyStatus::Done(Err(rejection.clone())),
        })
    }

    /// `(request, item, qty, begin)` of every buy not yet finished, by
    /// request id; `begin` is the lsn of its `Begin`.
    pub fn pending(&self) -> Vec<(RequestId, ItemId, u64, Lsn)> {
        self.begun
            .iter()
            .filter_map(|(request, begin)| match self.buys.get(request) {
                Some(Stand::Pending { item, qty, .. }) => {
                    Some((request.clone(), *item, *qty, *begin))
                }
                _ => None,
            })
            .collect()
    }

    /// The lsn of a pending buy's `Begin`.
    pub fn begun(&self, request: &str) -> Option<Lsn> {
        self.begun.get(request).copied()
    }

    /// Every buy whose `Begin` is below the returned lsn is finished, given
    /// that `next` follows every applied entry: the lowest `Begin` still
    /// pending, or `next` when none is.
    pub fn settled_below(&self, next: Lsn) -> Lsn {
        self.begun.values().copied().fold(next, Lsn::min)
    }

    /// Copies of `item` in orders. Saturates rather than overflowing: with a
    /// consistent catalog the sum is bounded by the item's `initial +
    /// restocked`, which the catalog keeps representable.
    pub fn copies_ordered(&self, item: ItemId) -> u64 {
        self.orders
            .values()
            .filter(|o| o.item_id == item)
            .fold(0, |sum, o| sum.saturating_add(o.qty))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn begin(request: &str, item: ItemId, qty: u64, created: u64) -> OrderCommand {
        OrderCommand::Begin {
            request: request.into(),
            item,
            qty,
            created,
        }
    }

    fn reservation(item: ItemId, qty: u64) -> Reservation {
        Reservation {
            item,
            title: format!("book {item}"),
            topic: "topic".into(),
            qty,
            cost: 7,
            remaining: 3,
        }
    }

    fn finish(request: &str, outcome: Result<Reservation, Rejection>) -> OrderCommand {
        OrderCommand::Finish {
            request: request.into(),
            outcome,
        }
    }

    #[test]
    fn first_order_gets_id_one_and_the_pending_timestamp() {
        let mut l = OrderLedger::new();
        let pending = l.apply(1, &begin("a", 2, 3, 1234));
        assert_eq!(
            pending,
            BuyStatus::Pending {
                item: 2,
                qty: 3,
                created: 1234
            }
        );
        assert_eq!(l.pending(), [("a".to_string(), 2, 3, 1)]);
        let BuyStatus::Done(Ok(order)) = l.apply(1, &finish("a", Ok(reservation(2, 3)))) else {
            panic!("expected an order");
        };
        assert_eq!(
            (
                order.id,
                order.item_id,
                order.qty,
                order.cost,
                order.created
            ),
            (1, 2, 3, 7, 1234)
        );
        assert_eq!(
            (order.title.as_str(), order.request.as_str()),
            ("book 2", "a")
        );
        assert_eq!(l.order(1), Some(order.clone()));
        assert_eq!(l.orders(), [order]);
        assert!(l.pending().is_empty());
        assert_eq!(l.copies_ordered(2), 3);
    }

    #[test]
    fn rejected_buy_is_done_without_an_order() {
        let mut l = OrderLedger::new();
        l.apply(1, &begin("a", 2, 1, 5));
        let status = l.apply(1, &finish("a", Err(Rejection::OutOfStock(2))));
        assert_eq!(status, BuyStatus::Done(Err(Rejection::OutOfStock(2))));
        assert!(l.orders().is_empty());
        // The next successful buy still gets id 1.
        let BuyStatus::Done(Ok(order)) = l.apply(1, &finish("b", Ok(reservation(2, 1)))) else {
            panic!("expected an order");
        };
        assert_eq!(order.id, 1);
    }

    #[test]
    fn done_buys_never_change() {
        let mut l = OrderLedger::new();
        l.apply(1, &begin("a", 1, 1, 5));
        let done = l.apply(1, &finish("a", Ok(reservation(1, 1))));
        let before = l.clone();
        assert_eq!(l.apply(1, &finish("a", Ok(reservation(1, 1)))), done);
        assert_eq!(
            l.apply(1, &finish("a", Err(Rejection::OutOfStock(1)))),
            done
        );
        assert_eq!(l.apply(1, &begin("a", 4, 4, 9)), done);
        assert_eq!(l, before);
    }

    #[test]
    fn repeated_begin_keeps_the_first_pending_entry() {
        let mut l = OrderLedger::new();
        let first = l.apply(1, &begin("a", 1, 2, 5));
        assert_eq!(l.apply(1, &begin("a", 3, 4, 6)), first);
        assert_eq!(l.status("a"), Some(first));
    }

    #[test]
    fn finish_without_begin_is_recorded_with_created_zero() {
        let mut l = OrderLedger::new();
        let BuyStatus::Done(Ok(order)) = l.apply(1, &finish("x", Ok(reservation(4, 2)))) else {
            panic!("expected an order");
        };
        assert_eq!((order.item_id, order.qty, order.created), (4, 2, 0));
        assert_eq!(l.status("x"), Some(BuyStatus::Done(Ok(order))));
        assert_eq!(l.status("y"), None);
    }

    fn command() -> impl Strategy<Value = OrderCommand> {
        let request = (0..6u8).prop_map(|r| format!("r{r}"));
        let outcome = prop_oneof![
            (1..4u64, 1..5u64).prop_map(|(item, qty)| Ok(reservation(item, qty))),
            (1..4u64).prop_map(|item| Err(Rejection::OutOfStock(item))),
        ];
        prop_oneof![
            (request.clone(), 1..4u64, 1..5u64, 0..1000u64)
                .prop_map(|(r, item, qty, created)| begin(&r, item, qty, created)),
            (request, outcome).prop_map(|(r, outcome)| finish(&r, outcome)),
        ]
    }

    fn request_of(cmd: &OrderCommand) -> &str {
        match cmd {
            OrderCommand::Begin { request, .. } | OrderCommand::Finish { request, .. } => request,
        }
    }

    proptest! {
        #[test]
        fn random_commands_give_at_most_one_order_per_request(
            cmds in prop::collection::vec(command(), 0..60),
        ) {
            let mut l = OrderLedger::new();
            let mut twin = OrderLedger::new();
            // Reference model: a request's first Begin (if before any Finish)
            // sets `created`; its first Finish decides the outcome.
            let mut first_begin: BTreeMap<&str, Option<u64>> = BTreeMap::new();
            let mut first_finish: BTreeMap<&str, &Result<Reservation, Rejection>> = BTreeMap::new();
            // The lsn of each request's first Begin, if it came before any Finish.
            let mut begun_at: BTreeMap<&str, u64> = BTreeMap::new();
            for (lsn, cmd) in (1..).zip(&cmds) {
                let status = l.apply(lsn, cmd);
                prop_assert_eq!(&twin.apply(lsn, cmd), &status, "determinism");
                prop_assert_eq!(l.status(request_of(cmd)), Some(status.clone()));
                let before = l.clone();
                prop_assert_eq!(l.apply(lsn + 1000, cmd), status, "a repeat changed the status");
                prop_assert_eq!(&l, &before, "a repeat changed the state");
                match cmd {
                    OrderCommand::Begin { request, created, .. } => {
                        if !first_begin.contains_key(request.as_str()) {
                            begun_at.insert(request, lsn);
                        }
                        first_begin.entry(request).or_insert(Some(*created));
                    }
                    OrderCommand::Finish { request, outcome } => {
                        first_begin.entry(request).or_insert(None);
                        first_finish.entry(request).or_insert(outcome);
                    }
                }
            }
            prop_assert_eq!(&l, &twin);
            let orders = l.orders();
            let ids: Vec<OrderId> = orders.iter().map(|o| o.id).collect();
            prop_assert_eq!(ids, (1..=orders.len() as u64).collect::<Vec<_>>());
            let mut per_request: BTreeMap<&str, usize> = BTreeMap::new();
            for o in &orders {
                *per_request.entry(&o.request).or_default() += 1;
                prop_assert_eq!(l.status(&o.request), Some(BuyStatus::Done(Ok(o.clone()))));
                let created = first_begin.get(o.request.as_str()).copied().flatten();
                prop_assert_eq!(o.created, created.unwrap_or(0));
            }
            prop_assert!(per_request.values().all(|n| *n == 1));
            let expected = first_finish.values().filter(|o| o.is_ok()).count();
            prop_assert_eq!(orders.len(), expected);
            // Every buy that began below the settled mark is done.
            let settled = l.settled_below(cmds.len() as u64 + 1);
            for (request, lsn) in &begun_at {
                let done = matches!(l.status(request), Some(BuyStatus::Done(_)));
                prop_assert!(*lsn >= settled || done, "{} began at {} below {}", request, lsn, settled);
            }
            for (request, item, qty, begin) in l.pending() {
                prop_assert_eq!(begun_at.get(request.as_str()), Some(&begin));
                prop_assert!(begin >= settled);
                prop_assert!(!first_finish.contains_key(request.as_str()));
                let is_pending = matches!(
                    l.status(&request),
                    Some(BuyStatus::Pending { item: i, qty: q, .. }) if i == item && q == qty
                );
                prop_assert!(is_pending, "{} is listed as pending", request);
            }
        }
    }
}
