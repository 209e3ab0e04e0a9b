//! The order ledger: where every buy stands, and the orders buys produced.
//!
//! A buy is two entries in the order group's log. `Begin` records it as
//! pending (the primary asks the catalog to reserve copies while it
//! commits, and answers only once it has); `Finish` records the catalog's
//! answer. A crash in between leaves the buy pending, and a new order
//! primary finishes every buy in [`OrderLedger::pending`] by asking the
//! catalog again with the same request id — the catalog's reservation is
//! idempotent, so the answer is the one it first gave. A crash that loses a
//! `Begin` the catalog reserved for is made good by the new primary, which
//! records the buy from the catalog's list (see `services/buy.rs`).
//!
//! Pending buys are kept in memory; finished ones go to the ledger's
//! [`Archive`] (an append-only file on a replica, see `archive.rs`), which
//! keeps only a small index in memory. The ledger's own state — pending
//! buys, the next order id and the archive's [`ArchiveMark`] — is what a
//! snapshot holds, so snapshots stay small however many orders there are.
//!
//! Like the catalog, the ledger is a deterministic state machine: replicas
//! applying the same log hold the same pending buys and archives with the
//! same mark (length, count and digest of the same bytes). As replication
//! sees it ([`StateMachine`], at the end of this file), the archive is its
//! side file: attached (and cut back to the snapshot's mark) at start,
//! synced before a snapshot, shipped from the receiver's archive end to a
//! lagging replica, and adopted by appending onto the receiver's archive —
//! only when the copy was shipped from that end (or from 0).
//!
//! # Guarantees
//!
//! - **One order per request id.** Once a buy is done its status never
//!   changes; a repeated `Begin` or `Finish` returns it unchanged.
//! - **Order ids known at `Begin`.** Each new buy takes the next id (1, 2,
//!   3, ...) when its `Begin` is applied, so the order primary can answer
//!   a buy as soon as the catalog reserved its copies: the id, the
//!   reservation and `created` are all durable by then, and the `Finish`
//!   that records the order can only record that order. A refused buy
//!   leaves its id unused; ids are unique, not dense.
//! - **Total.** Every command has an outcome; none panics. An archive I/O
//!   error poisons the archive ([`StateMachine::failure`]); the replica
//!   checks it before acknowledging anything.
//! - **Settled mark.** [`OrderLedger::settled_below`] is an lsn below which
//!   every buy's `Begin` is finished; the catalog forgets reservations
//!   below it (see `catalog.rs`).
//!
//! # Caveats
//!
//! - Finished buys are kept forever (a client may retry a buy under its
//!   request id at any time and must get its one order); on disk, with
//!   about 16 bytes per buy in memory.
//! - A clone reads the archive as it was when cloned, but only the newest
//!   ledger may apply commands (see `archive.rs`).
//! - `Finish` trusts the reservation for item, quantity and price: it is what
//!   the catalog actually took, even if a `Begin` said otherwise.

use crate::state::archive::{Archive, ArchiveMark, ArchiveOpener, Finished};
use crate::state::command::{
    BuyStatus, Command, Order, OrderCommand, Outcome, Rejection, Reservation,
};
use crate::state::{state_digest, StateMachine, Syncer, Tagged};
use crate::types::{Group, ItemId, Lsn, OrderId, RequestId};
use imbl::OrdMap;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A buy that has begun and not finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    item: ItemId,
    qty: u64,
    created: u64,
    /// The lsn of its `Begin`.
    begin: Lsn,
    /// The id its order gets if the catalog reserves its copies.
    id: OrderId,
}

/// The record a buy's `Finish` makes: an order with the id taken at its
/// `Begin` and what the catalog reserved, or the refusal.
fn finished(
    request: &str,
    pending: &Pending,
    outcome: &Result<Reservation, Rejection>,
) -> Finished {
    // An orphan `Finish` (no `Begin`, see `finish`) has asked for nothing.
    let asked = (pending.qty > 0).then_some((pending.item, pending.qty));
    let refused = |rejection: Rejection| Finished::Refused {
        request: request.to_string(),
        rejection,
        asked,
    };
    match outcome {
        Ok(_) if pending.id == OrderId::MAX => {
            refused(Rejection::Invalid("order ids exhausted".into()))
        }
        Ok(reservation) => Finished::Ordered(Order {
            id: pending.id,
            item_id: reservation.item,
            title: reservation.title.clone(),
            topic: reservation.topic.clone(),
            qty: reservation.qty,
            cost: reservation.cost,
            remaining: reservation.remaining,
            created: pending.created,
            request: request.to_string(),
        }),
        Err(rejection) => refused(rejection.clone()),
    }
}

/// Archive records carried along with a ledger: by a `Dump` (all of them)
/// and by a snapshot sent to a lagging replica (those after its archive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipped {
    /// Byte offset in the archive of the first record.
    pub from: u64,
    pub records: Vec<Finished>,
}

/// The order state machine (see the module docs).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "LedgerImage", into = "LedgerImage")]
pub struct OrderLedger {
    /// A persistent map, so a snapshot clones it in O(1).
    pending: OrdMap<RequestId, Pending>,
    /// The id the next order gets; the first is 1.
    next_id: OrderId,
    /// How far the archive goes for this ledger.
    archived: ArchiveMark,
    archive: Archive,
    /// Records to send along when serialised (see [`Shipped`]).
    shipped: Option<Arc<Shipped>>,
}

/// The serialised form of a ledger.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LedgerImage {
    pending: OrdMap<RequestId, Pending>,
    next_id: OrderId,
    archived: ArchiveMark,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shipped: Option<Arc<Shipped>>,
}

impl From<OrderLedger> for LedgerImage {
    fn from(l: OrderLedger) -> Self {
        LedgerImage {
            pending: l.pending,
            next_id: l.next_id,
            archived: l.archived,
            shipped: l.shipped,
        }
    }
}

impl TryFrom<LedgerImage> for OrderLedger {
    type Error = String;

    /// With every record shipped (a dump), the ledger is whole, on an
    /// archive in memory. Otherwise it waits to be attached to its archive
    /// ([`StateMachine::attach`] or [`StateMachine::adopt`]).
    fn try_from(image: LedgerImage) -> Result<Self, String> {
        let archive = Archive::in_memory();
        if let Some(shipped) = image.shipped.as_ref().filter(|s| s.from == 0) {
            let mark = archive.extend_from(0, &shipped.records)?;
            if mark != image.archived {
                return Err(format!(
                    "shipped records end at {mark:?}, the ledger at {:?}",
                    image.archived
                ));
            }
        }
        Ok(OrderLedger {
            pending: image.pending,
            next_id: image.next_id,
            archived: image.archived,
            archive,
            shipped: image.shipped,
        })
    }
}

/// Equal ledgers have the same pending buys, next id and archive mark (so
/// the same archived bytes, up to the digest).
impl PartialEq for OrderLedger {
    fn eq(&self, other: &Self) -> bool {
        self.pending == other.pending
            && self.next_id == other.next_id
            && self.archived == other.archived
    }
}

impl Eq for OrderLedger {}

impl Default for OrderLedger {
    fn default() -> Self {
        OrderLedger {
            pending: OrdMap::new(),
            next_id: 1,
            archived: ArchiveMark::default(),
            archive: Archive::in_memory(),
            shipped: None,
        }
    }
}

impl OrderLedger {
    /// How many buys are pending (begun, not yet finished): a figure for
    /// metrics; a new primary finishes every one of them.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// An empty ledger on an archive in memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// How far this ledger's archive goes.
    pub fn archived(&self) -> ArchiveMark {
        self.archived
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
                let pending = Pending {
                    item: *item,
                    qty: *qty,
                    created: *created,
                    begin: lsn,
                    id: self.take_id(),
                };
                self.pending.insert(request.clone(), pending);
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
        // A pending buy is not in the archive; only a buy that is not
        // pending needs the index (a repeated Finish, or one with no Begin).
        let record = match self.pending.remove(request) {
            Some(pending) => finished(request, &pending, outcome),
            None => {
                if let Some(done) = self.archive.find(self.archived, request) {
                    return BuyStatus::Done(done.into_result());
                }
                // A Finish with no Begin should not be in a log, but
                // recording it keeps the ledger total and the catalog's
                // answer known.
                let orphan = Pending {
                    item: 0,
                    qty: 0,
                    created: 0,
                    begin: 0,
                    id: if outcome.is_ok() { self.take_id() } else { 0 },
                };
                finished(request, &orphan, outcome)
            }
        };
        self.archived = self.archive.append(self.archived, &record);
        BuyStatus::Done(record.into_result())
    }

    /// The next order id. Past 2^64 - 1 ids (which cannot happen) every buy
    /// gets the last one, and `finished` refuses it, so no input panics.
    fn take_id(&mut self) -> OrderId {
        let id = self.next_id;
        self.next_id = id.saturating_add(1);
        id
    }

    /// What `Finish(request, outcome)` would record for a pending buy, or
    /// the final status of a finished one: the order primary answers with
    /// it before the `Finish` commits (see the module docs).
    pub fn outcome_of(
        &self,
        request: &str,
        outcome: &Result<Reservation, Rejection>,
    ) -> Option<BuyStatus> {
        let record = match self.pending.get(request) {
            Some(pending) => finished(request, pending, outcome),
            None => self.archive.find(self.archived, request)?,
        };
        Some(BuyStatus::Done(record.into_result()))
    }

    /// Whether `id` belongs to a buy not finished yet (its order may exist
    /// as soon as it is).
    pub fn is_pending_id(&self, id: OrderId) -> bool {
        self.pending.values().any(|p| p.id == id)
    }

    /// Pending buys: what a snapshot's size grows with.
    pub fn records(&self) -> usize {
        self.pending.len()
    }

    pub fn order(&self, id: OrderId) -> Option<Order> {
        if id >= self.next_id {
            return None;
        }
        self.archive.order(self.archived, id)
    }

    /// Every order, by id (reads the whole archive).
    pub fn orders(&self) -> Vec<Order> {
        self.finished()
            .into_iter()
            .filter_map(|r| match r {
                Finished::Ordered(order) => Some(order),
                Finished::Refused { .. } => None,
            })
            .collect()
    }

    /// Every finished buy, in the order they finished (empty if the archive
    /// cannot be read; see [`StateMachine::failure`]).
    pub fn finished(&self) -> Vec<Finished> {
        self.archive
            .records_from(self.archived, 0)
            .unwrap_or_default()
    }

    pub fn status(&self, request: &str) -> Option<BuyStatus> {
        if let Some(p) = self.pending.get(request) {
            return Some(BuyStatus::Pending {
                item: p.item,
                qty: p.qty,
                created: p.created,
            });
        }
        let done = self.archive.find(self.archived, request)?;
        Some(BuyStatus::Done(done.into_result()))
    }

    /// What buy `request` asked for — its item, and its quantity where
    /// known (a refusal recorded before refusals kept it names only the
    /// item) — or `None` for an unknown request. A request arriving again
    /// under the same id must ask for the same, or it is another request
    /// reusing the key (see `services/buy.rs`).
    pub fn asked(&self, request: &str) -> Option<(ItemId, Option<u64>)> {
        if let Some(p) = self.pending.get(request) {
            return Some((p.item, Some(p.qty)));
        }
        self.archive.find(self.archived, request)?.asked()
    }

    /// `(request, item, qty, begin)` of every buy not yet finished, by
    /// request id; `begin` is the lsn of its `Begin`.
    pub fn pending(&self) -> Vec<(RequestId, ItemId, u64, Lsn)> {
        self.pending
            .iter()
            .map(|(request, p)| (request.clone(), p.item, p.qty, p.begin))
            .collect()
    }

    /// The lsn of a pending buy's `Begin`.
    pub fn begun(&self, request: &str) -> Option<Lsn> {
        self.pending.get(request).map(|p| p.begin)
    }

    /// Every buy whose `Begin` is below the returned lsn is finished, given
    /// that `next` follows every applied entry: the lowest `Begin` still
    /// pending, or `next` when none is.
    pub fn settled_below(&self, next: Lsn) -> Lsn {
        self.pending.values().map(|p| p.begin).fold(next, Lsn::min)
    }

    /// Copies of `item` in orders. Saturates rather than overflowing: with a
    /// consistent catalog the sum is bounded by the item's `initial +
    /// restocked`, which the catalog keeps representable.
    pub fn copies_ordered(&self, item: ItemId) -> u64 {
        self.copies_by_item().get(&item).copied().unwrap_or(0)
    }

    /// [`OrderLedger::copies_ordered`] of every item, in one pass over the
    /// archive.
    pub fn copies_by_item(&self) -> std::collections::BTreeMap<ItemId, u64> {
        let mut copies = std::collections::BTreeMap::new();
        for order in self.orders() {
            let sum: &mut u64 = copies.entry(order.item_id).or_default();
            *sum = sum.saturating_add(order.qty);
        }
        copies
    }
}

/// The ledger as replication sees it (see `machine.rs`): its side file is
/// the archive of finished buys, opened by an [`ArchiveOpener`].
impl StateMachine for OrderLedger {
    type Files = ArchiveOpener;

    fn group(&self) -> Group {
        Group::Order
    }

    fn apply(&mut self, lsn: Lsn, command: &Command) -> Outcome {
        match command {
            Command::Order(cmd) => Outcome::Order(OrderLedger::apply(self, lsn, cmd)),
            Command::Catalog(_) => Outcome::WrongGroup,
        }
    }

    fn digest(&self) -> u64 {
        state_digest(Tagged::Orders(self))
    }

    fn records(&self) -> u64 {
        OrderLedger::records(self) as u64
    }

    /// Puts this ledger (loaded from a snapshot, or new) on the archive the
    /// opener gives, which is cut back to the ledger's mark and checked
    /// against it.
    fn attach(&mut self, open: &mut ArchiveOpener) -> crate::Result<Result<(), String>> {
        match Archive::open(open()?, self.archived) {
            Ok(archive) => {
                self.archive = archive;
                self.shipped = None;
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(format!("orders: {e}"))),
        }
    }

    fn failure(&self) -> Option<String> {
        self.archive.failure()
    }

    fn mark(&self) -> u64 {
        self.archived.len
    }

    /// A copy that carries its archive records from byte `from` (0: all of
    /// them; a later offset must be where a record starts, as a replica's
    /// own archive end is; one past this ledger's end ships all of them).
    fn shipping(&self, from: u64) -> Result<OrderLedger, String> {
        let from = if from > self.archived.len { 0 } else { from };
        let records = self.archive.records_from(self.archived, from)?;
        let mut copy = self.clone();
        copy.shipped = Some(Arc::new(Shipped { from, records }));
        Ok(copy)
    }

    /// Puts this ledger, received from a primary with the records after
    /// `current`'s archive (or all of them), on `current`'s archive: the
    /// records are appended and the result must end at this ledger's mark.
    /// It fits when its records start at that archive's end, or at 0 (a
    /// snapshot answer that does not is stale).
    fn adopt(&mut self, current: &OrderLedger) -> Result<bool, String> {
        let end = current.archive.mark().len;
        let Some(shipped) = self.shipped.take_if(|s| s.from == 0 || s.from == end) else {
            return Ok(false);
        };
        let mark = current
            .archive
            .extend_from(shipped.from, &shipped.records)?;
        if mark != self.archived {
            return Err(format!(
                "the adopted archive ends at {mark:?}, the primary's at {:?}",
                self.archived
            ));
        }
        self.archive = current.archive.clone();
        Ok(true)
    }

    /// Makes the archive durable up to at least this ledger's mark.
    fn syncer(&self) -> crate::Result<Option<Syncer>> {
        let sync = self.archive.syncer().map_err(crate::Error::Storage)?;
        Ok(Some(Box::new(move || {
            sync().map_err(|e| {
                crate::Error::Storage(format!("syncing the order archive failed: {e}"))
            })
        })))
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
        // The refused buy's id stays unused.
        let BuyStatus::Done(Ok(order)) = l.apply(1, &finish("b", Ok(reservation(2, 1)))) else {
            panic!("expected an order");
        };
        assert_eq!(order.id, 2);
        assert_eq!(l.order(1), None);
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
    fn what_a_buy_asked_for_is_kept_when_pending_ordered_or_refused() {
        let mut l = OrderLedger::new();
        l.apply(1, &begin("a", 2, 3, 10));
        l.apply(2, &begin("b", 4, 1000, 10));
        assert_eq!(l.asked("a"), Some((2, Some(3))));
        l.apply(3, &finish("a", Ok(reservation(2, 3))));
        l.apply(4, &finish("b", Err(Rejection::OutOfStock(4))));
        assert_eq!(l.asked("a"), Some((2, Some(3))));
        assert_eq!(l.asked("b"), Some((4, Some(1000))));
        assert_eq!(l.asked("c"), None);
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

    /// A ledger with `n` buys: all finished but the last, which is pending.
    fn ledger_with(n: usize) -> OrderLedger {
        let mut l = OrderLedger::new();
        add_buys(&mut l, 0..n);
        l
    }

    /// Applies buys `range` to `l`: all finished but the last, which is
    /// pending (and finished by the next call, if it starts there).
    fn add_buys(l: &mut OrderLedger, range: std::ops::Range<usize>) {
        let n = range.end;
        for i in range {
            let request = format!("r{i}");
            l.apply(2 * i as u64 + 1, &begin(&request, 1, 1, 5));
            if i + 1 < n {
                let outcome = if i % 4 == 3 {
                    Err(Rejection::OutOfStock(1))
                } else {
                    Ok(reservation(1, 1))
                };
                l.apply(2 * i as u64 + 2, &finish(&request, outcome));
            }
        }
    }

    #[test]
    fn a_snapshot_holds_the_pending_buys_and_the_archive_mark_only() {
        let l = ledger_with(50);
        let json = serde_json::to_string(&l).unwrap();
        assert!(!json.contains("book 1"), "orders in the snapshot: {json}");
        let back: OrderLedger = serde_json::from_str(&json).unwrap();
        assert_eq!(back, l);
        assert_eq!(back.pending(), l.pending());
    }

    #[test]
    fn a_dump_carries_every_finished_buy() {
        let l = ledger_with(50);
        let json = serde_json::to_string(&l.shipping(0).unwrap()).unwrap();
        let dumped: OrderLedger = serde_json::from_str(&json).unwrap();
        assert_eq!(dumped, l);
        assert_eq!(dumped.orders(), l.orders());
        assert_eq!(dumped.finished().len(), 49);
        assert_eq!(dumped.status("r7"), l.status("r7"));
        assert_eq!(dumped.order(30), l.order(30));
        assert!(dumped.order(30).is_some());
    }

    #[test]
    fn a_lagging_ledger_adopts_only_the_records_it_lacks() {
        let behind = ledger_with(20);
        let ahead = ledger_with(60);
        let json = serde_json::to_string(&ahead.shipping(behind.archived().len).unwrap()).unwrap();
        let mut sent: OrderLedger = serde_json::from_str(&json).unwrap();
        let Some(shipped) = &sent.shipped else {
            panic!("no records shipped");
        };
        assert_eq!(shipped.records.len(), 59 - 19);
        assert_eq!(sent.adopt(&behind), Ok(true));
        assert_eq!(sent, ahead);
        assert_eq!(sent.orders(), ahead.orders());
    }

    #[test]
    fn adopt_refuses_a_copy_shipped_from_another_mark_and_writes_nothing() {
        let behind = ledger_with(20);
        let other = ledger_with(10);
        let other_mark = other.archive.mark();
        let ahead = ledger_with(60);
        let json = serde_json::to_string(&ahead.shipping(behind.mark()).unwrap()).unwrap();
        let mut sent: OrderLedger = serde_json::from_str(&json).unwrap();
        assert_eq!(sent.adopt(&other), Ok(false));
        assert_eq!(other.archive.mark(), other_mark, "the refused copy wrote");
        // Refused, it still carries its records: it fits where it was sent.
        assert_eq!(sent.adopt(&behind), Ok(true));
        assert_eq!(sent.orders(), ahead.orders());
        // A snapshot with no records shipped fits no archive.
        let mut bare: OrderLedger =
            serde_json::from_str(&serde_json::to_string(&ahead).unwrap()).unwrap();
        assert_eq!(bare.adopt(&behind), Ok(false));
    }

    #[test]
    fn attach_cuts_the_archive_back_to_the_snapshots_mark() {
        use crate::files::{memfs::MemFs, Fs};
        let fs = MemFs::new();
        fs.create_dir_all(std::path::Path::new("/d")).unwrap();
        let mut open = crate::state::archive::opener(fs.clone(), "/d");
        let mut l = OrderLedger::new();
        assert_eq!(l.attach(&mut open).unwrap(), Ok(()));
        add_buys(&mut l, 0..21);
        let at_20 = l.clone();
        let snapshot = serde_json::to_string(&l).unwrap();
        add_buys(&mut l, 20..41);
        let flush = |l: &OrderLedger| {
            l.syncer()
                .unwrap()
                .expect("a ledger has its archive to sync")()
            .unwrap()
        };
        flush(&l);
        let on_disk = || fs.read_live("/d/orders").map(|b| b.len() as u64);
        assert_eq!(on_disk(), Some(l.mark()));
        assert!(l.mark() > at_20.mark());
        // Restarted from the snapshot: the file is cut back to its mark.
        let mut back: OrderLedger = serde_json::from_str(&snapshot).unwrap();
        assert_eq!(back.attach(&mut open).unwrap(), Ok(()));
        assert_eq!(on_disk(), Some(at_20.mark()));
        assert_eq!(back.orders(), at_20.orders());
        assert_eq!(back.failure(), None);
        // A snapshot that counts on more than the file holds is damage.
        let mut ahead: OrderLedger =
            serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        let problem = ahead.attach(&mut open).unwrap().unwrap_err();
        assert!(problem.starts_with("orders: "), "{problem}");
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
            // Ids go to requests in the order they take one: at their first
            // Begin, or at a successful Finish that had no Begin.
            let mut ids: BTreeMap<&str, OrderId> = BTreeMap::new();
            for (lsn, cmd) in (1..).zip(&cmds) {
                let request = request_of(cmd);
                let new = !first_begin.contains_key(request);
                let takes_id = match cmd {
                    OrderCommand::Begin { .. } => new,
                    OrderCommand::Finish { outcome, .. } => new && outcome.is_ok(),
                };
                if takes_id {
                    ids.insert(request, ids.len() as u64 + 1);
                }
                // What the primary answers before a Finish commits is what
                // the Finish then records.
                let foreseen = match cmd {
                    OrderCommand::Finish { request, outcome } => l.outcome_of(request, outcome),
                    OrderCommand::Begin { .. } => None,
                };
                let status = l.apply(lsn, cmd);
                if let Some(foreseen) = foreseen {
                    prop_assert_eq!(&foreseen, &status, "the early answer differs");
                }
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
            let mut per_request: BTreeMap<&str, usize> = BTreeMap::new();
            for o in &orders {
                prop_assert_eq!(ids.get(o.request.as_str()), Some(&o.id));
                prop_assert_eq!(l.order(o.id), Some(o.clone()));
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
