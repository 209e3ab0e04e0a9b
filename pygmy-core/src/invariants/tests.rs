//! Tests of the checkers on hand-made histories and states: each
//! invariant passes a correct history and names itself on a broken one.

use super::history::{ClientId, History, Op, Ret};
use super::linearizable::{apply, linearize, Effect, Outcome};
use super::*;
use crate::state::catalog::StockLedger;
use crate::state::command::Order;
use crate::types::{Book, ItemId, OrderId};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::fmt;

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
    let lin = check_linearizable_ending_at(&s.history, &stock(10), None, &[book(ITEM, 8)]).unwrap();
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
    let lin = check_linearizable_ending_at(&s.history, &stock(10), None, &[book(ITEM, 9)]).unwrap();
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
