//! Invariant 1: **no negative stock, and stock is conserved.**
//!
//! Counts are `u64`, so a negative stock can only show as accounts that do
//! not add up: `initial + restocked - count` must not underflow (more copies
//! on the shelf than ever came in) and must equal the copies held by the
//! orders of that item. Sound and complete for the state it is given: it is
//! pure arithmetic on the final accounts. Holds once no buy is pending (a
//! pending buy holds copies in the catalog that no order shows yet).

use super::Violation;
use crate::state::catalog::{Catalog, StockLedger};
use crate::state::command::Order;
use crate::state::orders::OrderLedger;
use crate::types::{Book, ItemId};
use std::collections::{BTreeMap, BTreeSet};

/// No item's stock is ever negative.
pub const NO_NEGATIVE_STOCK: &str = "no negative stock";
/// `initial + restocked - stock = copies in orders`, item by item.
pub const CONSERVATION: &str = "stock conservation";

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

/// One item's accounts across the two groups: the catalog's copies taken
/// (`initial + restocked - count`) against the copies in committed orders.
/// What `pygmy chaos` reports item by item.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ItemBalance {
    pub id: ItemId,
    pub initial: u64,
    pub restocked: u64,
    pub stock: u64,
    /// `initial + restocked - stock`; `None` if the catalog's accounts are
    /// inconsistent (stock above what ever entered: [`NO_NEGATIVE_STOCK`]).
    pub taken: Option<u64>,
    pub ordered: u64,
    pub balanced: bool,
}

/// Conservation, item by item, as a table rather than a verdict: every copy
/// that left the shelf is in exactly one committed order. Holds once no buy
/// is pending; [`check_stock`] gives the verdict on the same accounts.
pub fn balances(catalog: &Catalog, orders: &OrderLedger) -> Vec<ItemBalance> {
    let copies = orders.copies_by_item();
    catalog
        .all()
        .iter()
        .filter_map(|book| {
            let ledger = catalog.stock_ledger(book.id)?;
            let taken = ledger.reserved();
            let ordered = copies.get(&book.id).copied().unwrap_or(0);
            Some(ItemBalance {
                id: book.id,
                initial: ledger.initial,
                restocked: ledger.restocked,
                stock: ledger.count,
                taken,
                ordered,
                balanced: taken == Some(ordered),
            })
        })
        .collect()
}

/// [`check_stock`] on a catalog replica's state and an order replica's
/// ledger, as read from a running cluster.
pub fn check_stock_of(catalog: &Catalog, orders: &OrderLedger) -> Result<(), Violation> {
    let books = catalog.all();
    let ledgers: Vec<_> = books
        .iter()
        .filter_map(|b| catalog.stock_ledger(b.id).map(|l| (b.id, l)))
        .collect();
    check_stock(&books, &ledgers, &orders.orders())
}
