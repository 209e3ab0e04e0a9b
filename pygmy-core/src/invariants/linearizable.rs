//! Invariant 4: **buys and restocks are linearizable per item.**
//!
//! Exact (no false alarms, no misses) within its search budget.
//!
//! //! Per item, the sequential specification is a counter of copies:
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
//! The search is Wing & Gong's, with Lowe's memoisation (`search.rs`,
//! shared with the fresh-read check): a state is the set of linearized
//! operations plus the stock. With `k` clients at most about `k`
//! operations overlap, so a history of a few hundred operations per item
//! has few states; states are capped anyway ([`DEFAULT_SEARCH_BUDGET`])
//! and an exhausted budget is reported as a violation of its own rather
//! than as a pass or a hang.
//!
//! [`check_linearizable_ending_at`] adds one more condition: the order must
//! end at the stock the catalog holds after the run. That is what the final
//! state says about indeterminate buys (did the lost-reply buy happen?), it
//! catches an acknowledged buy whose effect was later lost, and it makes the
//! linearization handed to check 5 match what really happened. It assumes
//! every write to the item went through the recorded history.
//!
//! # Reads that show lost writes (invariant 5)

use super::history::{Event, History, Op, Ret};
use super::search::{self, Ops, Stop};
use super::{Violation, WELL_FORMED};
use crate::types::{Book, ItemId};
use std::collections::BTreeMap;

/// Buys and restocks are linearizable per item.
pub const LINEARIZABLE: &str = "linearizability";
/// The linearizability search could not decide within its budget.
pub const BUDGET_EXHAUSTED: &str = "linearizability: search budget exhausted";
/// States the linearizability search may visit per item before giving up.
pub const DEFAULT_SEARCH_BUDGET: usize = 1_000_000;

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
/// linearization found (for [`check_reads_not_lost`](super::check_reads_not_lost)).
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

pub(crate) fn linearize(
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

/// The linearizability search for one item (see `search.rs`).
struct Search {
    item: ItemId,
    /// Sorted by invocation.
    ops: Vec<LinOp>,
    restock_on_empty: Option<u64>,
    /// The stock the linearization must end at, if known.
    goal: Option<u64>,
    budget: usize,
}

/// The stock counter's operations: a step applies the spec and must give
/// the recorded answer.
impl Ops for Search {
    type State = u64;

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

    fn is_read(&self, _k: usize) -> bool {
        false
    }

    fn step(&self, k: usize, stock: u64) -> Option<u64> {
        let op = &self.ops[k];
        let (after, outcome) = apply(op.effect, stock, self.restock_on_empty)?;
        op.expect.is_none_or(|e| e == outcome).then_some(after)
    }
}

impl Search {
    fn run(&self, history: &History, initial: u64) -> Result<Vec<Step>, Violation> {
        let is_goal = |stock| self.goal.is_none_or(|g| g == stock);
        match search::search(self, initial, is_goal, self.budget) {
            Ok(order) => Ok(self.steps(&order, initial)),
            Err(Stop::Exhausted) => Err(Violation::new(
                BUDGET_EXHAUSTED,
                format!(
                    "item {}: {} buys and restocks, more than {} states explored \
                     without an answer",
                    self.item,
                    self.ops.len(),
                    self.budget
                ),
            )),
            Err(Stop::None {
                deepest,
                state,
                stuck,
            }) => Err(self.no_linearization(history, initial, &deepest, state, &stuck)),
        }
    }

    fn steps(&self, order: &[(usize, u64)], initial: u64) -> Vec<Step> {
        let mut steps = vec![Step {
            stock: initial,
            event: None,
            invoked: 0,
        }];
        steps.extend(order.iter().map(|&(k, stock)| Step {
            stock,
            event: Some(self.ops[k].event),
            invoked: self.ops[k].invoked,
        }));
        steps
    }

    /// The report of a failed search: the longest prefix that fit, and the
    /// operations none of which could extend it.
    fn no_linearization(
        &self,
        history: &History,
        initial: u64,
        deepest: &[usize],
        stock: u64,
        stuck: &[usize],
    ) -> Violation {
        let prefix: Vec<String> = deepest
            .iter()
            .map(|&k| format!("#{}", self.ops[k].event))
            .collect();
        let stuck: Vec<String> = stuck
            .iter()
            .map(|&k| describe(history, self.ops[k].event))
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

pub(crate) fn describe(history: &History, index: usize) -> String {
    match history.event(index) {
        Some(event) => format!("#{index} {event}"),
        None => format!("#{index}"),
    }
}
