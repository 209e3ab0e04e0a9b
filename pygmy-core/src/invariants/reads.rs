//! Invariant 4, reads: **no read shows a write that is later lost.**
//!
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
//! [`check_linearizable_ending_at`](super::check_linearizable_ending_at) to pin the latter.

use super::history::{History, Op, Ret};
use super::linearizable::{describe, Linearization, Step};
use super::Violation;
use crate::types::Book;
use std::collections::BTreeSet;

/// Reads never show a write that is later lost.
pub const READS_NOT_LOST: &str = "reads never show a lost write";

/// Invariant 4, reads: every count a lookup or search showed must be a stock
/// value of `linearization` (from [`check_linearizable`](super::check_linearizable) or, better,
/// [`check_linearizable_ending_at`](super::check_linearizable_ending_at) on the same history) reached by an
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
