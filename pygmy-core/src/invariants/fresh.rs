//! Fresh reads: the whole history per item, reads included, checked for
//! linearizability — the check behind "a read reflects every write
//! acknowledged before it was sent" (`docs/DESIGN.md`, §6 "Reads").
//!
//! Invariant 4 in `linearizable.rs` linearizes buys and restocks only, and checks
//! reads afterwards for values that never existed: a stale read passes it.
//! This check puts every operation on an item into one search:
//!
//! - the state of an item is its `(stock, cost)`;
//! - `Buy(qty)`, `Restock(qty)`: the stock counter of `linearizable.rs` (the
//!   restock-on-empty rule included: only a buy that finds the item sold
//!   out restocks it), answered `Bought { remaining }`,
//!   `OutOfStock`, `Restocked { count }`;
//! - `SetPrice(cost)`: sets the cost, answered `PriceSet`;
//! - a read — a lookup, or one book of a search answer — returns the state:
//!   its `(count, cost)` must be the item's state at its linearization
//!   point. A search answer is one read of each book it lists, all in the
//!   search's real-time interval.
//!
//! A history is accepted if some total order of the operations gives every
//! definite answer the spec's answer, puts an operation after every
//! operation that completed (strictly) before it was invoked, contains every
//! definite operation and any subset of the indeterminate writes (reads that
//! got no answer are left out: they change nothing), and ends at the item's
//! final `(stock, cost)` on the catalog. A stale read — one that misses a
//! write acknowledged before it was sent, or a state an earlier read showed —
//! has no place in such an order.
//!
//! # Keeping the search bounded
//!
//! The search is the Wing & Gong / Lowe search of `search.rs`, per item
//! (linearizability is local, so items are checked apart), with states
//! `(operations done, stock, cost)` memoised. Reads make most of the
//! operations but cost almost nothing: a read that may come next (it is
//! *minimal*) and matches the current state is linearized at once, with no
//! alternative tried. That is safe: moving such a read to the current point
//! keeps every real-time constraint (nothing left completed before it was
//! invoked) and every answer (it changes no state). So the search branches
//! on writes only, as before. States are still capped
//! ([`DEFAULT_SEARCH_BUDGET`]); an item whose search hits the
//! cap is reported as [`INCONCLUSIVE`], a failure of its own — never
//! counted as a pass.
//!
//! # Orders
//!
//! Order reads (`GET /orders/{id}`) ask for ids some client was told about
//! before the read was invoked. An order, once acknowledged, never changes,
//! so the register is simple: every order read invoked after the buy that
//! created the order was acknowledged (or after another read found it) must
//! find it, with the buy's item and quantity.

use super::history::{History, Op, Ret};
use super::linearizable::{self, describe, Effect, Outcome, DEFAULT_SEARCH_BUDGET};
use super::search::{self, Ops, Stop};
use super::{Violation, WELL_FORMED};
use crate::types::{Book, ItemId, OrderId};
use std::collections::{BTreeMap, BTreeSet};

/// The invariant: the whole history per item, reads included, is
/// linearizable.
pub const FRESH_READS: &str = "linearizable reads";
/// The search for [`FRESH_READS`] hit its budget: neither pass nor fail
/// proven, reported as a failure so it is never taken for a pass.
pub const INCONCLUSIVE: &str = "linearizable reads: inconclusive (search budget exhausted)";
/// Order reads find every acknowledged order.
pub const ORDER_READS: &str = "order reads find acknowledged orders";

/// An item's state: its stock and its unit cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemState {
    pub stock: u64,
    pub cost: u64,
}

/// What an operation does, and the answer it must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `expect`: `Some(remaining)` for `Bought`, `None` for `OutOfStock`.
    Buy {
        qty: u64,
        expect: Option<Option<u64>>,
    },
    Restock {
        qty: u64,
        expect: Option<u64>,
    },
    /// `definite`: answered `PriceSet`.
    SetPrice {
        cost: u64,
        definite: bool,
    },
    Read(ItemState),
}

#[derive(Clone, Debug)]
struct FreshOp {
    event: usize,
    kind: Kind,
    invoked: u64,
    /// `u64::MAX` when indeterminate.
    completed: u64,
}

impl FreshOp {
    fn is_definite(&self) -> bool {
        match self.kind {
            Kind::Buy { expect, .. } => expect.is_some(),
            Kind::Restock { expect, .. } => expect.is_some(),
            Kind::SetPrice { definite, .. } => definite,
            Kind::Read(_) => true,
        }
    }

    fn is_read(&self) -> bool {
        matches!(self.kind, Kind::Read(_))
    }

    /// The state after this operation from `state`, if it gets its
    /// recorded answer there (any answer, when indeterminate).
    fn step(&self, state: ItemState, restock_on_empty: Option<u64>) -> Option<ItemState> {
        match self.kind {
            Kind::Buy { qty, expect } => {
                // The sequential spec of `linearizable.rs`, restock rule included.
                let (after, outcome) =
                    linearizable::apply(Effect::Buy(qty), state.stock, restock_on_empty)?;
                let answer = match outcome {
                    Outcome::Bought { remaining } => Some(remaining),
                    _ => None,
                };
                expect.is_none_or(|e| e == answer).then_some(ItemState {
                    stock: after,
                    ..state
                })
            }
            Kind::Restock { qty, expect } => {
                let after = state.stock.checked_add(qty)?;
                expect.is_none_or(|e| e == after).then_some(ItemState {
                    stock: after,
                    ..state
                })
            }
            Kind::SetPrice { cost, .. } => Some(ItemState { cost, ..state }),
            Kind::Read(seen) => (seen == state).then_some(state),
        }
    }
}

/// Checks every item of `initial` (its state before the run). `finals`
/// holds each item's state on the catalog after the run, which the
/// linearization must end at. Every write to these items must be in
/// `history`.
pub fn check_fresh_reads(
    history: &History,
    initial: &BTreeMap<ItemId, ItemState>,
    finals: &BTreeMap<ItemId, ItemState>,
    restock_on_empty: Option<u64>,
) -> Result<(), Violation> {
    check_fresh_reads_within(
        history,
        initial,
        finals,
        restock_on_empty,
        DEFAULT_SEARCH_BUDGET,
    )
}

/// [`check_fresh_reads`] with a given search budget (states per item).
pub fn check_fresh_reads_within(
    history: &History,
    initial: &BTreeMap<ItemId, ItemState>,
    finals: &BTreeMap<ItemId, ItemState>,
    restock_on_empty: Option<u64>,
    budget: usize,
) -> Result<(), Violation> {
    let mut per_item = ops_by_item(history, initial)?;
    for (&item, &start) in initial {
        let goal = *finals.get(&item).ok_or_else(|| {
            Violation::new(
                FRESH_READS,
                format!("item {item} existed before the run but not after it"),
            )
        })?;
        let mut ops = per_item.remove(&item).unwrap_or_default();
        ops.sort_by_key(|op| (op.invoked, op.event));
        let search = Search {
            item,
            ops,
            restock_on_empty,
            goal,
            budget,
        };
        search.run(history, start)?;
    }
    Ok(())
}

/// Splits the history by item: writes with their answers, and every book a
/// lookup or search showed as a read of its item.
fn ops_by_item(
    history: &History,
    initial: &BTreeMap<ItemId, ItemState>,
) -> Result<BTreeMap<ItemId, Vec<FreshOp>>, Violation> {
    let mut per_item: BTreeMap<ItemId, Vec<FreshOp>> = BTreeMap::new();
    for (index, event) in history.events().iter().enumerate() {
        let answer = event.answer();
        let completed = answer.map_or(u64::MAX, |(at, _)| at);
        let mut push = |item: ItemId, kind: Kind| {
            per_item.entry(item).or_default().push(FreshOp {
                event: index,
                kind,
                invoked: event.invoked,
                completed,
            });
        };
        let ret = answer.map(|(_, r)| r);
        match (&event.op, ret) {
            // A write refused as NotFound changed nothing (invariant 4
            // checks that the item is indeed missing).
            (_, Some(Ret::NotFound)) => {}
            (Op::Buy { item, qty, .. }, ret) => {
                let expect = match ret {
                    None => None,
                    Some(Ret::Bought { remaining, .. }) => Some(Some(*remaining)),
                    Some(Ret::OutOfStock) => Some(None),
                    Some(_) => return Err(malformed(history, index)),
                };
                push(*item, Kind::Buy { qty: *qty, expect });
            }
            (Op::Restock { item, qty }, ret) => {
                let expect = match ret {
                    None => None,
                    Some(Ret::Restocked { count }) => Some(*count),
                    Some(_) => return Err(malformed(history, index)),
                };
                push(*item, Kind::Restock { qty: *qty, expect });
            }
            (Op::SetPrice { item, cost }, ret) => {
                let definite = match ret {
                    None => false,
                    Some(Ret::PriceSet) => true,
                    Some(_) => return Err(malformed(history, index)),
                };
                push(
                    *item,
                    Kind::SetPrice {
                        cost: *cost,
                        definite,
                    },
                );
            }
            (Op::Lookup { item }, Some(Ret::Book(book))) => {
                if book.id != *item {
                    return Err(Violation::new(
                        FRESH_READS,
                        format!("{} answered another book", describe(history, index)),
                    ));
                }
                push(*item, Kind::Read(state_of(book)));
            }
            (Op::Search { topic }, Some(Ret::Books(books))) => {
                for book in books {
                    if &book.topic != topic || !initial.contains_key(&book.id) {
                        return Err(Violation::new(
                            FRESH_READS,
                            format!(
                                "{} lists book {} of topic {:?}, which the catalog does not \
                                 hold under that topic",
                                describe(history, index),
                                book.id,
                                book.topic
                            ),
                        ));
                    }
                    push(book.id, Kind::Read(state_of(book)));
                }
            }
            // Reads without a definite answer change nothing; order reads
            // are checked by `check_order_reads`.
            (Op::Lookup { .. } | Op::Search { .. } | Op::ReadOrder { .. }, _) => {}
        }
    }
    per_item.retain(|item, _| initial.contains_key(item));
    Ok(per_item)
}

fn state_of(book: &Book) -> ItemState {
    ItemState {
        stock: book.count,
        cost: book.cost,
    }
}

fn malformed(history: &History, index: usize) -> Violation {
    Violation::new(
        WELL_FORMED,
        format!(
            "{} has an answer that does not fit it",
            describe(history, index)
        ),
    )
}

struct Search {
    item: ItemId,
    /// Sorted by invocation.
    ops: Vec<FreshOp>,
    restock_on_empty: Option<u64>,
    goal: ItemState,
    budget: usize,
}

/// Every operation on an item, reads included (see `search.rs`).
impl Ops for Search {
    type State = ItemState;

    fn len(&self) -> usize {
        self.ops.len()
    }

    fn invoked(&self, k: usize) -> u64 {
        self.ops[k].invoked
    }

    fn completed(&self, k: usize) -> u64 {
        self.ops[k].completed
    }

    fn is_definite(&self, k: usize) -> bool {
        self.ops[k].is_definite()
    }

    fn is_read(&self, k: usize) -> bool {
        self.ops[k].is_read()
    }

    fn step(&self, k: usize, state: ItemState) -> Option<ItemState> {
        self.ops[k].step(state, self.restock_on_empty)
    }
}

impl Search {
    fn run(&self, history: &History, start: ItemState) -> Result<(), Violation> {
        match search::search(self, start, |state| state == self.goal, self.budget) {
            Ok(_) => Ok(()),
            Err(Stop::Exhausted) => Err(Violation::new(
                INCONCLUSIVE,
                format!(
                    "item {}: {} operations, more than {} states explored without an \
                     answer",
                    self.item,
                    self.ops.len(),
                    self.budget
                ),
            )),
            Err(Stop::None {
                deepest,
                state,
                stuck,
            }) => Err(self.no_linearization(history, &deepest, state, &stuck)),
        }
    }

    /// The report of a failed search: the longest order that fit, and the
    /// definite operations none of which could extend it.
    fn no_linearization(
        &self,
        history: &History,
        deepest: &[usize],
        state: ItemState,
        stuck: &[usize],
    ) -> Violation {
        let stuck: Vec<String> = stuck
            .iter()
            .map(|&k| describe(history, self.ops[k].event))
            .collect();
        let tail: Vec<String> = deepest
            .iter()
            .rev()
            .take(6)
            .rev()
            .map(|&k| format!("#{}", self.ops[k].event))
            .collect();
        Violation::new(
            FRESH_READS,
            format!(
                "item {}: no order of its {} operations (reads included) gives every answer \
                 and ends at the final state {:?}; the longest order that fits has {} \
                 operations, ending [.. {}] at {:?}; then none of these fits: {}",
                self.item,
                self.ops.len(),
                self.goal,
                deepest.len(),
                tail.join(" "),
                state,
                if stuck.is_empty() {
                    "(only indeterminate operations are left)".to_string()
                } else {
                    stuck.join("; ")
                },
            ),
        )
    }
}

/// Order reads: each finds its order, with the item and quantity of the
/// buy that was told its id, once that buy was acknowledged (or another
/// read found the order) before the read was invoked.
pub fn check_order_reads(history: &History) -> Result<(), Violation> {
    // order id -> (item, qty, acknowledged at)
    let mut acked: BTreeMap<OrderId, (ItemId, u64, u64)> = BTreeMap::new();
    for event in history.events() {
        if let (Op::Buy { item, qty, .. }, Some((at, Ret::Bought { order_id, .. }))) =
            (&event.op, event.answer())
        {
            acked.insert(*order_id, (*item, *qty, at));
        }
    }
    // order id -> earliest completion of a read that found it
    let mut found: BTreeMap<OrderId, u64> = BTreeMap::new();
    for event in history.events() {
        if let (Op::ReadOrder { id }, Some((at, Ret::Order { .. }))) = (&event.op, event.answer()) {
            let first = found.entry(*id).or_insert(at);
            *first = (*first).min(at);
        }
    }
    let mut missing: BTreeSet<OrderId> = BTreeSet::new();
    for (index, event) in history.events().iter().enumerate() {
        let (Op::ReadOrder { id }, Some((_, ret))) = (&event.op, event.answer()) else {
            continue;
        };
        let known = acked.get(id);
        match ret {
            Ret::Order { item, qty } => match known {
                Some((i, q, _)) if (i, q) == (item, qty) => {}
                Some((i, q, _)) => {
                    return Err(Violation::new(
                        ORDER_READS,
                        format!(
                            "{} found order {id} for {qty} of item {item}, but its buy was \
                             for {q} of item {i}",
                            describe(history, index)
                        ),
                    ))
                }
                None => {
                    return Err(Violation::new(
                        ORDER_READS,
                        format!(
                            "{} found order {id}, which no acknowledged buy created",
                            describe(history, index)
                        ),
                    ))
                }
            },
            Ret::NotFound => {
                let since = [known.map(|k| k.2), found.get(id).copied()]
                    .into_iter()
                    .flatten()
                    .min();
                if since.is_some_and(|at| at < event.invoked) && missing.insert(*id) {
                    return Err(Violation::new(
                        ORDER_READS,
                        format!(
                            "{} did not find order {id}, acknowledged or found before it was \
                             invoked",
                            describe(history, index)
                        ),
                    ));
                }
            }
            _ => return Err(malformed(history, index)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::history::ClientId;

    const ITEM: ItemId = 1;

    fn book(count: u64, cost: u64) -> Book {
        Book {
            id: ITEM,
            title: "b".into(),
            cost,
            count,
            topic: "t".into(),
        }
    }

    fn state(stock: u64, cost: u64) -> ItemState {
        ItemState { stock, cost }
    }

    struct H(History);

    impl H {
        fn new() -> Self {
            H(History::new())
        }
        fn op(&mut self, client: ClientId, op: Op, span: (u64, u64), ret: Option<Ret>) {
            let i = self.0.invoke(client, op, span.0);
            if let Some(ret) = ret {
                self.0.complete(i, span.1, ret).unwrap();
            }
        }
        fn buy(&mut self, key: &str, span: (u64, u64), ret: Option<Ret>) {
            let op = Op::Buy {
                item: ITEM,
                qty: 1,
                key: key.into(),
            };
            self.op(0, op, span, ret);
        }
        fn bought(&mut self, key: &str, span: (u64, u64), remaining: u64) {
            let order_id = self.0.len() as u64;
            self.buy(
                key,
                span,
                Some(Ret::Bought {
                    order_id,
                    remaining,
                }),
            );
        }
        fn lookup(&mut self, span: (u64, u64), count: u64, cost: u64) {
            let op = Op::Lookup { item: ITEM };
            self.op(1, op, span, Some(Ret::Book(book(count, cost))));
        }
        fn search(&mut self, span: (u64, u64), count: u64, cost: u64) {
            let op = Op::Search { topic: "t".into() };
            self.op(2, op, span, Some(Ret::Books(vec![book(count, cost)])));
        }
        fn check(&self, end: ItemState) -> Result<(), Violation> {
            let initial = BTreeMap::from([(ITEM, state(10, 5))]);
            let finals = BTreeMap::from([(ITEM, end)]);
            check_fresh_reads(&self.0, &initial, &finals, Some(10))
        }
    }

    #[test]
    fn reads_of_the_current_state_pass() {
        let mut h = H::new();
        h.lookup((0, 1), 10, 5);
        h.bought("a", (2, 3), 9);
        h.search((4, 5), 9, 5);
        h.lookup((6, 7), 9, 5);
        assert!(h.check(state(9, 5)).is_ok());
    }

    #[test]
    fn a_read_concurrent_with_a_write_may_show_either_state() {
        for seen in [10, 9] {
            let mut h = H::new();
            h.bought("a", (2, 6), 9);
            h.lookup((3, 5), seen, 5);
            assert!(h.check(state(9, 5)).is_ok(), "saw {seen}");
        }
    }

    #[test]
    fn a_read_missing_a_write_acknowledged_before_it_was_sent_is_caught() {
        let mut h = H::new();
        h.bought("a", (0, 1), 9);
        h.bought("b", (2, 3), 8);
        h.lookup((4, 5), 9, 5);
        let v = h.check(state(8, 5)).unwrap_err();
        assert_eq!(v.invariant, FRESH_READS, "{v}");
    }

    #[test]
    fn a_read_older_than_an_earlier_reads_answer_is_caught() {
        // The buy is never answered, but a read showed it: a later read
        // must show it too.
        let mut h = H::new();
        h.buy("a", (0, 0), None);
        h.lookup((2, 3), 9, 5);
        h.search((4, 5), 10, 5);
        let v = h.check(state(9, 5)).unwrap_err();
        assert_eq!(v.invariant, FRESH_READS, "{v}");
    }

    #[test]
    fn a_stale_price_is_caught_and_a_fresh_one_passes() {
        let mut h = H::new();
        let set = Op::SetPrice {
            item: ITEM,
            cost: 1001,
        };
        h.op(0, set, (0, 1), Some(Ret::PriceSet));
        h.lookup((2, 3), 10, 1001);
        assert!(h.check(state(10, 1001)).is_ok());
        h.search((4, 5), 10, 5);
        let v = h.check(state(10, 1001)).unwrap_err();
        assert_eq!(v.invariant, FRESH_READS, "{v}");
    }

    #[test]
    fn an_indeterminate_write_is_placed_where_the_reads_need_it() {
        let mut h = H::new();
        let restock = Op::Restock { item: ITEM, qty: 3 };
        h.op(0, restock, (0, 0), Some(Ret::Failed("lost".into())));
        h.lookup((1, 2), 10, 5);
        h.lookup((5, 6), 13, 5);
        h.lookup((7, 8), 13, 5);
        assert!(h.check(state(13, 5)).is_ok());
        let v = h.check(state(10, 5)).unwrap_err();
        assert_eq!(v.invariant, FRESH_READS, "the final state pins it: {v}");
    }

    #[test]
    fn many_reads_cost_no_search() {
        // A long history of reads and writes of one item, four clients
        // overlapping: reads are linearized greedily, so a tiny budget is
        // enough.
        let mut h = H::new();
        let mut stock = 10;
        let mut t = 0;
        for i in 0..300 {
            if i % 5 == 0 && stock > 0 {
                stock -= 1;
                h.bought(&format!("k{i}"), (t, t + 3), stock);
            } else {
                h.lookup((t + 1, t + 2), stock, 5);
            }
            t += 4;
        }
        let initial = BTreeMap::from([(ITEM, state(10, 5))]);
        let finals = BTreeMap::from([(ITEM, state(stock, 5))]);
        assert!(check_fresh_reads_within(&h.0, &initial, &finals, Some(10), 400).is_ok());
    }

    #[test]
    fn an_exhausted_budget_is_inconclusive_not_a_pass() {
        let mut h = H::new();
        for i in 0..8 {
            h.buy(&format!("k{i}"), (0, 100), Some(Ret::Failed("lost".into())));
        }
        h.lookup((200, 201), 99, 5);
        let initial = BTreeMap::from([(ITEM, state(10, 5))]);
        let finals = BTreeMap::from([(ITEM, state(10, 5))]);
        let v = check_fresh_reads_within(&h.0, &initial, &finals, Some(10), 20).unwrap_err();
        assert_eq!(v.invariant, INCONCLUSIVE, "{v}");
    }

    #[test]
    fn an_order_read_after_its_buy_was_acknowledged_must_find_it() {
        let mut h = H::new();
        h.bought("a", (0, 1), 9);
        let id = 0;
        h.op(
            1,
            Op::ReadOrder { id },
            (2, 3),
            Some(Ret::Order { item: ITEM, qty: 1 }),
        );
        assert!(check_order_reads(&h.0).is_ok());
        h.op(1, Op::ReadOrder { id }, (4, 5), Some(Ret::NotFound));
        let v = check_order_reads(&h.0).unwrap_err();
        assert_eq!(v.invariant, ORDER_READS, "{v}");
    }

    #[test]
    fn an_order_read_showing_another_item_is_caught() {
        let mut h = H::new();
        h.bought("a", (0, 1), 9);
        h.op(
            1,
            Op::ReadOrder { id: 0 },
            (2, 3),
            Some(Ret::Order { item: 7, qty: 1 }),
        );
        let v = check_order_reads(&h.0).unwrap_err();
        assert_eq!(v.invariant, ORDER_READS, "{v}");
    }
}
