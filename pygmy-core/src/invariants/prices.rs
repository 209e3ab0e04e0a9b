//! Prices as a register: the check behind "no read of a write later lost"
//! for price changes.
//!
//! Every price change in a simulated run writes a cost no other write uses,
//! so a cost seen anywhere names the write that produced it (or the book's
//! initial cost). Per item:
//!
//! - every cost a read returned, and every replica's final cost, is the
//!   initial cost or the cost some invoked price change wrote;
//! - the final cost comes from a write `f` that no *acknowledged* write
//!   follows in real time (began after `f` completed); and it is the initial
//!   cost only if no write was acknowledged — otherwise an acknowledged
//!   write was lost;
//! - a read that saw a write `w` which began after `f` completed means `w`
//!   took effect and was then lost.

use super::history::{History, Op, Ret};
use super::Violation;
use crate::types::{Book, ItemId};
use std::collections::BTreeMap;

/// The invariant's name, as reported.
pub const PRICES: &str = "price changes are not lost";

/// One price change: its cost and real-time interval (`end` is `None` when
/// it never got a definite answer).
struct Write {
    index: usize,
    invoked: u64,
    end: Option<u64>,
}

/// Checks price reads and the final prices against the history.
/// `initial` gives each item's starting cost; `finals` the books each
/// catalog replica ended with.
pub fn check_prices(
    history: &History,
    initial: &BTreeMap<ItemId, u64>,
    finals: &[(String, Vec<Book>)],
) -> Result<(), Violation> {
    // item -> cost -> the write that set it.
    let mut writes: BTreeMap<ItemId, BTreeMap<u64, Write>> = BTreeMap::new();
    for (index, event) in history.events().iter().enumerate() {
        if let Op::SetPrice { item, cost } = &event.op {
            if event.answer().is_some_and(|(_, r)| *r == Ret::NotFound) {
                continue;
            }
            let write = Write {
                index,
                invoked: event.invoked,
                end: event.answer().map(|(at, _)| at),
            };
            if writes
                .entry(*item)
                .or_default()
                .insert(*cost, write)
                .is_some()
            {
                return Err(Violation::new(
                    PRICES,
                    format!("two price changes of item {item} write cost {cost}"),
                ));
            }
        }
    }
    let explain = |item: ItemId, cost: u64, seen_by: &str| -> Result<Option<&Write>, Violation> {
        if let Some(w) = writes.get(&item).and_then(|w| w.get(&cost)) {
            return Ok(Some(w));
        }
        if initial.get(&item) == Some(&cost) {
            return Ok(None);
        }
        Err(Violation::new(
            PRICES,
            format!("{seen_by} shows item {item} at cost {cost}, which no write ever set"),
        ))
    };
    // Every read shows a cost some write (or the start) produced.
    let mut seen: Vec<(ItemId, u64, usize)> = Vec::new();
    for (index, event) in history.events().iter().enumerate() {
        let books: Vec<&Book> = match event.answer() {
            Some((_, Ret::Book(b))) => vec![b],
            Some((_, Ret::Books(bs))) => bs.iter().collect(),
            _ => continue,
        };
        for b in books {
            explain(b.id, b.cost, &format!("event #{index} ({event})"))?;
            seen.push((b.id, b.cost, index));
        }
    }
    for (node, books) in finals {
        for b in books {
            let last = explain(b.id, b.cost, &format!("replica {node}"))?;
            let item_writes = writes.get(&b.id);
            let acked = || {
                item_writes
                    .into_iter()
                    .flat_map(|w| w.values())
                    .filter(|w| w.end.is_some())
            };
            match last {
                None => {
                    if let Some(w) = acked().next() {
                        return Err(Violation::new(
                            PRICES,
                            format!(
                                "replica {node} ends with item {}'s initial cost {}, losing the acknowledged price change #{}",
                                b.id, b.cost, w.index
                            ),
                        ));
                    }
                }
                Some(f) => {
                    if let (Some(f_end), Some(w)) = (
                        f.end,
                        acked().find(|w| w.invoked > f.end.unwrap_or(u64::MAX)),
                    ) {
                        return Err(Violation::new(
                            PRICES,
                            format!(
                                "replica {node} ends with item {} at cost {} (price change #{}, done at {f_end}), \
                                 but price change #{} began after it and was acknowledged: it was lost",
                                b.id, b.cost, f.index, w.index
                            ),
                        ));
                    }
                    // A read saw a write that began after the final one
                    // completed: that write was lost.
                    if let Some(f_end) = f.end {
                        for (item, cost, index) in &seen {
                            let Some(w) = writes.get(item).and_then(|w| w.get(cost)) else {
                                continue;
                            };
                            if *item == b.id && w.invoked > f_end {
                                return Err(Violation::new(
                                    PRICES,
                                    format!(
                                        "event #{index} read item {item} at cost {cost} (price change #{}), \
                                         which began after the final price change #{} ended: it was lost",
                                        w.index, f.index
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(id: ItemId, cost: u64) -> Book {
        Book {
            id,
            title: format!("book {id}"),
            cost,
            count: 5,
            topic: "t".into(),
        }
    }

    fn initial() -> BTreeMap<ItemId, u64> {
        BTreeMap::from([(1, 10)])
    }

    /// An invocation time, the operation, and its completion if any.
    type Step = (u64, Op, Option<(u64, Ret)>);

    fn history(ops: &[Step]) -> History {
        let mut h = History::new();
        for (at, op, done) in ops {
            let i = h.invoke(0, op.clone(), *at);
            if let Some((end, ret)) = done {
                h.complete(i, *end, ret.clone()).unwrap();
            }
        }
        h
    }

    fn set(cost: u64) -> Op {
        Op::SetPrice { item: 1, cost }
    }

    fn finals(cost: u64) -> Vec<(String, Vec<Book>)> {
        vec![("catalog-1".into(), vec![book(1, cost)])]
    }

    #[test]
    fn last_acknowledged_price_wins() {
        let h = history(&[
            (1, set(1001), Some((2, Ret::PriceSet))),
            (3, set(1002), Some((4, Ret::PriceSet))),
            (
                5,
                Op::Lookup { item: 1 },
                Some((6, Ret::Book(book(1, 1002)))),
            ),
        ]);
        assert!(check_prices(&h, &initial(), &finals(1002)).is_ok());
    }

    #[test]
    fn overlapping_writes_may_end_either_way() {
        let h = history(&[
            (1, set(1001), Some((5, Ret::PriceSet))),
            (2, set(1002), Some((4, Ret::PriceSet))),
        ]);
        assert!(check_prices(&h, &initial(), &finals(1001)).is_ok());
        assert!(check_prices(&h, &initial(), &finals(1002)).is_ok());
    }

    #[test]
    fn an_indeterminate_write_may_or_may_not_land() {
        let h = history(&[(1, set(1001), Some((2, Ret::Failed("timeout".into()))))]);
        assert!(check_prices(&h, &initial(), &finals(1001)).is_ok());
        assert!(check_prices(&h, &initial(), &finals(10)).is_ok());
    }

    #[test]
    fn a_lost_acknowledged_write_is_caught() {
        let h = history(&[
            (1, set(1001), Some((2, Ret::PriceSet))),
            (3, set(1002), Some((4, Ret::PriceSet))),
        ]);
        assert!(check_prices(&h, &initial(), &finals(1001)).is_err());
        assert!(check_prices(&h, &initial(), &finals(10)).is_err());
    }

    #[test]
    fn a_read_of_a_write_later_lost_is_caught() {
        // 1002 was read (it took effect), began after 1001 ended, yet the
        // replicas end at 1001.
        let h = history(&[
            (1, set(1001), Some((2, Ret::PriceSet))),
            (3, set(1002), Some((4, Ret::Failed("lost reply".into())))),
            (
                5,
                Op::Lookup { item: 1 },
                Some((6, Ret::Book(book(1, 1002)))),
            ),
        ]);
        let err = check_prices(&h, &initial(), &finals(1001)).unwrap_err();
        assert!(err.to_string().contains("lost"), "{err}");
    }

    #[test]
    fn a_cost_nobody_wrote_is_caught() {
        let h = history(&[(1, Op::Lookup { item: 1 }, Some((2, Ret::Book(book(1, 77)))))]);
        assert!(check_prices(&h, &initial(), &finals(10)).is_err());
    }
}
