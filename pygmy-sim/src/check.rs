//! The invariant checkers run after every simulation (DESIGN.md,
//! "Invariants the simulation checks after every run").
//!
//! Each checker takes plain data gathered once the faults have healed and the
//! cluster is quiet, and returns `Ok` or the first [`Violation`] it finds,
//! naming the invariant and what broke it.
//!
//! 1. [`check_stock`] — **no negative stock, conservation.** Counts are
//!    `u64`, so a negative stock can only show as accounts that do not add
//!    up: `initial + restocked - count` must not underflow (more copies on
//!    the shelf than ever came in) and must equal the copies held by the
//!    orders of that item. Sound and complete for the state it is given: it
//!    is pure arithmetic on the final accounts.
//! 2. [`check_orders`] — **acknowledged orders are durable, once.** Every
//!    `(key, order id)` a client was told exists on every order replica under
//!    that key and id; no key has two orders, no id two keys; all replicas
//!    hold the same orders. Exact: each clause is a direct lookup.
//! 3. [`check_converged`] — **replicas converge.** All replicas of a group
//!    report the same commit lsn and state digest. Exact for the digests it
//!    is given (a digest collision could hide a difference, with negligible
//!    probability).
//! 4. [`check_linearizable`] — **buys are linearizable per item.** Explained
//!    below; exact (no false alarms, no misses) within its search budget.
//! 5. [`check_reads_not_lost`] — **reads never show a write that is later
//!    lost.** Explained below; it checks reads against the linearization
//!    that (4) found.
//!
//! # Linearizability (invariant 4)
//!
//! Per item, the sequential specification is a counter of copies:
//!
//! - `Buy(qty)`: if `stock >= qty`, `stock -= qty` and the answer is
//!   `Bought { remaining: stock }` (the order id is not part of the model);
//!   otherwise the answer is `OutOfStock` and, when the item was sold out
//!   (`stock == 0`) and `restock_on_empty = Some(n)`, `stock += n` (the
//!   original's rule, as the catalog keeps it; a buy of too many copies
//!   changes nothing).
//! - `Restock(qty)`: `stock += qty`, answered `Restocked { count: stock }`.
//!
//! Lookups and searches are not part of this check: a backup may serve them
//! from a slightly older committed state, which is allowed.
//!
//! A history is linearizable if some total order of its buys and restocks
//! (a) gives every definite answer the spec's answer, (b) puts an operation
//! after every operation that completed before it was invoked, and (c)
//! includes every definite operation, and any subset of the indeterminate
//! ones (an indeterminate operation has no completion, so (b) only places it
//! after its invocation). Ties in time are read leniently: only a completion
//! *strictly* before an invocation orders two operations, because turmoil's
//! clock advances in whole ticks.
//!
//! The search is Wing & Gong's, with Lowe's memoisation: a depth-first
//! search that extends a linearized prefix by one operation at a time. Only
//! *minimal* operations may come next — those invoked no later than the
//! earliest completion among the operations not yet linearized (anything
//! invoked after that completion must follow it). Operations are kept
//! sorted by invocation, so the minimal ones are a prefix of those left.
//! A state is the set of linearized operations (a bitset) plus the stock;
//! the future depends on nothing else, so a state seen once is never
//! explored again. With `k` clients at most about `k` operations overlap, so
//! a history of a few hundred operations per item has few states; states
//! are capped anyway ([`DEFAULT_SEARCH_BUDGET`]) and an exhausted budget is
//! reported as a violation of its own rather than as a pass or a hang.
//!
//! [`check_linearizable_ending_at`] adds one more condition: the order must
//! end at the stock the catalog holds after the run. That is what the final
//! state says about indeterminate buys (did the lost-reply buy happen?), it
//! catches an acknowledged buy whose effect was later lost, and it makes the
//! linearization handed to check 5 match what really happened. It assumes
//! every write to the item went through the recorded history.
//!
//! # Reads that show lost writes (invariant 5)
//!
//! A read — a lookup or a search, by any client, at any replica — must show
//! a count the item really had: a value of the stock after some prefix of
//! the linearization, reached by an operation invoked no later than the
//! read's completion (a read may be stale, but cannot see the future). A
//! read of a write that was applied somewhere but never committed, and then
//! lost in a view change, shows a count no committed order of operations
//! passes through, and fails this check.
//!
//! The check is made against the one linearization that check 4 found, so
//! it is sound but incomplete in one direction: when several orders of the
//! operations are possible and they pass through different values, a read
//! explained only by another order is reported. Definite `Bought` and
//! `Restocked` answers pin the stock after each such operation, so the
//! values can only differ around `OutOfStock` answers to buys of more than
//! one copy and around indeterminate operations; use
//! [`check_linearizable_ending_at`] to pin the latter.

use crate::history::{Event, History, Op, Ret};
use pygmy_core::unstable::state::catalog::StockLedger;
use pygmy_core::unstable::state::command::Order;
use pygmy_core::unstable::types::{Book, ItemId, OrderId};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

/// Invariant 1: no item's stock is ever negative.
pub const NO_NEGATIVE_STOCK: &str = "no negative stock";
/// Invariant 1: `initial + restocked - stock = copies in orders`.
pub const CONSERVATION: &str = "stock conservation";
/// Invariant 2: acknowledged orders exist on every replica.
pub const ORDERS_DURABLE: &str = "acknowledged orders on every replica";
/// Invariant 2: no idempotency key yields two orders.
pub const ONE_ORDER_PER_KEY: &str = "one order per idempotency key";
/// Invariant 2: no order id is used twice.
pub const UNIQUE_ORDER_IDS: &str = "unique order ids";
/// Invariant 2/3: replicas of the order group hold the same orders.
pub const ORDER_REPLICAS_AGREE: &str = "order replicas identical";
/// Invariant 3: replicas converge to one state.
pub const CONVERGED: &str = "replicas converge";
/// Invariant 4: buys and restocks are linearizable per item.
pub const LINEARIZABLE: &str = "linearizability";
/// Invariant 4 could not be decided within the search budget.
pub const BUDGET_EXHAUSTED: &str = "linearizability: search budget exhausted";
/// Invariant 4: reads never show a write that is later lost.
pub const READS_NOT_LOST: &str = "reads never show a lost write";
/// The history itself is malformed (a harness bug, not a Pygmy bug).
pub const WELL_FORMED: &str = "well-formed history";

/// States the linearizability search may visit per item before giving up.
pub const DEFAULT_SEARCH_BUDGET: usize = 1_000_000;

/// A broken invariant: which one, and what broke it.
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

// ---------------------------------------------------------------------------
// 1. Stock

/// Invariant 1 on the final catalog: `books` (the catalog's books), the
/// stock accounts of each item and the orders of the order group. Every book
/// has exactly one ledger showing its count; for every item `initial +
/// restocked - count` does not underflow and equals the copies ordered.
/// Call it once the cluster is quiet: a buy still pending in the order group
/// holds copies in the catalog that no order shows yet.
pub fn check_stock(
    books: &[Book],
    ledgers: &[(ItemId, StockLedger)],
    orders: &[Order],
) -> Result<(), Violation> {
    let mut ledger_of = BTreeMap::new();
    for (item, ledger) in ledgers {
        if ledger_of.insert(*item, *ledger).is_some() {
            return Err(Violation::new(
                CONSERVATION,
                format!("item {item} has two stock ledgers"),
            ));
        }
    }
    let mut booked = BTreeSet::new();
    for book in books {
        booked.insert(book.id);
        match ledger_of.get(&book.id) {
            None => {
                return Err(Violation::new(
                    CONSERVATION,
                    format!("book {} has no stock ledger", book.id),
                ))
            }
            Some(ledger) if ledger.count != book.count => {
                return Err(Violation::new(
                    CONSERVATION,
                    format!(
                        "book {} shows {} copies but its ledger counts {}",
                        book.id, book.count, ledger.count
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(item) = ledger_of.keys().find(|item| !booked.contains(*item)) {
        return Err(Violation::new(
            CONSERVATION,
            format!("item {item} has a stock ledger but no book"),
        ));
    }

    let mut ordered: BTreeMap<ItemId, u64> = BTreeMap::new();
    for order in orders {
        if !ledger_of.contains_key(&order.item_id) {
            return Err(Violation::new(
                CONSERVATION,
                format!(
                    "order {} is for item {}, which the catalog does not have",
                    order.id, order.item_id
                ),
            ));
        }
        let sum = ordered.entry(order.item_id).or_default();
        *sum = sum.checked_add(order.qty).ok_or_else(|| {
            Violation::new(
                CONSERVATION,
                format!("the orders of item {} overflow a u64", order.item_id),
            )
        })?;
    }

    for (item, ledger) in &ledger_of {
        let supplied = ledger
            .initial
            .checked_add(ledger.restocked)
            .ok_or_else(|| {
                Violation::new(
                    CONSERVATION,
                    format!("item {item}: initial + restocked overflows a u64: {ledger:?}"),
                )
            })?;
        let taken = supplied.checked_sub(ledger.count).ok_or_else(|| {
            Violation::new(
                NO_NEGATIVE_STOCK,
                format!(
                    "item {item}: {} copies on the shelf but only {} initial + {} restocked \
                     ever came in (the stock went below zero somewhere)",
                    ledger.count, ledger.initial, ledger.restocked
                ),
            )
        })?;
        let in_orders = ordered.get(item).copied().unwrap_or(0);
        if taken != in_orders {
            return Err(Violation::new(
                CONSERVATION,
                format!(
                    "item {item}: {} initial + {} restocked - {} on the shelf = {taken} copies \
                     taken, but the orders hold {in_orders}",
                    ledger.initial, ledger.restocked, ledger.count
                ),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 2. Orders

/// Invariant 2: `acked` are the `(idempotency key, order id)` pairs clients
/// were told (see [`History::acked_orders`]); `replicas` the orders each
/// live order replica holds after healing, by replica name.
pub fn check_orders(
    acked: &[(String, OrderId)],
    replicas: &[(String, Vec<Order>)],
) -> Result<(), Violation> {
    // What the clients were told must be consistent on its own.
    let mut id_of_key: BTreeMap<&str, OrderId> = BTreeMap::new();
    let mut key_of_id: BTreeMap<OrderId, &str> = BTreeMap::new();
    for (key, id) in acked {
        if let Some(other) = id_of_key.insert(key, *id).filter(|other| other != id) {
            return Err(Violation::new(
                ONE_ORDER_PER_KEY,
                format!("key {key:?} was acknowledged as order {other} and as order {id}"),
            ));
        }
        if let Some(other) = key_of_id.insert(*id, key).filter(|other| other != key) {
            return Err(Violation::new(
                UNIQUE_ORDER_IDS,
                format!("order {id} was acknowledged for keys {other:?} and {key:?}"),
            ));
        }
    }
    if replicas.is_empty() && !acked.is_empty() {
        return Err(Violation::new(
            ORDERS_DURABLE,
            format!(
                "no order replica was given to hold the {} acknowledged orders",
                acked.len()
            ),
        ));
    }

    let mut by_replica = Vec::with_capacity(replicas.len());
    for (name, orders) in replicas {
        let mut by_id: BTreeMap<OrderId, &Order> = BTreeMap::new();
        let mut by_key: BTreeMap<&str, &Order> = BTreeMap::new();
        for order in orders {
            if by_id.insert(order.id, order).is_some() {
                return Err(Violation::new(
                    UNIQUE_ORDER_IDS,
                    format!("replica {name} holds order id {} twice", order.id),
                ));
            }
            if let Some(first) = by_key.insert(&order.request, order) {
                return Err(Violation::new(
                    ONE_ORDER_PER_KEY,
                    format!(
                        "replica {name}: key {:?} yields orders {} and {}",
                        order.request, first.id, order.id
                    ),
                ));
            }
        }
        for (key, id) in acked {
            match by_key.get(key.as_str()) {
                None => {
                    return Err(Violation::new(
                        ORDERS_DURABLE,
                        format!(
                            "acknowledged order {id} (key {key:?}) is missing on replica {name}"
                        ),
                    ))
                }
                Some(order) if order.id != *id => {
                    return Err(Violation::new(
                        ORDERS_DURABLE,
                        format!(
                            "replica {name} holds key {key:?} as order {}, but the client was \
                             told order {id}",
                            order.id
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        by_replica.push((name, by_id));
    }

    // Compared as maps by id: the order a replica lists them in is not state.
    if let Some(((first_name, first), rest)) = by_replica.split_first() {
        for (name, orders) in rest {
            let ids: BTreeSet<OrderId> = first.keys().chain(orders.keys()).copied().collect();
            if let Some(id) = ids.into_iter().find(|id| first.get(id) != orders.get(id)) {
                return Err(Violation::new(
                    ORDER_REPLICAS_AGREE,
                    format!(
                        "order {id}: replica {first_name} has {:?}, replica {name} has {:?}",
                        first.get(&id),
                        orders.get(&id)
                    ),
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 3. Convergence

/// Invariant 3: `(replica name, commit lsn, state digest)` of every replica
/// of one group, after healing. All must be equal.
pub fn check_converged(digests: &[(String, u64, u64)]) -> Result<(), Violation> {
    let Some(((first, lsn0, digest0), rest)) = digests.split_first() else {
        return Ok(());
    };
    for (name, lsn, digest) in rest {
        if (lsn, digest) != (lsn0, digest0) {
            return Err(Violation::new(
                CONVERGED,
                format!(
                    "{first} committed lsn {lsn0} with digest {digest0:#018x}, \
                     {name} committed lsn {lsn} with digest {digest:#018x}"
                ),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 4. Linearizability

/// The linearization found by [`check_linearizable`]: for every item of
/// `initial_stock`, the stock after each operation, in linearization order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Linearization {
    pub per_item: BTreeMap<ItemId, Vec<Step>>,
}

/// One point of a linearization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// The stock right after this step.
    pub stock: u64,
    /// The history event applied here; `None` for the initial stock.
    pub event: Option<usize>,
    /// When that event was invoked (0 for the initial stock).
    pub invoked: u64,
}

impl Linearization {
    /// The stock values `item` passes through, in order.
    pub fn stock_values(&self, item: ItemId) -> Vec<u64> {
        self.per_item
            .get(&item)
            .map(|steps| steps.iter().map(|s| s.stock).collect())
            .unwrap_or_default()
    }
}

/// Invariant 4: is every item's sequence of buys and restocks linearizable
/// against the stock counter spec (see the module docs)? `initial_stock` is
/// every book's stock before the run; an item missing from it does not
/// exist, so every definite answer about it must be `NotFound`.
/// `restock_on_empty` is the catalog's policy. On success, returns the
/// linearization found (for [`check_reads_not_lost`]).
pub fn check_linearizable(
    history: &History,
    initial_stock: &BTreeMap<ItemId, u64>,
    restock_on_empty: Option<u64>,
) -> Result<Linearization, Violation> {
    linearize(
        history,
        initial_stock,
        restock_on_empty,
        None,
        DEFAULT_SEARCH_BUDGET,
    )
}

/// [`check_linearizable`], plus: each item's linearization must end at its
/// count in `final_books` (the catalog after the run has healed and gone
/// quiet). This decides which indeterminate buys took effect and catches an
/// acknowledged write whose effect was lost. Every write to the items must
/// be in `history`.
pub fn check_linearizable_ending_at(
    history: &History,
    initial_stock: &BTreeMap<ItemId, u64>,
    restock_on_empty: Option<u64>,
    final_books: &[Book],
) -> Result<Linearization, Violation> {
    let final_stock = final_books.iter().map(|b| (b.id, b.count)).collect();
    linearize(
        history,
        initial_stock,
        restock_on_empty,
        Some(&final_stock),
        DEFAULT_SEARCH_BUDGET,
    )
}

/// What a buy or restock does to the stock.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Effect {
    Buy(u64),
    Restock(u64),
}

/// The spec's answer to an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Bought { remaining: u64 },
    OutOfStock,
    Restocked { count: u64 },
}

/// The sequential spec: the stock after `effect` and the answer it gets, or
/// `None` if it cannot apply (a restock overflowing a u64).
pub(crate) fn apply(
    effect: Effect,
    stock: u64,
    restock_on_empty: Option<u64>,
) -> Option<(u64, Outcome)> {
    match effect {
        Effect::Buy(qty) => Some(match stock.checked_sub(qty) {
            Some(remaining) => (remaining, Outcome::Bought { remaining }),
            // Too many copies asked for while some are left: nothing changes.
            None if stock > 0 => (stock, Outcome::OutOfStock),
            // As the catalog does: an overflowing restock-on-empty is skipped.
            None => (
                stock
                    .checked_add(restock_on_empty.unwrap_or(0))
                    .unwrap_or(stock),
                Outcome::OutOfStock,
            ),
        }),
        Effect::Restock(qty) => {
            let count = stock.checked_add(qty)?;
            Some((count, Outcome::Restocked { count }))
        }
    }
}

/// A buy or restock of one item, ready for the search.
#[derive(Clone, Debug)]
struct LinOp {
    event: usize,
    effect: Effect,
    /// The answer the client got; `None` when indeterminate.
    expect: Option<Outcome>,
    invoked: u64,
    /// `u64::MAX` when indeterminate: it never orders anything after it.
    completed: u64,
}

impl LinOp {
    fn is_definite(&self) -> bool {
        self.expect.is_some()
    }
}

/// A definite answer of a write, as the model sees it.
enum Answer {
    Outcome(Outcome),
    NotFound,
    Indeterminate,
}

/// Classifies the answer of a buy or restock; an answer that does not fit
/// the operation (a buy answered `Restocked`) is a malformed history.
fn answer_of(index: usize, event: &Event) -> Result<Answer, Violation> {
    let Some((_, ret)) = event.answer() else {
        return Ok(Answer::Indeterminate);
    };
    match (&event.op, ret) {
        (Op::Buy { .. }, Ret::Bought { remaining, .. }) => Ok(Answer::Outcome(Outcome::Bought {
            remaining: *remaining,
        })),
        (Op::Buy { .. }, Ret::OutOfStock) => Ok(Answer::Outcome(Outcome::OutOfStock)),
        (Op::Restock { .. }, Ret::Restocked { count }) => {
            Ok(Answer::Outcome(Outcome::Restocked { count: *count }))
        }
        (_, Ret::NotFound) => Ok(Answer::NotFound),
        _ => Err(Violation::new(
            WELL_FORMED,
            format!("event #{index} ({event}) has an answer that does not fit it"),
        )),
    }
}

/// Splits the history's writes by item, checking what needs no search.
fn ops_by_item(
    history: &History,
    initial_stock: &BTreeMap<ItemId, u64>,
) -> Result<BTreeMap<ItemId, Vec<LinOp>>, Violation> {
    let mut keys: BTreeMap<&str, usize> = BTreeMap::new();
    let mut per_item: BTreeMap<ItemId, Vec<LinOp>> = BTreeMap::new();
    for (index, event) in history.events().iter().enumerate() {
        let (item, effect) = match &event.op {
            Op::Buy { item, qty, key } => {
                if let Some(first) = keys.insert(key, index) {
                    return Err(Violation::new(
                        WELL_FORMED,
                        format!(
                            "events #{first} and #{index} are both buys with key {key:?}; \
                             retries of one buy must be recorded as one event"
                        ),
                    ));
                }
                (*item, Effect::Buy(*qty))
            }
            Op::Restock { item, qty } => (*item, Effect::Restock(*qty)),
            Op::Lookup { .. } | Op::Search { .. } | Op::SetPrice { .. } | Op::ReadOrder { .. } => {
                continue
            }
        };
        let exists = initial_stock.contains_key(&item);
        let expect = match answer_of(index, event)? {
            Answer::Indeterminate => None,
            Answer::NotFound if !exists => continue,
            Answer::Outcome(outcome) if exists => Some(outcome),
            Answer::NotFound | Answer::Outcome(_) => {
                let why = if exists {
                    "the item exists"
                } else {
                    "the item does not exist"
                };
                return Err(Violation::new(
                    LINEARIZABLE,
                    format!("event #{index} ({event}) is impossible: {why}"),
                ));
            }
        };
        if !exists {
            continue; // an indeterminate write of a missing item changes nothing
        }
        let completed = match expect {
            Some(_) => event.answer().map_or(u64::MAX, |(at, _)| at),
            None => u64::MAX,
        };
        per_item.entry(item).or_default().push(LinOp {
            event: index,
            effect,
            expect,
            invoked: event.invoked,
            completed,
        });
    }
    for ops in per_item.values_mut() {
        ops.sort_by_key(|op| (op.invoked, op.event));
    }
    Ok(per_item)
}

fn linearize(
    history: &History,
    initial_stock: &BTreeMap<ItemId, u64>,
    restock_on_empty: Option<u64>,
    final_stock: Option<&BTreeMap<ItemId, u64>>,
    budget: usize,
) -> Result<Linearization, Violation> {
    let mut ops = ops_by_item(history, initial_stock)?;
    let mut linearization = Linearization::default();
    for (&item, &initial) in initial_stock {
        let goal = match final_stock {
            None => None,
            Some(finals) => Some(*finals.get(&item).ok_or_else(|| {
                Violation::new(
                    LINEARIZABLE,
                    format!("item {item} existed before the run but not after it"),
                )
            })?),
        };
        let search = Search {
            item,
            ops: ops.remove(&item).unwrap_or_default(),
            restock_on_empty,
            goal,
            budget,
        };
        let steps = search.run(history, initial)?;
        linearization.per_item.insert(item, steps);
    }
    Ok(linearization)
}

/// A set of operations, by position in the item's sorted operation list.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Bits(Box<[u64]>);

impl Bits {
    pub fn new(len: usize) -> Self {
        Bits(vec![0; len.div_ceil(64)].into_boxed_slice())
    }
    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
}

/// One node of the depth-first search: a linearized prefix.
struct Frame {
    done: Bits,
    stock: u64,
    definite_done: usize,
    /// The operation that led here (`None` at the root).
    via: Option<usize>,
    /// `(operation, stock after it)` of the operations that may come next
    /// and get their recorded answer; tried in order.
    next: Vec<(usize, u64)>,
    tried: usize,
}

/// The linearizability search for one item.
struct Search {
    item: ItemId,
    /// Sorted by invocation.
    ops: Vec<LinOp>,
    restock_on_empty: Option<u64>,
    /// The stock the linearization must end at, if known.
    goal: Option<u64>,
    budget: usize,
}

impl Search {
    fn definite_total(&self) -> usize {
        self.ops.iter().filter(|op| op.is_definite()).count()
    }

    /// Operations not yet in `done` that may be linearized next: invoked no
    /// later than the earliest completion among the operations left.
    fn minimal<'a>(&'a self, done: &'a Bits) -> impl Iterator<Item = usize> + 'a {
        let earliest = (0..self.ops.len())
            .filter(|&k| !done.contains(k))
            .map(|k| self.ops[k].completed)
            .min()
            .unwrap_or(u64::MAX);
        (0..self.ops.len())
            .filter(move |&k| !done.contains(k))
            .take_while(move |&k| self.ops[k].invoked <= earliest)
    }

    fn frame(&self, done: Bits, stock: u64, definite_done: usize, via: Option<usize>) -> Frame {
        let mut definite = Vec::new();
        let mut indeterminate = Vec::new();
        for k in self.minimal(&done) {
            let op = &self.ops[k];
            let Some((after, outcome)) = apply(op.effect, stock, self.restock_on_empty) else {
                continue;
            };
            match op.expect {
                None => indeterminate.push((k, after)),
                Some(expected) if expected == outcome => definite.push((k, after)),
                Some(_) => {}
            }
        }
        // Definite operations first: an indeterminate one is only placed
        // where an answer needs it (or the final stock does).
        definite.extend(indeterminate);
        Frame {
            done,
            stock,
            definite_done,
            via,
            next: definite,
            tried: 0,
        }
    }

    fn is_goal(&self, frame: &Frame, definite_total: usize) -> bool {
        frame.definite_done == definite_total && self.goal.is_none_or(|g| g == frame.stock)
    }

    fn run(&self, history: &History, initial: u64) -> Result<Vec<Step>, Violation> {
        let definite_total = self.definite_total();
        let root = self.frame(Bits::new(self.ops.len()), initial, 0, None);
        let mut visited: HashSet<(Bits, u64)> = HashSet::new();
        visited.insert((root.done.clone(), initial));
        let mut stack = vec![root];
        // The longest prefix reached, for the report if there is no answer.
        let mut deepest: Vec<usize> = Vec::new();
        loop {
            let Some(top) = stack.last() else {
                return Err(self.no_linearization(history, initial, &deepest));
            };
            if self.is_goal(top, definite_total) {
                return Ok(self.steps(&stack, initial));
            }
            let Some(&(k, after)) = top.next.get(top.tried) else {
                stack.pop();
                continue;
            };
            let mut done = top.done.clone();
            done.insert(k);
            let definite_done = top.definite_done + usize::from(self.ops[k].is_definite());
            if let Some(top) = stack.last_mut() {
                top.tried += 1;
            }
            if !visited.insert((done.clone(), after)) {
                continue;
            }
            if visited.len() > self.budget {
                return Err(Violation::new(
                    BUDGET_EXHAUSTED,
                    format!(
                        "item {}: {} buys and restocks, more than {} states explored \
                         without an answer",
                        self.item,
                        self.ops.len(),
                        self.budget
                    ),
                ));
            }
            stack.push(self.frame(done, after, definite_done, Some(k)));
            if stack.len() - 1 > deepest.len() {
                deepest = stack.iter().filter_map(|f| f.via).collect();
            }
        }
    }

    fn steps(&self, stack: &[Frame], initial: u64) -> Vec<Step> {
        let mut steps = vec![Step {
            stock: initial,
            event: None,
            invoked: 0,
        }];
        steps.extend(stack.iter().filter_map(|f| {
            f.via.map(|k| Step {
                stock: f.stock,
                event: Some(self.ops[k].event),
                invoked: self.ops[k].invoked,
            })
        }));
        steps
    }

    /// The report of a failed search: the longest prefix that fit, and the
    /// operations none of which could extend it.
    fn no_linearization(&self, history: &History, initial: u64, deepest: &[usize]) -> Violation {
        let mut done = Bits::new(self.ops.len());
        let mut stock = initial;
        for &k in deepest {
            done.insert(k);
            stock = apply(self.ops[k].effect, stock, self.restock_on_empty).map_or(stock, |s| s.0);
        }
        let prefix: Vec<String> = deepest
            .iter()
            .map(|&k| format!("#{}", self.ops[k].event))
            .collect();
        let stuck: Vec<String> = self
            .minimal(&done)
            .filter(|&k| self.ops[k].is_definite())
            .take(4)
            .map(|k| describe(history, self.ops[k].event))
            .collect();
        let ending = match self.goal {
            Some(goal) => format!(" and end at the final stock {goal}"),
            None => String::new(),
        };
        Violation::new(
            LINEARIZABLE,
            format!(
                "item {}: no order of its {} buys and restocks gives every answer{ending}; \
                 the longest order that fits is [{}], from stock {initial} to {stock}; \
                 then none of these fits: {}",
                self.item,
                self.ops.len(),
                prefix.join(" "),
                if stuck.is_empty() {
                    "(only indeterminate operations are left)".to_string()
                } else {
                    stuck.join("; ")
                },
            ),
        )
    }
}

fn describe(history: &History, index: usize) -> String {
    match history.event(index) {
        Some(event) => format!("#{index} {event}"),
        None => format!("#{index}"),
    }
}

// ---------------------------------------------------------------------------
// 5. Reads

/// Invariant 4, reads: every count a lookup or search showed must be a stock
/// value of `linearization` (from [`check_linearizable`] or, better,
/// [`check_linearizable_ending_at`] on the same history) reached by an
/// operation invoked no later than the read completed. Sound but incomplete:
/// see the module docs.
pub fn check_reads_not_lost(
    history: &History,
    linearization: &Linearization,
) -> Result<(), Violation> {
    for (index, event) in history.events().iter().enumerate() {
        let Some((completed, ret)) = event.answer() else {
            continue;
        };
        let books: Vec<&Book> = match (&event.op, ret) {
            (Op::Lookup { item }, Ret::Book(book)) => {
                if book.id != *item {
                    return Err(Violation::new(
                        READS_NOT_LOST,
                        format!("event #{index} ({event}) answered another book"),
                    ));
                }
                vec![book]
            }
            (Op::Lookup { .. } | Op::Search { .. }, Ret::Books(books)) => books.iter().collect(),
            (Op::Lookup { item }, Ret::NotFound) if linearization.per_item.contains_key(item) => {
                return Err(Violation::new(
                    READS_NOT_LOST,
                    format!("event #{index} ({event}): the item exists"),
                ));
            }
            _ => continue,
        };
        for book in books {
            check_read(history, index, completed, book, linearization)?;
        }
    }
    Ok(())
}

fn check_read(
    history: &History,
    index: usize,
    completed: u64,
    book: &Book,
    linearization: &Linearization,
) -> Result<(), Violation> {
    let Some(steps) = linearization.per_item.get(&book.id) else {
        return Err(Violation::new(
            READS_NOT_LOST,
            format!(
                "{} read item {}, which the checked history does not have",
                describe(history, index),
                book.id
            ),
        ));
    };
    let reachable = |s: &&Step| s.event.is_none() || s.invoked <= completed;
    if steps
        .iter()
        .filter(reachable)
        .any(|s| s.stock == book.count)
    {
        return Ok(());
    }
    let values: BTreeSet<u64> = steps.iter().filter(reachable).map(|s| s.stock).collect();
    Err(Violation::new(
        READS_NOT_LOST,
        format!(
            "{} saw {} copies of item {}, but by then the item's stock had only been {:?} \
             in the linearization checked",
            describe(history, index),
            book.count,
            book.id,
            values
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::ClientId;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    const ITEM: ItemId = 1;

    fn stock(count: u64) -> BTreeMap<ItemId, u64> {
        BTreeMap::from([(ITEM, count)])
    }

    fn book(id: ItemId, count: u64) -> Book {
        Book {
            id,
            title: format!("book {id}"),
            cost: 10,
            count,
            topic: "t".to_string(),
        }
    }

    fn order(id: OrderId, item_id: ItemId, qty: u64, request: &str) -> Order {
        Order {
            id,
            item_id,
            title: format!("book {item_id}"),
            topic: "t".to_string(),
            qty,
            cost: 10,
            remaining: 0,
            created: 0,
            request: request.to_string(),
        }
    }

    /// A tiny script for histories: each call records one operation.
    #[derive(Default)]
    struct Script {
        history: History,
        keys: usize,
    }

    impl Script {
        fn op(&mut self, client: ClientId, op: Op, span: (u64, u64), ret: Option<Ret>) -> usize {
            let i = self.history.invoke(client, op, span.0);
            if let Some(ret) = ret {
                self.history.complete(i, span.1, ret).unwrap();
            }
            i
        }
        fn buy(&mut self, client: ClientId, span: (u64, u64), ret: Option<Ret>) -> usize {
            self.keys += 1;
            let key = format!("k{}", self.keys);
            self.op(
                client,
                Op::Buy {
                    item: ITEM,
                    qty: 1,
                    key,
                },
                span,
                ret,
            )
        }
        fn bought(&mut self, client: ClientId, span: (u64, u64), remaining: u64) -> usize {
            let order_id = self.keys as u64 + 1;
            self.buy(
                client,
                span,
                Some(Ret::Bought {
                    order_id,
                    remaining,
                }),
            )
        }
        fn lookup(&mut self, client: ClientId, span: (u64, u64), count: u64) -> usize {
            self.op(
                client,
                Op::Lookup { item: ITEM },
                span,
                Some(Ret::Book(book(ITEM, count))),
            )
        }
    }

    fn violated(result: Result<impl fmt::Debug, Violation>) -> &'static str {
        match result {
            Ok(v) => panic!("expected a violation, got {v:?}"),
            Err(v) => v.invariant,
        }
    }

    // --- 4. linearizability --------------------------------------------------

    #[test]
    fn clean_concurrent_history_is_linearizable() {
        let mut s = Script::default();
        // Three overlapping buys from 5; their answers fix the order 4, 3, 2.
        s.bought(0, (0, 50), 3);
        s.bought(1, (10, 40), 4);
        s.bought(2, (20, 60), 2);
        s.op(
            3,
            Op::Restock { item: ITEM, qty: 5 },
            (70, 80),
            Some(Ret::Restocked { count: 7 }),
        );
        s.bought(0, (90, 100), 6);
        let lin = check_linearizable(&s.history, &stock(5), None).unwrap();
        assert_eq!(lin.stock_values(ITEM), vec![5, 4, 3, 2, 7, 6]);
        assert_eq!(lin.per_item[&ITEM][1].event, Some(1));
    }

    #[test]
    fn oversell_of_the_last_copy_is_not_linearizable() {
        let mut s = Script::default();
        s.bought(0, (0, 10), 0);
        s.bought(1, (0, 10), 0);
        assert_eq!(
            violated(check_linearizable(&s.history, &stock(1), None)),
            LINEARIZABLE
        );
        // With a second copy, the same answers are still an oversell (the
        // second buy must see 0 → remaining would underflow), but one of
        // them answering 1 is fine.
        let mut s = Script::default();
        s.bought(0, (0, 10), 1);
        s.bought(1, (0, 10), 0);
        assert!(check_linearizable(&s.history, &stock(2), None).is_ok());
    }

    #[test]
    fn remaining_count_no_order_explains_is_not_linearizable() {
        let mut s = Script::default();
        s.bought(0, (0, 10), 9);
        s.bought(1, (20, 30), 7); // one copy bought, two gone
        assert_eq!(
            violated(check_linearizable(&s.history, &stock(10), None)),
            LINEARIZABLE
        );
    }

    #[test]
    fn indeterminate_buy_that_took_effect_is_accepted() {
        let mut s = Script::default();
        let lost = s.buy(0, (0, 10), Some(Ret::Failed("reply lost".into())));
        s.bought(1, (20, 30), 8); // only explained if the lost buy happened
        let lin = check_linearizable(&s.history, &stock(10), None).unwrap();
        assert_eq!(lin.stock_values(ITEM), vec![10, 9, 8]);
        assert_eq!(lin.per_item[&ITEM][1].event, Some(lost));
    }

    #[test]
    fn indeterminate_buy_that_did_not_take_effect_is_accepted() {
        let mut s = Script::default();
        s.buy(0, (0, 10), None); // never answered
        s.bought(1, (20, 30), 9);
        let lin = check_linearizable(&s.history, &stock(10), None).unwrap();
        assert_eq!(lin.stock_values(ITEM), vec![10, 9]);
    }

    #[test]
    fn indeterminate_buy_may_take_effect_after_every_answer() {
        let mut s = Script::default();
        s.buy(0, (0, 10), Some(Ret::Failed("timeout".into())));
        s.bought(1, (20, 30), 9);
        // The final stock says the lost buy was finished late, after 20..30.
        let lin =
            check_linearizable_ending_at(&s.history, &stock(10), None, &[book(ITEM, 8)]).unwrap();
        assert_eq!(lin.stock_values(ITEM), vec![10, 9, 8]);
    }

    #[test]
    fn real_time_order_violation_is_not_linearizable() {
        // A completes (remaining 8) before B is invoked, yet B leaves more
        // (9), and nothing restocks: only B-before-A explains the answers,
        // and real time forbids it. C, concurrent with both, takes the 7.
        let history = |b_span: (u64, u64)| {
            let mut s = Script::default();
            s.bought(0, (0, 10), 8);
            s.bought(1, b_span, 9);
            s.bought(2, (0, 40), 7);
            s.history
        };
        assert_eq!(
            violated(check_linearizable(&history((20, 30)), &stock(10), None)),
            LINEARIZABLE
        );
        // The same answers with B overlapping A are fine: real time is what
        // the checker caught.
        assert!(check_linearizable(&history((5, 30)), &stock(10), None).is_ok());
    }

    #[test]
    fn only_a_sold_out_item_is_restocked() {
        // Too many copies while some are left: refused, nothing changes.
        assert_eq!(
            apply(Effect::Buy(5), 3, Some(10)),
            Some((3, Outcome::OutOfStock))
        );
        assert_eq!(
            apply(Effect::Buy(5), 0, Some(10)),
            Some((10, Outcome::OutOfStock))
        );
        assert_eq!(
            apply(Effect::Buy(5), 0, None),
            Some((0, Outcome::OutOfStock))
        );
    }

    #[test]
    fn out_of_stock_buys_follow_the_restock_on_empty_rule() {
        let mut s = Script::default();
        s.buy(0, (0, 10), Some(Ret::OutOfStock));
        s.bought(0, (20, 30), 9);
        let lin = check_linearizable(&s.history, &stock(0), Some(10)).unwrap();
        assert_eq!(lin.stock_values(ITEM), vec![0, 10, 9]);
        // Without the rule, nothing can have brought the stock back.
        assert_eq!(
            violated(check_linearizable(&s.history, &stock(0), None)),
            LINEARIZABLE
        );
        // And an out-of-stock answer while copies remain is wrong.
        assert_eq!(
            violated(check_linearizable(&s.history, &stock(3), Some(10))),
            LINEARIZABLE
        );
    }

    #[test]
    fn restock_answers_must_match_the_count() {
        let mut s = Script::default();
        s.op(
            0,
            Op::Restock { item: ITEM, qty: 5 },
            (0, 10),
            Some(Ret::Restocked { count: 6 }),
        );
        assert_eq!(
            violated(check_linearizable(&s.history, &stock(0), None)),
            LINEARIZABLE
        );
        assert!(check_linearizable(&s.history, &stock(1), None).is_ok());
    }

    #[test]
    fn acknowledged_buy_lost_from_the_final_stock_is_caught() {
        let mut s = Script::default();
        s.bought(0, (0, 10), 9);
        assert_eq!(
            violated(check_linearizable_ending_at(
                &s.history,
                &stock(10),
                None,
                &[book(ITEM, 10)]
            )),
            LINEARIZABLE
        );
    }

    #[test]
    fn missing_items_only_ever_answer_not_found() {
        let mut s = Script::default();
        s.op(
            0,
            Op::Buy {
                item: 42,
                qty: 1,
                key: "x".into(),
            },
            (0, 1),
            Some(Ret::NotFound),
        );
        assert!(check_linearizable(&s.history, &stock(1), None).is_ok());
        s.op(
            0,
            Op::Buy {
                item: 42,
                qty: 1,
                key: "y".into(),
            },
            (2, 3),
            Some(Ret::OutOfStock),
        );
        assert_eq!(
            violated(check_linearizable(&s.history, &stock(1), None)),
            LINEARIZABLE
        );
        // And an existing item is never NotFound.
        let mut s = Script::default();
        s.buy(0, (0, 1), Some(Ret::NotFound));
        assert_eq!(
            violated(check_linearizable(&s.history, &stock(1), None)),
            LINEARIZABLE
        );
    }

    #[test]
    fn two_events_with_one_key_are_a_malformed_history() {
        let mut h = History::new();
        for at in [0, 10] {
            let i = h.invoke(
                0,
                Op::Buy {
                    item: ITEM,
                    qty: 1,
                    key: "same".into(),
                },
                at,
            );
            h.complete(i, at + 5, Ret::OutOfStock).unwrap();
        }
        assert_eq!(
            violated(check_linearizable(&h, &stock(0), None)),
            WELL_FORMED
        );
    }

    #[test]
    fn exhausted_search_budget_is_a_violation_not_a_hang() {
        // Twenty overlapping lost buys and one impossible answer: the search
        // must try every subset of the lost buys before it could say no.
        let mut s = Script::default();
        for c in 0..20 {
            s.buy(c, (0, 1), None);
        }
        s.bought(20, (0, 100), 1_000);
        let result = linearize(&s.history, &stock(100), None, None, 500);
        assert_eq!(violated(result), BUDGET_EXHAUSTED);
    }

    /// A history that is linearizable by construction: each client runs its
    /// operations one after another, each takes effect at a random instant
    /// inside its span, and answers come from applying the spec in that
    /// order. One in `lost_every` answers is lost (half of those operations
    /// took effect). Returns the history and the final stock.
    fn generated_history(
        seed: u64,
        clients: usize,
        per_client: usize,
        initial: u64,
        restock_on_empty: Option<u64>,
        lost_every: u32,
    ) -> (History, u64) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut planned = Vec::new();
        for client in 0..clients {
            let mut t = rng.gen_range(0..10u64);
            for j in 0..per_client {
                let invoked = t + rng.gen_range(0..=5);
                let effect_at = invoked + rng.gen_range(0..=20);
                let completed = effect_at + rng.gen_range(0..=20);
                t = completed + 1;
                let op = if rng.gen_ratio(1, 10) {
                    Op::Restock { item: ITEM, qty: 5 }
                } else {
                    Op::Buy {
                        item: ITEM,
                        qty: rng.gen_range(1..=2),
                        key: format!("c{client}-{j}"),
                    }
                };
                planned.push((effect_at, client, op, invoked, completed));
            }
        }
        planned.sort_by_key(|p| (p.0, p.1));
        let mut history = History::new();
        let mut stock = initial;
        for (_, client, op, invoked, completed) in planned {
            let lost = rng.gen_ratio(1, lost_every);
            let happened = !lost || rng.gen_bool(0.5);
            let effect = match &op {
                Op::Buy { qty, .. } => Effect::Buy(*qty),
                Op::Restock { qty, .. } => Effect::Restock(*qty),
                _ => unreachable!("only writes are generated"),
            };
            let i = history.invoke(client, op, invoked);
            let mut ret = Ret::Failed("lost".into());
            if happened {
                let (after, outcome) = apply(effect, stock, restock_on_empty).unwrap();
                stock = after;
                ret = match outcome {
                    Outcome::Bought { remaining } => Ret::Bought {
                        order_id: i as u64,
                        remaining,
                    },
                    Outcome::OutOfStock => Ret::OutOfStock,
                    Outcome::Restocked { count } => Ret::Restocked { count },
                };
            }
            if !lost {
                history.complete(i, completed, ret).unwrap();
            } else if rng.gen_bool(0.5) {
                history
                    .complete(i, completed, Ret::Failed("timeout".into()))
                    .unwrap();
            }
        }
        (history, stock)
    }

    #[test]
    fn generated_linearizable_histories_pass() {
        for seed in 0..40 {
            let (history, final_count) = generated_history(seed, 4, 15, 20, Some(10), 8);
            let lin = check_linearizable_ending_at(
                &history,
                &stock(20),
                Some(10),
                &[book(ITEM, final_count)],
            )
            .unwrap_or_else(|v| panic!("seed {seed}: {v}"));
            assert_eq!(lin.stock_values(ITEM).last(), Some(&final_count));
        }
    }

    #[test]
    fn eight_clients_by_twenty_five_buys_check_quickly() {
        // Runs in the normal suite: the WGL pruning and memoisation keep
        // this to a few thousand states (a naive search would not finish).
        for seed in 0..3 {
            let (history, final_count) = generated_history(seed, 8, 25, 100, Some(10), 20);
            assert!(check_linearizable(&history, &stock(100), Some(10)).is_ok());
            let lin = check_linearizable_ending_at(
                &history,
                &stock(100),
                Some(10),
                &[book(ITEM, final_count)],
            )
            .unwrap_or_else(|v| panic!("seed {seed}: {v}"));
            assert_eq!(lin.stock_values(ITEM).last(), Some(&final_count));
            check_reads_not_lost(&history, &lin).unwrap();
        }
    }

    // --- 5. reads ------------------------------------------------------------

    #[test]
    fn read_of_a_count_that_never_existed_is_caught() {
        let mut s = Script::default();
        s.bought(0, (0, 10), 9);
        s.lookup(1, (20, 30), 7);
        let lin = check_linearizable(&s.history, &stock(10), None).unwrap();
        assert_eq!(
            violated(check_reads_not_lost(&s.history, &lin)),
            READS_NOT_LOST
        );
    }

    #[test]
    fn read_of_an_uncommitted_write_later_lost_is_caught() {
        // The lost buy was applied at the old primary and read there (9),
        // then lost in a view change; the next buy also leaves 9, but was
        // invoked after the read had completed.
        let mut s = Script::default();
        s.buy(0, (0, 10), Some(Ret::Failed("primary crashed".into())));
        s.lookup(1, (5, 8), 9);
        s.bought(2, (20, 30), 9);
        let lin =
            check_linearizable_ending_at(&s.history, &stock(10), None, &[book(ITEM, 9)]).unwrap();
        assert_eq!(
            violated(check_reads_not_lost(&s.history, &lin)),
            READS_NOT_LOST
        );
    }

    #[test]
    fn stale_and_current_reads_of_real_counts_pass() {
        let mut s = Script::default();
        s.bought(0, (0, 10), 9);
        s.lookup(1, (20, 30), 10); // stale: a backup behind by one buy
        s.lookup(1, (40, 50), 9);
        s.lookup(2, (5, 8), 9); // concurrent with the buy
        s.op(
            3,
            Op::Search { topic: "t".into() },
            (60, 70),
            Some(Ret::Books(vec![book(ITEM, 9)])),
        );
        let lin = check_linearizable(&s.history, &stock(10), None).unwrap();
        assert_eq!(check_reads_not_lost(&s.history, &lin), Ok(()));
    }

    #[test]
    fn search_showing_a_count_that_never_existed_is_caught() {
        let mut s = Script::default();
        s.op(
            0,
            Op::Search { topic: "t".into() },
            (0, 10),
            Some(Ret::Books(vec![book(ITEM, 11)])),
        );
        let lin = check_linearizable(&s.history, &stock(10), None).unwrap();
        assert_eq!(
            violated(check_reads_not_lost(&s.history, &lin)),
            READS_NOT_LOST
        );
    }

    // --- 1. stock ------------------------------------------------------------

    fn ledger(initial: u64, restocked: u64, count: u64) -> StockLedger {
        StockLedger {
            initial,
            restocked,
            count,
        }
    }

    #[test]
    fn conserved_stock_passes() {
        let orders = [
            order(1, 1, 2, "a"),
            order(2, 1, 1, "b"),
            order(3, 2, 4, "c"),
        ];
        let books = [book(1, 12), book(2, 6)];
        let ledgers = [(1, ledger(5, 10, 12)), (2, ledger(10, 0, 6))];
        assert_eq!(check_stock(&books, &ledgers, &orders), Ok(()));
    }

    #[test]
    fn conservation_break_by_one_copy_is_caught() {
        let orders = [order(1, 1, 2, "a"), order(2, 1, 1, "b")];
        // 5 + 10 - 11 = 4 copies taken, but orders hold 3.
        let books = [book(1, 11)];
        let ledgers = [(1, ledger(5, 10, 11))];
        assert_eq!(
            violated(check_stock(&books, &ledgers, &orders)),
            CONSERVATION
        );
    }

    #[test]
    fn more_copies_than_ever_came_in_is_negative_stock() {
        let books = [book(1, 16)];
        let ledgers = [(1, ledger(5, 10, 16))];
        assert_eq!(
            violated(check_stock(&books, &ledgers, &[])),
            NO_NEGATIVE_STOCK
        );
    }

    #[test]
    fn book_count_disagreeing_with_its_ledger_is_caught() {
        let books = [book(1, 4)];
        let ledgers = [(1, ledger(5, 0, 5))];
        assert_eq!(violated(check_stock(&books, &ledgers, &[])), CONSERVATION);
    }

    // --- 2. orders -----------------------------------------------------------

    fn acked(pairs: &[(&str, OrderId)]) -> Vec<(String, OrderId)> {
        pairs.iter().map(|(k, id)| (k.to_string(), *id)).collect()
    }

    fn replicas(lists: &[(&str, Vec<Order>)]) -> Vec<(String, Vec<Order>)> {
        lists
            .iter()
            .map(|(name, orders)| (name.to_string(), orders.clone()))
            .collect()
    }

    #[test]
    fn orders_on_every_replica_pass() {
        let orders = vec![order(1, 1, 1, "a"), order(2, 3, 1, "b")];
        let mut reversed = orders.clone();
        reversed.reverse(); // listing order is not state
        let r = replicas(&[("order-1", orders), ("order-2", reversed)]);
        assert_eq!(check_orders(&acked(&[("a", 1), ("b", 2)]), &r), Ok(()));
    }

    #[test]
    fn acked_order_missing_on_one_replica_is_caught() {
        let r = replicas(&[
            ("order-1", vec![order(1, 1, 1, "a"), order(2, 1, 1, "b")]),
            ("order-2", vec![order(1, 1, 1, "a")]),
        ]);
        assert_eq!(
            violated(check_orders(&acked(&[("a", 1), ("b", 2)]), &r)),
            ORDERS_DURABLE
        );
    }

    #[test]
    fn acked_order_under_another_id_is_caught() {
        let r = replicas(&[("order-1", vec![order(5, 1, 1, "a")])]);
        assert_eq!(
            violated(check_orders(&acked(&[("a", 1)]), &r)),
            ORDERS_DURABLE
        );
    }

    #[test]
    fn duplicate_order_for_one_key_is_caught() {
        let r = replicas(&[("order-1", vec![order(1, 1, 1, "a"), order(2, 1, 1, "a")])]);
        assert_eq!(
            violated(check_orders(&acked(&[("a", 1)]), &r)),
            ONE_ORDER_PER_KEY
        );
        // Also when the clients themselves were told two ids for one key.
        assert_eq!(
            violated(check_orders(&acked(&[("a", 1), ("a", 2)]), &[])),
            ONE_ORDER_PER_KEY
        );
    }

    #[test]
    fn duplicate_order_id_is_caught() {
        let r = replicas(&[("order-1", vec![order(1, 1, 1, "a"), order(1, 1, 1, "b")])]);
        assert_eq!(violated(check_orders(&[], &r)), UNIQUE_ORDER_IDS);
    }

    #[test]
    fn replicas_that_differ_are_caught() {
        // No client saw order 2 (its answer was lost), but one replica lacks
        // it, or holds it differently.
        let a = vec![order(1, 1, 1, "a"), order(2, 1, 1, "b")];
        let missing = vec![order(1, 1, 1, "a")];
        let different = vec![order(1, 1, 1, "a"), order(2, 1, 2, "b")];
        let acks = acked(&[("a", 1)]);
        for other in [missing, different] {
            let r = replicas(&[("order-1", a.clone()), ("order-2", other)]);
            assert_eq!(violated(check_orders(&acks, &r)), ORDER_REPLICAS_AGREE);
        }
    }

    // --- 3. convergence ------------------------------------------------------

    #[test]
    fn converged_replicas_pass() {
        let d = vec![("a".to_string(), 7, 0xabc), ("b".to_string(), 7, 0xabc)];
        assert_eq!(check_converged(&d), Ok(()));
        assert_eq!(check_converged(&[]), Ok(()));
    }

    #[test]
    fn digest_mismatch_is_caught() {
        let d = vec![("a".to_string(), 7, 0xabc), ("b".to_string(), 7, 0xabd)];
        assert_eq!(violated(check_converged(&d)), CONVERGED);
        let d = vec![("a".to_string(), 7, 0xabc), ("b".to_string(), 6, 0xabc)];
        assert_eq!(violated(check_converged(&d)), CONVERGED);
    }

    #[test]
    fn violation_display_names_invariant_and_detail() {
        let v = Violation::new(CONVERGED, "a differs from b");
        assert_eq!(
            v.to_string(),
            "invariant `replicas converge` violated: a differs from b"
        );
    }
}
