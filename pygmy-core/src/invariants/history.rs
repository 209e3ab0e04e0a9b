//! The history of a simulated run: what each client asked, when, and what it
//! was told.
//!
//! Clients record every operation twice: once when they invoke it
//! ([`History::invoke`], which returns the event's index) and once when they
//! get a final answer ([`History::complete`]). Times are nanoseconds of
//! simulated time, supplied by the caller, so recording never reads a clock.
//! After the run the [invariant checkers](super) decide whether the
//! history is one a correct Pygmy could have produced.
//!
//! # What an event means
//!
//! - An event whose answer is definite (anything but [`Ret::Failed`]) took
//!   effect, exactly once, at some instant between its invocation and its
//!   completion.
//! - An event answered [`Ret::Failed`], or never completed, is
//!   *indeterminate*: it may have taken effect at any instant after its
//!   invocation (even after the run's last answer, e.g. a pending buy that a
//!   new order primary finishes), or not at all. A buy whose reply was lost
//!   is the typical case.
//!
//! # One buy, one event
//!
//! A client that retries a buy under the same idempotency key is still doing
//! *one* logical buy: the server promises a single order for the key however
//! often it is sent. So the client invokes once, retries inside its own loop,
//! and completes the event once with the final answer (or `Failed` when it
//! gives up). The checkers reject a history in which two events carry the
//! same key.
//!
//! # Recording from many tasks
//!
//! [`Recorder`] is a cloneable handle on one shared history
//! (`Arc<parking_lot::Mutex<_>>`): turmoil runs every host on one thread, so
//! the lock is never contended, and an `Arc` also lets the handle cross into
//! host closures that must be `Send`.

use crate::types::{Book, ItemId, OrderId};
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

/// Which simulated client issued an operation.
pub type ClientId = usize;

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// One logical buy: every retry under `key` is part of this operation.
    Buy { item: ItemId, qty: u64, key: String },
    /// Add `qty` copies of `item`.
    Restock { item: ItemId, qty: u64 },
    /// Read one book.
    Lookup { item: ItemId },
    /// Read the books of a topic.
    Search { topic: String },
    /// Set an item's price (an admin change). Each carries a cost no other
    /// write uses, so a read's cost names the write it saw.
    SetPrice { item: ItemId, cost: u64 },
    /// Read one order by id (`GET /orders/{id}`): the id of an order some
    /// client was told about before this read was invoked.
    ReadOrder { id: OrderId },
}

impl Op {
    /// The single item the operation names (`None` for a search).
    pub fn item(&self) -> Option<ItemId> {
        match self {
            Op::Buy { item, .. }
            | Op::Restock { item, .. }
            | Op::Lookup { item }
            | Op::SetPrice { item, .. } => Some(*item),
            Op::Search { .. } | Op::ReadOrder { .. } => None,
        }
    }

    /// True for the operations that change stock (buys and restocks).
    pub fn is_write(&self) -> bool {
        matches!(self, Op::Buy { .. } | Op::Restock { .. })
    }
}

/// What a client was told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ret {
    /// The buy succeeded; `remaining` is the copies left right after it.
    Bought { order_id: OrderId, remaining: u64 },
    /// The buy was refused for lack of stock.
    OutOfStock,
    /// The restock succeeded; `count` is the stock right after it.
    Restocked { count: u64 },
    /// The price change succeeded.
    PriceSet,
    /// A lookup's answer.
    Book(Book),
    /// A search's answer.
    Books(Vec<Book>),
    /// An order read's answer: the order's item and quantity.
    Order { item: ItemId, qty: u64 },
    /// No such item.
    NotFound,
    /// No definite answer (timeout, unavailable, lost reply...). The
    /// operation is indeterminate: it may or may not have taken effect.
    Failed(String),
}

impl Ret {
    /// False only for [`Ret::Failed`].
    pub fn is_definite(&self) -> bool {
        !matches!(self, Ret::Failed(_))
    }
}

/// One operation: who asked, what, when, and what came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub client: ClientId,
    pub op: Op,
    /// Simulated time of the invocation, in nanoseconds.
    pub invoked: u64,
    /// Simulated completion time and answer; `None` if no answer ever came.
    pub completed: Option<(u64, Ret)>,
}

impl Event {
    /// The completion time and answer, if the answer is definite.
    pub fn answer(&self) -> Option<(u64, &Ret)> {
        match &self.completed {
            Some((at, ret)) if ret.is_definite() => Some((*at, ret)),
            _ => None,
        }
    }

    /// True if the operation may or may not have taken effect.
    pub fn is_indeterminate(&self) -> bool {
        self.answer().is_none()
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "client {} {:?} invoked at {}",
            self.client, self.op, self.invoked
        )?;
        match &self.completed {
            Some((at, ret)) => write!(f, ", answered {ret:?} at {at}"),
            None => f.write_str(", never answered"),
        }
    }
}

/// A misuse of [`History::complete`]: a bug in the harness, not in Pygmy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    NoSuchEvent(usize),
    AlreadyCompleted(usize),
    CompletedBeforeInvoked {
        index: usize,
        invoked: u64,
        completed: u64,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::NoSuchEvent(i) => write!(f, "no event #{i}"),
            RecordError::AlreadyCompleted(i) => write!(f, "event #{i} is already completed"),
            RecordError::CompletedBeforeInvoked {
                index,
                invoked,
                completed,
            } => write!(
                f,
                "event #{index} completed at {completed}, before its invocation at {invoked}"
            ),
        }
    }
}

impl std::error::Error for RecordError {}

/// Every event of a run, in invocation-recording order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    events: Vec<Event>,
}

impl History {
    pub fn new() -> Self {
        History::default()
    }

    /// Records an invocation at simulated time `at`; returns its index.
    pub fn invoke(&mut self, client: ClientId, op: Op, at: u64) -> usize {
        self.events.push(Event {
            client,
            op,
            invoked: at,
            completed: None,
        });
        self.events.len() - 1
    }

    /// Records the final answer of event `index`. An event completes once:
    /// a client that retries records only the answer it finally settles on.
    pub fn complete(&mut self, index: usize, at: u64, ret: Ret) -> Result<(), RecordError> {
        let event = self
            .events
            .get_mut(index)
            .ok_or(RecordError::NoSuchEvent(index))?;
        if event.completed.is_some() {
            return Err(RecordError::AlreadyCompleted(index));
        }
        if at < event.invoked {
            return Err(RecordError::CompletedBeforeInvoked {
                index,
                invoked: event.invoked,
                completed: at,
            });
        }
        event.completed = Some((at, ret));
        Ok(())
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    pub fn event(&self, index: usize) -> Option<&Event> {
        self.events.get(index)
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The events naming `item` (buys, restocks, lookups), with their indices.
    pub fn item_events(&self, item: ItemId) -> impl Iterator<Item = (usize, &Event)> + '_ {
        self.events
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.op.item() == Some(item))
    }

    /// Every item some buy, restock or lookup named.
    pub fn items(&self) -> BTreeSet<ItemId> {
        self.events.iter().filter_map(|e| e.op.item()).collect()
    }

    /// `(idempotency key, order id)` of every buy the client saw succeed: the
    /// acknowledged orders that must survive (see [`check_orders`](super::check_orders)).
    pub fn acked_orders(&self) -> Vec<(String, OrderId)> {
        self.events
            .iter()
            .filter_map(|e| match (&e.op, e.answer()) {
                (Op::Buy { key, .. }, Some((_, Ret::Bought { order_id, .. }))) => {
                    Some((key.clone(), *order_id))
                }
                _ => None,
            })
            .collect()
    }
}

/// A cloneable handle on one shared [`History`], for client tasks.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    history: Arc<Mutex<History>>,
}

impl Recorder {
    pub fn new() -> Self {
        Recorder::default()
    }

    /// See [`History::invoke`].
    pub fn invoke(&self, client: ClientId, op: Op, at: u64) -> usize {
        self.history.lock().invoke(client, op, at)
    }

    /// See [`History::complete`].
    pub fn complete(&self, index: usize, at: u64, ret: Ret) -> Result<(), RecordError> {
        self.history.lock().complete(index, at, ret)
    }

    /// The `n`-th (modulo their number) order id a client was told about
    /// so far, in recording order; `None` before the first.
    pub fn acked_order(&self, n: usize) -> Option<OrderId> {
        let history = self.history.lock();
        let ids = || {
            history.events.iter().filter_map(|e| match e.answer() {
                Some((_, Ret::Bought { order_id, .. })) => Some(*order_id),
                _ => None,
            })
        };
        let count = ids().count();
        (count > 0).then(|| ids().nth(n % count)).flatten()
    }

    /// A copy of the history so far.
    pub fn snapshot(&self) -> History {
        self.history.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buy(key: &str) -> Op {
        Op::Buy {
            item: 1,
            qty: 1,
            key: key.to_string(),
        }
    }

    #[test]
    fn an_event_completes_exactly_once_and_not_before_its_invocation() {
        let mut h = History::new();
        let i = h.invoke(0, buy("k"), 10);
        assert_eq!(
            h.complete(i, 5, Ret::OutOfStock),
            Err(RecordError::CompletedBeforeInvoked {
                index: i,
                invoked: 10,
                completed: 5
            })
        );
        assert_eq!(h.complete(i, 20, Ret::OutOfStock), Ok(()));
        assert_eq!(
            h.complete(i, 30, Ret::OutOfStock),
            Err(RecordError::AlreadyCompleted(i))
        );
        assert_eq!(
            h.complete(7, 30, Ret::OutOfStock),
            Err(RecordError::NoSuchEvent(7))
        );
        assert_eq!(h.events()[i].completed, Some((20, Ret::OutOfStock)));
    }

    #[test]
    fn failed_and_unanswered_events_are_indeterminate() {
        let mut h = History::new();
        let failed = h.invoke(0, buy("a"), 0);
        let silent = h.invoke(1, buy("b"), 0);
        let answered = h.invoke(2, buy("c"), 0);
        h.complete(failed, 5, Ret::Failed("timeout".into()))
            .unwrap();
        h.complete(answered, 5, Ret::OutOfStock).unwrap();
        assert!(h.events()[failed].is_indeterminate());
        assert!(h.events()[silent].is_indeterminate());
        assert!(!h.events()[answered].is_indeterminate());
        assert_eq!(h.events()[answered].answer(), Some((5, &Ret::OutOfStock)));
    }

    #[test]
    fn acked_orders_are_exactly_the_buys_answered_bought() {
        let mut h = History::new();
        let a = h.invoke(0, buy("a"), 0);
        let b = h.invoke(1, buy("b"), 0);
        h.invoke(2, buy("c"), 0);
        let r = h.invoke(3, Op::Restock { item: 1, qty: 2 }, 0);
        h.complete(
            a,
            1,
            Ret::Bought {
                order_id: 7,
                remaining: 3,
            },
        )
        .unwrap();
        h.complete(b, 1, Ret::Failed("lost".into())).unwrap();
        h.complete(r, 1, Ret::Restocked { count: 5 }).unwrap();
        assert_eq!(h.acked_orders(), vec![("a".to_string(), 7)]);
    }

    #[test]
    fn item_view_holds_only_that_items_events() {
        let mut h = History::new();
        h.invoke(0, buy("a"), 0);
        h.invoke(0, Op::Lookup { item: 2 }, 1);
        h.invoke(0, Op::Search { topic: "t".into() }, 2);
        h.invoke(0, Op::Restock { item: 1, qty: 1 }, 3);
        let idx: Vec<usize> = h.item_events(1).map(|(i, _)| i).collect();
        assert_eq!(idx, vec![0, 3]);
        assert_eq!(h.items(), BTreeSet::from([1, 2]));
    }

    #[test]
    fn recorder_clones_share_one_history() {
        let rec = Recorder::new();
        let other = rec.clone();
        let i = rec.invoke(0, buy("a"), 0);
        other.complete(i, 4, Ret::OutOfStock).unwrap();
        let h = rec.snapshot();
        assert_eq!(h.len(), 1);
        assert_eq!(h.events()[0].completed, Some((4, Ret::OutOfStock)));
    }
}
