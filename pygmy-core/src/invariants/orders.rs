//! Invariant 2: **every acknowledged order is on every live order replica,
//! once; no idempotency key yields two orders.**
//!
//! Every `(key, order id)` a client was told exists on every order replica
//! under that key and id; no key has two orders, no id two keys; all
//! replicas hold the same orders. Exact: each clause is a direct lookup.

use super::Violation;
use crate::state::command::Order;
use crate::state::orders::OrderLedger;
use crate::types::OrderId;
use std::collections::{BTreeMap, BTreeSet};

/// Acknowledged orders exist on every replica.
pub const ORDERS_DURABLE: &str = "acknowledged orders on every replica";
/// No idempotency key yields two orders.
pub const ONE_ORDER_PER_KEY: &str = "one order per idempotency key";
/// No order id is used twice.
pub const UNIQUE_ORDER_IDS: &str = "unique order ids";
/// Replicas of the order group hold the same orders (invariants 2 and 3).
pub const ORDER_REPLICAS_AGREE: &str = "order replicas identical";

/// Invariant 2: `acked` are the `(idempotency key, order id)` pairs clients
/// were told (see [`History::acked_orders`](super::History::acked_orders)); `replicas` the orders each
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

/// The acknowledged order ids missing from each replica's ledger, as
/// `(id, replica name)`, in the order of `acked`.
pub fn missing_orders(
    acked: &[OrderId],
    replicas: &[(&str, &OrderLedger)],
) -> Vec<(OrderId, String)> {
    let mut missing = Vec::new();
    for id in acked {
        for (name, ledger) in replicas {
            if ledger.order(*id).is_none() {
                missing.push((*id, name.to_string()));
            }
        }
    }
    missing
}

/// Invariant 2 where only the acknowledged order *ids* are known (the
/// process tests and `pygmy chaos` see the HTTP answers, not the keys the
/// server used): no id was acknowledged twice, and every acknowledged id is
/// on every replica's ledger in `replicas` (by replica name).
pub fn check_order_ids(
    acked: &[OrderId],
    replicas: &[(&str, &OrderLedger)],
) -> Result<(), Violation> {
    let mut seen = BTreeSet::new();
    if let Some(id) = acked.iter().find(|id| !seen.insert(**id)) {
        return Err(Violation::new(
            UNIQUE_ORDER_IDS,
            format!("order {id} was acknowledged twice"),
        ));
    }
    match missing_orders(acked, replicas).first() {
        Some((id, name)) => Err(Violation::new(
            ORDERS_DURABLE,
            format!("order {id}, acknowledged to a client, is not on {name}"),
        )),
        None => Ok(()),
    }
}
