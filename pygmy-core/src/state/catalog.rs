//! The catalog: the books, their stock and every reservation made against it.
//!
//! A pure, deterministic state machine. Each catalog replica applies the
//! committed [`CatalogCommand`]s of its log in order, so every outcome follows
//! from the log alone: the primary decides nothing a backup could not
//! recompute. All maps are ordered (`BTreeMap`, `imbl::OrdMap`), so the
//! state's JSON — and with it its digest
//! ([`StateMachine::digest`]) — is canonical.
//!
//! As replication sees it ([`StateMachine`], at the end of this file), the
//! catalog has no side files: everything it holds is in its snapshot, so
//! it attaches to nothing, its mark is 0, and the copy shipped to a
//! lagging replica is a clone.
//!
//! # Guarantees
//!
//! - **Exactly-once reservations.** Every `Reserve` outcome, success or not,
//!   is stored under its request id. A repeated request id gets the stored
//!   outcome back and changes nothing, even if stock or prices changed since;
//!   this is what lets the order primary retry a buy after any failure.
//! - **Conservation.** For every item, `initial + restocked - count` equals
//!   the copies held by successful reservations of that item, remembered or
//!   forgotten (see
//!   [`StockLedger`]). Stock never goes negative: it is a `u64` and a
//!   reservation checks it before subtracting.
//! - **No panics on input.** Arithmetic is checked (saturating would hide
//!   bugs); an overflow is a `Rejection::Invalid` and leaves the state as it
//!   was.
//! - **The original's restock rule**, kept by default: a buy that finds the
//!   item sold out (0 copies) fails *and* restocks the item (by 10). A buy
//!   of more copies than are left, while some are, is refused and changes
//!   nothing: otherwise anyone could raise the stock by asking for too
//!   many. The restock is a recorded `restocked` change, so conservation
//!   still holds.
//! - **Bounded memory.** A reservation is remembered only until the order
//!   group has finished its buy: the order primary sends `Forget { below }`
//!   with the lowest order-log lsn of a buy still pending, and the catalog
//!   drops every reservation whose buy began below it. A `Reserve` that
//!   began below the mark is a late duplicate (its buy is final), so it is
//!   refused as `Settled` rather than taking copies a second time. The
//!   copies forgotten reservations took stay counted per item, so
//!   conservation is still checkable here.
//! - **No reservation outlives a lost `Begin` unrecorded.** The order
//!   primary asks for a reservation while its buy's `Begin` may still be
//!   uncommitted, so a crash can leave a reservation whose buy the order
//!   log never learnt of. Each reservation is tagged with the order
//!   primary's epoch; a new order primary first sends `Fence`, which
//!   refuses every older epoch's `Reserve` and `Forget` from then on and
//!   lists the reservations older epochs asked for that are still held
//!   (refusals too: one may have restocked), so it can record each as a
//!   buy before it forgets any (see `services/buy.rs`).
//!
//! - **Admin changes once per key.** A `Keyed` restock, price change or
//!   new book is applied once per idempotency key: a repeat of the same
//!   change gets the first outcome back and changes nothing; a different
//!   change under a used key is refused (`KeyReused`) and changes nothing.
//!   The newest [`ADMIN_KEYS_KEPT`] keys are remembered (bounded memory);
//!   they are part of the state, so they are replicated, survive a
//!   failover and travel in snapshots.
//!
//! # Caveats
//!
//! - An admin retry arriving after [`ADMIN_KEYS_KEPT`] newer keyed changes
//!   is applied again.
//! - A reservation is final; there is no cancel (a failed buy never holds
//!   copies, because the order group records whatever the catalog decided).
//! - A request id is the whole identity of a reservation: a retry with the
//!   same id but another item or quantity still gets the first outcome.

use crate::state::command::{
    CatalogCommand, CatalogOutcome, Command, Inherited, Outcome, Rejection, Reservation,
};
use crate::state::{state_digest, StateMachine, Syncer, Tagged};
use crate::types::{fnv1a, Book, Epoch, Group, ItemId, Lsn, RequestId, DIGEST_BASIS};
use imbl::OrdMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Copies the original added when a buy found an item sold out.
pub const DEFAULT_RESTOCK: u64 = 10;

/// Copies of each built-in book, as in the original.
const BUILTIN_COPIES: u64 = 100;

/// Rules that are a choice rather than a necessity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogPolicy {
    /// `Some(n)`: a `Reserve` that finds the item sold out (0 copies) also
    /// adds `n` copies (the original's behaviour, `n = 10`). `None`: it
    /// changes nothing. A `Reserve` of more copies than are left never
    /// restocks.
    pub restock_on_empty: Option<u64>,
    /// Deliberately broken, for the simulation's own tests: every `Reserve`
    /// refused for lack of stock restocks, sold out or not (the bug of
    /// issue 15). Never set otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsafe_restock_any_refusal: bool,
    /// Deliberately broken, for the simulation's own tests: `Keyed` admin
    /// changes apply every time, as if no key had been given. Never set
    /// otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsafe_ignore_admin_keys: bool,
}

impl Default for CatalogPolicy {
    fn default() -> Self {
        CatalogPolicy {
            restock_on_empty: Some(DEFAULT_RESTOCK),
            unsafe_restock_any_refusal: false,
            unsafe_ignore_admin_keys: false,
        }
    }
}

/// One item's stock accounts, for checking conservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLedger {
    /// Copies the book had when it entered the catalog.
    pub initial: u64,
    /// Copies added since, by `Restock` or by the restock-on-empty rule.
    pub restocked: u64,
    /// Copies on the shelf now.
    pub count: u64,
}

impl StockLedger {
    /// Copies taken by reservations: `initial + restocked - count`. `None`
    /// only if the accounts are inconsistent, which conservation rules out.
    pub fn reserved(&self) -> Option<u64> {
        self.initial
            .checked_add(self.restocked)?
            .checked_sub(self.count)
    }
}

/// A book with its stock accounts; `book.count` is the current stock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct CatalogItem {
    book: Book,
    initial: u64,
    restocked: u64,
    /// Copies taken by reservations that were since forgotten (`Forget`),
    /// so conservation stays checkable from the catalog alone.
    #[serde(default)]
    forgotten: u64,
}

/// A stored `Reserve` outcome, with the order-log lsn of its buy's `Begin`
/// (what `Forget` goes by), the newest order epoch that asked for it and
/// what it asked for (what `Fence` lists).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Held {
    begin: Lsn,
    #[serde(default)]
    epoch: Epoch,
    #[serde(default)]
    item: ItemId,
    #[serde(default)]
    qty: u64,
    outcome: Result<Reservation, Rejection>,
}

impl CatalogItem {
    fn new(book: Book) -> Self {
        CatalogItem {
            initial: book.count,
            restocked: 0,
            forgotten: 0,
            book,
        }
    }

    /// Adds `qty` copies; `None` (and no change) if that would overflow.
    /// `initial + restocked` must stay representable so the ledger can be
    /// checked; since `count <= initial + restocked`, `count` cannot overflow
    /// once that sum fits, but it is checked anyway rather than assumed.
    fn add_copies(&mut self, qty: u64) -> Option<()> {
        let restocked = self.restocked.checked_add(qty)?;
        self.initial.checked_add(restocked)?;
        self.book.count = self.book.count.checked_add(qty)?;
        self.restocked = restocked;
        Some(())
    }
}

/// The catalog state machine (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    books: BTreeMap<ItemId, CatalogItem>,
    /// The first outcome of every `Reserve` not yet forgotten, by request
    /// id. A persistent map, so a snapshot clones it in O(1).
    reservations: OrdMap<RequestId, Held>,
    /// Every buy whose `Begin` is below this lsn of the order log is
    /// finished and forgotten: a `Reserve` for one is a late duplicate.
    #[serde(default)]
    settled_below: Lsn,
    /// The newest order epoch that sent `Fence`: older ones are refused.
    #[serde(default)]
    order_fence: Epoch,
    policy: CatalogPolicy,
    /// The first outcome of the newest [`ADMIN_KEYS_KEPT`] keyed admin
    /// changes, by key.
    #[serde(default)]
    admin_keys: OrdMap<RequestId, AdminDone>,
    /// The same keys by arrival, oldest first: which one to forget next.
    #[serde(default)]
    admin_order: OrdMap<u64, RequestId>,
}

/// Most admin idempotency keys the catalog remembers: the newest ones. A
/// record is its key (at most 200 bytes), a digest of the change, and the
/// book it answered (title and topic at most [`MAX_TEXT`] bytes each), so
/// the table holds at most about 2.5 MB. A retry arriving after this many
/// newer keyed changes is applied again.
pub const ADMIN_KEYS_KEPT: usize = 1000;

/// Longest title or topic of a book, in bytes.
pub const MAX_TEXT: usize = 1000;

/// A keyed admin change, done: what it was and what it answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct AdminDone {
    /// FNV-1a of the change's JSON: tells a retry from another change.
    change: u64,
    outcome: Result<Book, Rejection>,
}

/// FNV-1a of a command's JSON (the same bytes on every replica).
fn digest_of(cmd: &CatalogCommand) -> u64 {
    let bytes = serde_json::to_vec(cmd).unwrap_or_default();
    fnv1a(DIGEST_BASIS, &bytes)
}

impl Catalog {
    /// The original's seven books, 100 copies each, with the default policy.
    pub fn builtin() -> Self {
        const DS: &str = "distributed systems";
        const GS: &str = "graduate school";
        let books = [
            (
                1,
                "How to get a good grade in 677 in 20 minutes a day",
                25,
                DS,
            ),
            (2, "RPCs for Dummies", 30, DS),
            (3, "Xen and the Art of Surviving Graduate School", 45, GS),
            (4, "Cooking for the Impatient Graduate Student", 15, GS),
            (5, "How to finish Project 3 on time", 40, DS),
            (6, "Why theory classes are so hard", 35, GS),
            (7, "Spring in the Pioneer Valley", 20, GS),
        ];
        // Built directly rather than through `from_books`, whose only failure
        // modes this fixed data cannot hit (a test checks it would pass).
        let books = books
            .into_iter()
            .map(|(id, title, cost, topic)| {
                let book = Book {
                    id,
                    title: title.to_string(),
                    cost,
                    count: BUILTIN_COPIES,
                    topic: topic.to_string(),
                };
                (id, CatalogItem::new(book))
            })
            .collect();
        Catalog {
            books,
            reservations: OrdMap::new(),
            settled_below: 0,
            order_fence: 0,
            policy: CatalogPolicy::default(),
            admin_keys: OrdMap::new(),
            admin_order: OrdMap::new(),
        }
    }

    /// A catalog holding `books`, each starting with its `count` copies.
    pub fn from_books(books: Vec<Book>, policy: CatalogPolicy) -> Result<Self, Rejection> {
        let mut catalog = Catalog {
            books: BTreeMap::new(),
            reservations: OrdMap::new(),
            settled_below: 0,
            order_fence: 0,
            policy,
            admin_keys: OrdMap::new(),
            admin_order: OrdMap::new(),
        };
        for book in books {
            catalog.add_book(book)?;
        }
        Ok(catalog)
    }

    /// Books plus stored reservations.
    pub fn records(&self) -> usize {
        self.books.len() + self.reservations.len()
    }

    pub fn policy(&self) -> &CatalogPolicy {
        &self.policy
    }

    /// Books whose topic is exactly `topic` (as the original), by id.
    pub fn search(&self, topic: &str) -> Vec<Book> {
        self.books
            .values()
            .filter(|item| item.book.topic == topic)
            .map(|item| item.book.clone())
            .collect()
    }

    /// How many books it holds.
    pub fn len(&self) -> usize {
        self.books.len()
    }

    /// Whether it holds no book.
    pub fn is_empty(&self) -> bool {
        self.books.is_empty()
    }

    pub fn lookup(&self, id: ItemId) -> Option<Book> {
        self.books.get(&id).map(|item| item.book.clone())
    }

    /// Every book, by id.
    pub fn all(&self) -> Vec<Book> {
        self.books.values().map(|item| item.book.clone()).collect()
    }

    /// The distinct topics, sorted.
    pub fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.books.values().map(|i| i.book.topic.clone()).collect();
        topics.sort();
        topics.dedup();
        topics
    }

    pub fn stock_ledger(&self, id: ItemId) -> Option<StockLedger> {
        self.books.get(&id).map(|item| StockLedger {
            initial: item.initial,
            restocked: item.restocked,
            count: item.book.count,
        })
    }

    /// The stored outcome of the `Reserve` with this request id, if any.
    pub fn reservation(&self, request: &str) -> Option<&Result<Reservation, Rejection>> {
        self.reservations.get(request).map(|held| &held.outcome)
    }

    /// Reservations still remembered (the buys in flight, and those
    /// finished since the order group's last `Forget`).
    pub fn remembered(&self) -> usize {
        self.reservations.len()
    }

    /// Applies one committed command. Deterministic; never panics.
    pub fn apply(&mut self, cmd: &CatalogCommand) -> CatalogOutcome {
        match cmd {
            _ if cmd.order_epoch().is_some_and(|e| e < self.order_fence) => CatalogOutcome::Stale {
                fence: self.order_fence,
            },
            CatalogCommand::Reserve {
                request,
                item,
                qty,
                begin,
                epoch,
            } => CatalogOutcome::Reserved(self.reserve(request, *item, *qty, *begin, *epoch)),
            CatalogCommand::Forget { below, .. } => CatalogOutcome::Forgot(self.forget(*below)),
            CatalogCommand::Fence { epoch } => CatalogOutcome::Fenced(self.fence(*epoch)),
            CatalogCommand::Restock { item, qty } => {
                CatalogOutcome::Changed(self.restock(*item, *qty))
            }
            CatalogCommand::SetPrice { item, cost } => {
                CatalogOutcome::Changed(self.set_price(*item, *cost))
            }
            CatalogCommand::AddBook { book } => {
                CatalogOutcome::Changed(self.add_book(book.clone()))
            }
            CatalogCommand::Keyed { key, change } => {
                CatalogOutcome::Changed(self.keyed(key, change))
            }
        }
    }

    /// Applies an admin change once per key (see `CatalogCommand::Keyed`).
    fn keyed(&mut self, key: &RequestId, change: &CatalogCommand) -> Result<Book, Rejection> {
        if !change.is_admin() {
            return Err(Rejection::Invalid(
                "only an admin change takes an idempotency key".into(),
            ));
        }
        if self.policy.unsafe_ignore_admin_keys {
            return match self.apply(change) {
                CatalogOutcome::Changed(outcome) => outcome,
                other => Err(Rejection::Invalid(format!(
                    "not an admin change: {other:?}"
                ))),
            };
        }
        let digest = digest_of(change);
        if let Some(done) = self.admin_keys.get(key) {
            return match done.change == digest {
                true => done.outcome.clone(),
                false => Err(Rejection::KeyReused),
            };
        }
        let outcome = match self.apply(change) {
            CatalogOutcome::Changed(outcome) => outcome,
            other => Err(Rejection::Invalid(format!(
                "not an admin change: {other:?}"
            ))),
        };
        let next = self.admin_order.get_max().map_or(0, |(n, _)| n + 1);
        self.admin_order.insert(next, key.clone());
        self.admin_keys.insert(
            key.clone(),
            AdminDone {
                change: digest,
                outcome: outcome.clone(),
            },
        );
        while self.admin_keys.len() > ADMIN_KEYS_KEPT {
            let Some(first) = self.admin_order.get_min().map(|(n, _)| *n) else {
                break;
            };
            if let Some(oldest) = self.admin_order.remove(&first) {
                self.admin_keys.remove(&oldest);
            }
        }
        outcome
    }

    /// How many admin keys are remembered (at most [`ADMIN_KEYS_KEPT`]).
    pub fn admin_keys(&self) -> usize {
        self.admin_keys.len()
    }

    fn reserve(
        &mut self,
        request: &str,
        item: ItemId,
        qty: u64,
        begin: Lsn,
        epoch: Epoch,
    ) -> Result<Reservation, Rejection> {
        // Its buy is finished and its reservation (if any) forgotten: taking
        // copies again would take them twice.
        if begin < self.settled_below {
            return Err(Rejection::Settled);
        }
        if let Some(first) = self.reservations.get_mut(request) {
            // A new order primary that recorded the buy again (its first
            // `Begin` lost) asks with the new `Begin`: keep the reservation
            // until that one is settled.
            first.begin = first.begin.max(begin);
            first.epoch = first.epoch.max(epoch);
            return first.outcome.clone();
        }
        // Every outcome is stored, refusals included, so that a retry can
        // never turn a refusal into a success (e.g. after a restock).
        let outcome = self.take(item, qty);
        let held = Held {
            begin,
            epoch,
            item,
            qty,
            outcome: outcome.clone(),
        };
        self.reservations.insert(request.to_string(), held);
        outcome
    }

    /// Drops the reservations of buys that began below `below` in the order
    /// log, and refuses such buys from now on. Returns how many it dropped.
    fn forget(&mut self, below: Lsn) -> u64 {
        if below <= self.settled_below {
            return 0;
        }
        self.settled_below = below;
        let (settled, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reservations)
            .into_iter()
            .partition(|(_, held)| held.begin < below);
        self.reservations = kept.into_iter().collect();
        for (_, held) in &settled {
            if let Ok(r) = &held.outcome {
                if let Some(item) = self.books.get_mut(&r.item) {
                    // Bounded by the copies the item ever had, which fit.
                    item.forgotten = item.forgotten.saturating_add(r.qty);
                }
            }
        }
        settled.len() as u64
    }

    /// Refuses order epochs below `epoch` from now on and lists the
    /// reservations they asked for, refusals included: a refusal may have
    /// restocked the item, and a retry must get it back, not a new decision.
    fn fence(&mut self, epoch: Epoch) -> Vec<Inherited> {
        self.order_fence = epoch;
        self.reservations
            .iter()
            .filter(|(_, held)| held.epoch < epoch)
            .map(|(request, held)| Inherited {
                request: request.clone(),
                item: held.item,
                qty: held.qty,
            })
            .collect()
    }

    /// Decides a new reservation and takes the copies.
    fn take(&mut self, item: ItemId, qty: u64) -> Result<Reservation, Rejection> {
        if qty == 0 {
            return Err(Rejection::Invalid("quantity must be at least 1".into()));
        }
        let restock_on_empty = self.policy.restock_on_empty;
        let entry = self.books.get_mut(&item).ok_or(Rejection::NotFound(item))?;
        let Some(remaining) = entry.book.count.checked_sub(qty) else {
            // Only a sold-out item is restocked, as in the original; a buy
            // of too many copies changes nothing.
            let sold_out = entry.book.count == 0 || self.policy.unsafe_restock_any_refusal;
            if let (true, Some(n)) = (sold_out, restock_on_empty) {
                // If the restock would overflow it is skipped: the buy fails
                // for lack of stock either way, and the rule is best effort.
                let _ = entry.add_copies(n);
            }
            return Err(Rejection::OutOfStock(item));
        };
        entry.book.count = remaining;
        Ok(Reservation {
            item,
            title: entry.book.title.clone(),
            topic: entry.book.topic.clone(),
            qty,
            cost: entry.book.cost,
            remaining,
        })
    }

    fn restock(&mut self, item: ItemId, qty: u64) -> Result<Book, Rejection> {
        if qty == 0 {
            return Err(Rejection::Invalid(
                "restock quantity must be at least 1".into(),
            ));
        }
        let entry = self.books.get_mut(&item).ok_or(Rejection::NotFound(item))?;
        entry.add_copies(qty).ok_or_else(|| {
            Rejection::Invalid(format!("restocking item {item} by {qty} overflows"))
        })?;
        Ok(entry.book.clone())
    }

    fn set_price(&mut self, item: ItemId, cost: u64) -> Result<Book, Rejection> {
        let entry = self.books.get_mut(&item).ok_or(Rejection::NotFound(item))?;
        entry.book.cost = cost;
        Ok(entry.book.clone())
    }

    fn add_book(&mut self, book: Book) -> Result<Book, Rejection> {
        if self.books.contains_key(&book.id) {
            return Err(Rejection::Exists(book.id));
        }
        if book.title.trim().is_empty() || book.topic.trim().is_empty() {
            return Err(Rejection::Invalid(format!(
                "book {}: title and topic must not be empty",
                book.id
            )));
        }
        if book.title.len() > MAX_TEXT || book.topic.len() > MAX_TEXT {
            return Err(Rejection::Invalid(format!(
                "book {}: title and topic must be at most {MAX_TEXT} bytes",
                book.id
            )));
        }
        self.books.insert(book.id, CatalogItem::new(book.clone()));
        Ok(book)
    }
}

/// The catalog as replication sees it (see `machine.rs`). It has no side
/// files, so every side-file hook is trivial.
impl StateMachine for Catalog {
    type Files = ();

    fn group(&self) -> Group {
        Group::Catalog
    }

    fn apply(&mut self, _lsn: Lsn, command: &Command) -> Outcome {
        match command {
            Command::Catalog(cmd) => Outcome::Catalog(Catalog::apply(self, cmd)),
            Command::Order(_) => Outcome::WrongGroup,
        }
    }

    fn digest(&self) -> u64 {
        state_digest(Tagged::Catalog(self))
    }

    fn records(&self) -> u64 {
        Catalog::records(self) as u64
    }

    fn attach(&mut self, _files: &mut ()) -> crate::Result<Result<(), String>> {
        Ok(Ok(()))
    }

    fn failure(&self) -> Option<String> {
        None
    }

    fn mark(&self) -> u64 {
        0
    }

    /// A clone: the snapshot holds the whole catalog, whatever the
    /// receiver has.
    fn shipping(&self, _from: u64) -> Result<Self, String> {
        Ok(self.clone())
    }

    /// Always fits: there is nothing to put on the receiver's files.
    fn adopt(&mut self, _current: &Self) -> Result<bool, String> {
        Ok(true)
    }

    fn syncer(&self) -> crate::Result<Option<Syncer>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use CatalogCommand::{AddBook, Fence, Forget, Restock, SetPrice};

    fn book(id: ItemId, count: u64) -> Book {
        let (title, topic) = (format!("book {id}"), "t".to_string());
        Book {
            id,
            title,
            cost: 10,
            count,
            topic,
        }
    }

    fn catalog(counts: &[u64], restock_on_empty: Option<u64>) -> Catalog {
        let books = (1..).zip(counts).map(|(id, n)| book(id, *n)).collect();
        let policy = CatalogPolicy {
            restock_on_empty,
            ..CatalogPolicy::default()
        };
        Catalog::from_books(books, policy).expect("valid books")
    }

    fn reserve(
        c: &mut Catalog,
        request: &str,
        item: ItemId,
        qty: u64,
    ) -> Result<Reservation, Rejection> {
        reserve_at(c, request, item, qty, 1)
    }

    #[test]
    fn as_a_state_machine_it_applies_its_own_commands_and_has_no_side_files() {
        let mut c = catalog(&[5, 5], None);
        let cmd = CatalogCommand::Reserve {
            request: "r".into(),
            item: 1,
            qty: 2,
            begin: 1,
            epoch: 0,
        };
        let outcome = StateMachine::apply(&mut c, 7, &Command::Catalog(cmd));
        let Outcome::Catalog(CatalogOutcome::Reserved(Ok(r))) = outcome else {
            panic!("expected a reservation, got {outcome:?}");
        };
        assert_eq!(r.remaining, 3);
        // An order command is refused and changes nothing.
        let before = c.clone();
        let order = crate::state::command::OrderCommand::Begin {
            request: "b".into(),
            item: 1,
            qty: 1,
            created: 0,
        };
        assert_eq!(
            StateMachine::apply(&mut c, 8, &Command::Order(order)),
            Outcome::WrongGroup
        );
        assert_eq!(c, before);
        // No side files: nothing to attach, sync or adopt, and the copy
        // shipped from any mark is the whole catalog.
        assert_eq!(c.attach(&mut ()).unwrap(), Ok(()));
        assert_eq!((c.mark(), c.failure()), (0, None));
        assert!(c.syncer().unwrap().is_none());
        let mut shipped = c.shipping(1234).unwrap();
        assert_eq!(shipped, c);
        assert_eq!(shipped.adopt(&catalog(&[1], None)), Ok(true));
        assert_eq!(shipped, c);
    }

    /// `Forget { below }` from the first order epoch.
    fn forget(below: Lsn) -> CatalogCommand {
        Forget { below, epoch: 0 }
    }

    /// A `Reserve` of a buy that began at `begin` in the order log.
    fn reserve_at(
        c: &mut Catalog,
        request: &str,
        item: ItemId,
        qty: u64,
        begin: Lsn,
    ) -> Result<Reservation, Rejection> {
        let request = request.to_string();
        match c.apply(&CatalogCommand::Reserve {
            request,
            item,
            qty,
            begin,
            epoch: 0,
        }) {
            CatalogOutcome::Reserved(r) => r,
            other => panic!("Reserve answered {other:?}"),
        }
    }

    fn change(c: &mut Catalog, cmd: CatalogCommand) -> Result<Book, Rejection> {
        match c.apply(&cmd) {
            CatalogOutcome::Changed(r) => r,
            other => panic!("{cmd:?} answered {other:?}"),
        }
    }

    fn is_invalid<T>(r: &Result<T, Rejection>) -> bool {
        matches!(r, Err(Rejection::Invalid(_)))
    }

    #[test]
    fn builtin_has_the_originals_seven_books() {
        let c = Catalog::builtin();
        let ids = |books: Vec<Book>| books.iter().map(|b| b.id).collect::<Vec<_>>();
        assert_eq!(ids(c.all()), (1..=7).collect::<Vec<_>>());
        assert!(c.all().iter().all(|b| b.count == 100 && b.cost > 0));
        assert_eq!(c.topics(), ["distributed systems", "graduate school"]);
        assert_eq!(ids(c.search("distributed systems")), [1, 2, 5]);
        assert!(
            c.search("Distributed Systems").is_empty(),
            "exact match only"
        );
        assert_eq!(
            c.lookup(2).map(|b| b.title).as_deref(),
            Some("RPCs for Dummies")
        );
        assert_eq!(c.policy().restock_on_empty, Some(10));
        // The data would pass `from_books`' validation.
        assert_eq!(
            Catalog::from_books(c.all(), CatalogPolicy::default()),
            Ok(c)
        );
    }

    #[test]
    fn reserve_takes_stock_and_reports_price_and_remaining() {
        let mut c = catalog(&[5], None);
        let r = reserve(&mut c, "a", 1, 2).expect("in stock");
        assert_eq!((r.item, r.qty, r.cost, r.remaining), (1, 2, 10, 3));
        assert_eq!(c.lookup(1).map(|b| b.count), Some(3));
    }

    #[test]
    fn sold_out_restocks_by_policy_amount() {
        let mut c = catalog(&[0], Some(10));
        assert_eq!(reserve(&mut c, "a", 1, 2), Err(Rejection::OutOfStock(1)));
        let l = c.stock_ledger(1).expect("exists");
        assert_eq!((l.count, l.restocked, l.reserved()), (10, 10, Some(0)));
    }

    fn keyed(key: &str, change: CatalogCommand) -> CatalogCommand {
        CatalogCommand::Keyed {
            key: key.into(),
            change: Box::new(change),
        }
    }

    #[test]
    fn a_keyed_change_applies_once_and_its_key_fits_no_other() {
        let mut c = catalog(&[5], None);
        let first = change(&mut c, keyed("k", Restock { item: 1, qty: 3 }));
        assert_eq!(first.as_ref().map(|b| b.count), Ok(8));
        // The retry: the first answer, nothing added.
        assert_eq!(
            change(&mut c, keyed("k", Restock { item: 1, qty: 3 })),
            first
        );
        assert_eq!(c.lookup(1).map(|b| b.count), Some(8));
        // Another change under the same key: refused, nothing changed.
        for other in [Restock { item: 1, qty: 4 }, SetPrice { item: 1, cost: 1 }] {
            assert_eq!(change(&mut c, keyed("k", other)), Err(Rejection::KeyReused));
        }
        assert_eq!(c.lookup(1).map(|b| (b.count, b.cost)), Some((8, 10)));
        // Only admin changes take a key.
        assert!(is_invalid(&change(&mut c, keyed("r", forget(1)))));
    }

    #[test]
    fn admin_keys_are_bounded_and_the_oldest_is_forgotten_first() {
        let mut c = catalog(&[5], None);
        for i in 0..ADMIN_KEYS_KEPT + 5 {
            let _ = change(&mut c, keyed(&format!("k{i}"), Restock { item: 1, qty: 1 }));
        }
        assert_eq!(c.admin_keys(), ADMIN_KEYS_KEPT);
        let count = c.lookup(1).map(|b| b.count);
        // The newest is remembered; the oldest applies again.
        let newest = format!("k{}", ADMIN_KEYS_KEPT + 4);
        let _ = change(&mut c, keyed(&newest, Restock { item: 1, qty: 1 }));
        assert_eq!(c.lookup(1).map(|b| b.count), count);
        let _ = change(&mut c, keyed("k0", Restock { item: 1, qty: 1 }));
        assert_eq!(c.lookup(1).map(|b| b.count), count.map(|n| n + 1));
        // The keys survive a snapshot (the state's JSON).
        let copy: Catalog = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(copy, c);
    }

    #[test]
    fn too_many_copies_are_refused_without_a_restock() {
        let mut c = catalog(&[1], Some(10));
        let before = c.stock_ledger(1);
        for (request, qty) in [("a", 2), ("b", 1000)] {
            assert_eq!(
                reserve(&mut c, request, 1, qty),
                Err(Rejection::OutOfStock(1))
            );
        }
        assert_eq!(c.stock_ledger(1), before);
        // The last copy sells; only the buy after it restocks.
        assert!(reserve(&mut c, "c", 1, 1).is_ok());
        assert_eq!(reserve(&mut c, "d", 1, 5), Err(Rejection::OutOfStock(1)));
        assert_eq!(c.lookup(1).map(|b| b.count), Some(10));
    }

    #[test]
    fn out_of_stock_changes_nothing_without_restock_policy() {
        let mut c = catalog(&[1], None);
        let before = c.clone();
        assert_eq!(reserve(&mut c, "a", 1, 2), Err(Rejection::OutOfStock(1)));
        assert_eq!(c.stock_ledger(1), before.stock_ledger(1));
    }

    #[test]
    fn repeated_request_returns_first_outcome_even_after_stock_changes() {
        let mut c = catalog(&[0, 5], Some(10));
        let first = reserve(&mut c, "a", 1, 3);
        assert_eq!(first, Err(Rejection::OutOfStock(1)));
        // Item 1 now has 10 copies, yet the retry is still refused.
        assert_eq!(reserve(&mut c, "a", 1, 3), first);
        let ok = reserve(&mut c, "b", 2, 2);
        let before = c.clone();
        assert_eq!(reserve(&mut c, "b", 2, 2), ok);
        assert_eq!(
            reserve(&mut c, "b", 1, 1),
            ok,
            "the request id alone decides"
        );
        assert_eq!(c, before);
    }

    #[test]
    fn unknown_item_is_not_found_and_stays_so_for_that_request() {
        let mut c = catalog(&[5], None);
        assert_eq!(reserve(&mut c, "a", 9, 1), Err(Rejection::NotFound(9)));
        assert!(change(&mut c, AddBook { book: book(9, 5) }).is_ok());
        assert_eq!(reserve(&mut c, "a", 9, 1), Err(Rejection::NotFound(9)));
        assert!(reserve(&mut c, "b", 9, 1).is_ok());
    }

    #[test]
    fn invalid_inputs_are_rejected_and_change_nothing() {
        let mut c = catalog(&[5, u64::MAX - 1], Some(10));
        let before = c.clone();
        assert!(is_invalid(&change(&mut c, Restock { item: 1, qty: 0 })));
        assert!(
            is_invalid(&change(&mut c, Restock { item: 2, qty: 5 })),
            "overflow"
        );
        let blank = Book {
            title: " ".into(),
            ..book(3, 3)
        };
        assert!(is_invalid(&change(&mut c, AddBook { book: blank })));
        assert_eq!(c, before);
        // A refused reservation is stored, but takes no stock.
        assert!(is_invalid(&reserve(&mut c, "a", 1, 0)));
        assert_eq!(c.stock_ledger(1), before.stock_ledger(1));
    }

    #[test]
    fn restock_set_price_and_add_book_follow_their_rules() {
        let mut c = catalog(&[5], None);
        let nine = Book {
            count: 9,
            ..book(1, 5)
        };
        assert_eq!(
            change(&mut c, Restock { item: 1, qty: 4 }),
            Ok(nine.clone())
        );
        assert_eq!(c.stock_ledger(1).map(|l| l.restocked), Some(4));
        let priced = change(&mut c, SetPrice { item: 1, cost: 99 });
        assert_eq!(priced, Ok(Book { cost: 99, ..nine }));
        for cmd in [Restock { item: 7, qty: 1 }, SetPrice { item: 7, cost: 1 }] {
            assert_eq!(change(&mut c, cmd), Err(Rejection::NotFound(7)));
        }
        assert_eq!(
            change(&mut c, AddBook { book: book(1, 3) }),
            Err(Rejection::Exists(1))
        );
        assert_eq!(change(&mut c, AddBook { book: book(2, 3) }), Ok(book(2, 3)));
        let ledger = StockLedger {
            initial: 3,
            restocked: 0,
            count: 3,
        };
        assert_eq!(c.stock_ledger(2), Some(ledger));
    }

    #[test]
    fn from_books_rejects_duplicates_and_blank_fields() {
        let dup = Catalog::from_books(vec![book(1, 1), book(1, 2)], CatalogPolicy::default());
        assert_eq!(dup, Err(Rejection::Exists(1)));
        let blank = Book {
            topic: String::new(),
            ..book(1, 1)
        };
        assert!(is_invalid(&Catalog::from_books(
            vec![blank],
            CatalogPolicy::default()
        )));
    }

    #[test]
    fn forget_drops_finished_reservations_and_refuses_their_late_duplicates() {
        let mut c = catalog(&[10], None);
        assert!(reserve_at(&mut c, "a", 1, 2, 5).is_ok());
        assert!(reserve_at(&mut c, "b", 1, 3, 8).is_ok());
        assert_eq!(c.apply(&forget(6)), CatalogOutcome::Forgot(1));
        assert_eq!((c.reservation("a"), c.remembered()), (None, 1));
        // A late duplicate of the finished buy takes nothing.
        assert_eq!(reserve_at(&mut c, "a", 1, 2, 5), Err(Rejection::Settled));
        assert_eq!(c.lookup(1).map(|b| b.count), Some(5));
        // Buys that began at or after the mark are untouched.
        let b = c.reservation("b").cloned();
        assert_eq!(
            reserve_at(&mut c, "b", 1, 3, 8).ok(),
            b.and_then(|r| r.ok())
        );
        assert!(reserve_at(&mut c, "c", 1, 1, 6).is_ok());
        // The mark never moves back.
        assert_eq!(c.apply(&forget(2)), CatalogOutcome::Forgot(0));
        assert_eq!(c.apply(&forget(9)), CatalogOutcome::Forgot(2));
        assert_eq!(c.remembered(), 0);
        // The copies they took are still accounted for.
        let ledger = c.stock_ledger(1).expect("book 1");
        assert_eq!((ledger.reserved(), c.books[&1].forgotten), (Some(6), 6));
    }

    #[test]
    fn fence_refuses_older_epochs_and_lists_what_they_reserved() {
        let mut c = catalog(&[10, 1], None);
        let ask = |c: &mut Catalog, request: &str, item, begin, epoch| {
            c.apply(&CatalogCommand::Reserve {
                request: request.to_string(),
                item,
                qty: 1,
                begin,
                epoch,
            })
        };
        let a = ask(&mut c, "a", 1, 5, 1);
        assert!(matches!(
            ask(&mut c, "b", 2, 6, 1),
            CatalogOutcome::Reserved(Ok(_))
        ));
        // Refusals are listed too (this one restocked nothing, but could have).
        assert!(matches!(
            ask(&mut c, "c", 2, 7, 1),
            CatalogOutcome::Reserved(Err(_))
        ));
        let CatalogOutcome::Fenced(mut listed) = c.apply(&Fence { epoch: 3 }) else {
            panic!("fence not answered with a list");
        };
        listed.sort_by(|x, y| x.request.cmp(&y.request));
        let names: Vec<_> = listed
            .iter()
            .map(|i| (i.request.as_str(), i.item, i.qty))
            .collect();
        assert_eq!(names, [("a", 1, 1), ("b", 2, 1), ("c", 2, 1)]);
        // Epoch 1 is refused from now on, with no change; epoch 3 is served.
        let before = c.clone();
        let stale = CatalogOutcome::Stale { fence: 3 };
        assert_eq!(ask(&mut c, "d", 1, 9, 1), stale);
        assert_eq!(ask(&mut c, "a", 1, 9, 2), stale);
        assert_eq!(
            c.apply(&Forget {
                below: 99,
                epoch: 2
            }),
            stale
        );
        assert_eq!(c.apply(&Fence { epoch: 2 }), stale);
        assert_eq!(c, before);
        // The new primary records "a" anew at lsn 20: its reservation stays
        // past a Forget that covers the lost Begin's lsn but not the new one
        // (which drops "b" and "c").
        assert_eq!(ask(&mut c, "a", 1, 20, 3), a);
        assert!(matches!(
            c.apply(&Forget {
                below: 10,
                epoch: 3
            }),
            CatalogOutcome::Forgot(2)
        ));
        assert_eq!(
            c.reservation("a").cloned().map(CatalogOutcome::Reserved),
            Some(a)
        );
        // Fencing again lists only what older epochs asked for last.
        assert_eq!(
            c.apply(&Fence { epoch: 3 }),
            CatalogOutcome::Fenced(Vec::new())
        );
    }

    fn command() -> impl Strategy<Value = CatalogCommand> {
        prop_oneof![
            5 => (0..8u8, 0..6u64, 0..6u64, 0..3u64).prop_map(|(r, item, qty, epoch)| {
                // A request's buy began at the lsn of its number, as if the
                // order log held them in that order.
                CatalogCommand::Reserve { request: format!("r{r}"), item, qty, begin: u64::from(r) + 1, epoch }
            }),
            1 => (0..10u64, 0..3u64).prop_map(|(below, epoch)| Forget { below, epoch }),
            1 => (0..3u64).prop_map(|epoch| Fence { epoch }),
            1 => (0..6u64, 0..12u64).prop_map(|(item, qty)| Restock { item, qty }),
            1 => (0..6u64, 0..60u64).prop_map(|(item, cost)| SetPrice { item, cost }),
            1 => (0..6u64, 0..5u64).prop_map(|(id, count)| AddBook { book: book(id, count) }),
        ]
    }

    /// `initial + restocked - count` equals the copies held by successful
    /// reservations, for every item.
    fn check_conservation(c: &Catalog) -> Result<(), TestCaseError> {
        for b in c.all() {
            let held: u64 = c
                .reservations
                .values()
                .filter_map(|h| h.outcome.as_ref().ok())
                .filter(|r| r.item == b.id)
                .map(|r| r.qty)
                .sum();
            let ledger = c.stock_ledger(b.id).expect("listed book has a ledger");
            prop_assert_eq!(ledger.count, b.count);
            let forgotten = c.books[&b.id].forgotten;
            prop_assert_eq!(ledger.reserved(), Some(held + forgotten), "item {}", b.id);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn random_commands_conserve_stock_and_reserve_exactly_once(
            counts in prop::collection::vec(0..6u64, 1..4),
            restock in prop_oneof![Just(None), (0..12u64).prop_map(Some)],
            cmds in prop::collection::vec(command(), 0..60),
        ) {
            let mut c = catalog(&counts, restock);
            let mut twin = c.clone();
            for cmd in &cmds {
                let stale = match cmd {
                    CatalogCommand::Reserve { epoch, .. }
                    | Forget { epoch, .. }
                    | Fence { epoch } => *epoch < c.order_fence,
                    _ => false,
                };
                let before = c.clone();
                let fresh = match cmd {
                    CatalogCommand::Reserve { request, begin, .. } => {
                        c.reservation(request).is_none() && *begin >= c.settled_below
                    }
                    _ => false,
                };
                let out = c.apply(cmd);
                prop_assert_eq!(&twin.apply(cmd), &out, "determinism");
                check_conservation(&c)?;
                if stale {
                    prop_assert_eq!(&out, &CatalogOutcome::Stale { fence: before.order_fence });
                    prop_assert_eq!(&c, &before, "a stale command changed the state");
                    continue;
                }
                if let (Fence { epoch }, CatalogOutcome::Fenced(listed)) = (cmd, &out) {
                    let older: Vec<_> = before
                        .reservations
                        .iter()
                        .filter(|(_, h)| h.epoch < *epoch)
                        .map(|(r, _)| r.clone())
                        .collect();
                    let named: Vec<_> = listed.iter().map(|i| i.request.clone()).collect();
                    prop_assert_eq!(named, older);
                    continue;
                }
                let (CatalogCommand::Reserve { request, item, qty, begin, epoch }, CatalogOutcome::Reserved(first)) =
                    (cmd, &out)
                else {
                    continue;
                };
                if *begin < c.settled_below {
                    prop_assert_eq!(first, &Err(Rejection::Settled));
                    prop_assert_eq!(c.reservation(request), None);
                    continue;
                }
                if let (true, Ok(r)) = (fresh, first) {
                    prop_assert_eq!(c.lookup(*item).map(|b| b.count), Some(r.remaining));
                }
                prop_assert_eq!(c.reservation(request), Some(first));
                let before = c.clone();
                for (item, qty) in [(*item, *qty), (item + 1, qty + 1)] {
                    let retry = CatalogCommand::Reserve { request: request.clone(), item, qty, begin: *begin, epoch: *epoch };
                    prop_assert_eq!(c.apply(&retry), CatalogOutcome::Reserved(first.clone()));
                }
                prop_assert_eq!(&c, &before, "a retry changed the state");
            }
            prop_assert_eq!(&c, &twin);
            let json = serde_json::to_string(&c).expect("serialises");
            let back: Catalog = serde_json::from_str(&json).expect("deserialises");
            prop_assert_eq!(serde_json::to_string(&back).expect("serialises"), json);
            prop_assert_eq!(StateMachine::digest(&back), StateMachine::digest(&c));
        }
    }
}
