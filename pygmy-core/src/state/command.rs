//! Commands: what a group's log holds. Each replica applies committed
//! commands in log order, so every outcome is decided deterministically by
//! the log alone (the primary does not decide anything the backups cannot
//! recompute).

use crate::types::{Book, Epoch, ItemId, LogPos, Lsn, OrderId, RequestId};
use serde::{Deserialize, Serialize};

/// A change to the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogCommand {
    /// Take `qty` copies of `item` for buy `request`. Idempotent: a repeated
    /// request id returns the first outcome and changes nothing.
    ///
    /// `begin` is the lsn of the buy's `Begin` in the order log: a Reserve
    /// below the order group's last `Forget` is a late duplicate of a buy
    /// the order group has finished, and is refused as `Settled`. The order
    /// primary sends it while that `Begin` may still be uncommitted.
    ///
    /// `epoch` is the order primary's epoch when it started driving the buy:
    /// once a newer order primary has sent `Fence`, the Reserve is refused
    /// as `Stale` (see `Fence`).
    Reserve {
        request: RequestId,
        item: ItemId,
        qty: u64,
        begin: Lsn,
        #[serde(default)]
        epoch: Epoch,
    },
    /// Forget the reservations of buys whose `Begin` is below `below` in the
    /// order log: the order group has finished every one of them, so no
    /// retry can need their outcome again. Sent by the order primary of
    /// `epoch` (refused as `Stale` after a newer one's `Fence`); keeps the
    /// catalog's memory bounded by the buys in flight.
    Forget {
        below: Lsn,
        #[serde(default)]
        epoch: Epoch,
    },
    /// A new order primary of `epoch` takes over: from now on the catalog
    /// refuses `Reserve` and `Forget` of older epochs, and it answers with
    /// every reservation older epochs asked for that it still holds. Their
    /// `Begin`s may have been lost with an old primary, so the new one
    /// records each such buy before it forgets anything.
    Fence { epoch: Epoch },
    /// Add `qty` copies of `item`.
    Restock { item: ItemId, qty: u64 },
    /// Set the unit price of `item`.
    SetPrice { item: ItemId, cost: u64 },
    /// Add a new book (its id must be free).
    AddBook { book: Book },
    /// An admin change (`Restock`, `SetPrice`, `AddBook`) under the
    /// client's idempotency key: applied once per key. A repeat with the
    /// same change gets the first outcome and changes nothing; one with a
    /// different change is refused as `KeyReused` (see `catalog.rs`).
    Keyed {
        key: RequestId,
        change: Box<CatalogCommand>,
    },
}

impl CatalogCommand {
    /// The order epoch a command of the order group carries (`Reserve`,
    /// `Forget`, `Fence`); `None` for admin changes.
    pub fn order_epoch(&self) -> Option<Epoch> {
        match self {
            CatalogCommand::Reserve { epoch, .. }
            | CatalogCommand::Forget { epoch, .. }
            | CatalogCommand::Fence { epoch } => Some(*epoch),
            CatalogCommand::Restock { .. }
            | CatalogCommand::SetPrice { .. }
            | CatalogCommand::AddBook { .. }
            | CatalogCommand::Keyed { .. } => None,
        }
    }

    /// Whether this is an admin change (what `Keyed` may wrap).
    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            CatalogCommand::Restock { .. }
                | CatalogCommand::SetPrice { .. }
                | CatalogCommand::AddBook { .. }
        )
    }
}

/// A successful reservation: what was taken, at which price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub item: ItemId,
    pub title: String,
    pub topic: String,
    pub qty: u64,
    /// Unit cost at the time of the reservation.
    pub cost: u64,
    /// Copies left after the reservation.
    pub remaining: u64,
}

/// A reservation an older order epoch asked for (see `CatalogCommand::Fence`):
/// what the new order primary needs to record its buy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inherited {
    pub request: RequestId,
    pub item: ItemId,
    pub qty: u64,
}

/// Why a command changed nothing. Serialisable, because it travels in logs
/// and replies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rejection {
    NotFound(ItemId),
    OutOfStock(ItemId),
    Exists(ItemId),
    Invalid(String),
    /// A `Reserve` for a buy the order group had already finished (a late
    /// duplicate). Never recorded: the buy's outcome is already final.
    Settled,
    /// A `Keyed` change whose key was used before for a different change.
    KeyReused,
}

impl From<Rejection> for crate::Error {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::NotFound(id) => crate::Error::NotFound(format!("item {id} not found")),
            Rejection::OutOfStock(id) => crate::Error::OutOfStock(id),
            Rejection::Exists(id) => crate::Error::Conflict(format!("item {id} already exists")),
            Rejection::Invalid(m) => crate::Error::InvalidInput(m),
            Rejection::Settled => crate::Error::Conflict("this buy was already finished".into()),
            Rejection::KeyReused => crate::Error::KeyReused(
                "this Idempotency-Key was already used for a different change; \
                 nothing was changed: use a new key"
                    .into(),
            ),
        }
    }
}

/// The outcome of a catalog command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogOutcome {
    /// `Reserve`: the reservation or why not.
    Reserved(Result<Reservation, Rejection>),
    /// `Restock`, `SetPrice`, `AddBook`: the book after the change, or why not.
    Changed(Result<Book, Rejection>),
    /// `Forget`: how many reservations were dropped.
    Forgot(u64),
    /// `Fence`: the reservations of older order epochs still held.
    Fenced(Vec<Inherited>),
    /// `Reserve`, `Forget` or `Fence` from an order primary older than
    /// `fence`, the newest order epoch that sent `Fence`. Changes nothing.
    Stale { fence: Epoch },
}

/// An order in the ledger (the original's `(id, item_id, created)`, plus
/// what a buy needs to be checked exactly once).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub item_id: ItemId,
    /// The book's title and topic when it was bought.
    pub title: String,
    pub topic: String,
    pub qty: u64,
    /// Unit cost paid.
    pub cost: u64,
    /// Copies of the book left right after this order's reservation.
    pub remaining: u64,
    /// Milliseconds since the Unix epoch, stamped by the order primary.
    pub created: u64,
    /// The buy's request id (the client's `Idempotency-Key`). The public
    /// API does not show it, so it may be absent from what a client parses.
    #[serde(default)]
    pub request: RequestId,
}

/// A change to the order ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderCommand {
    /// Record a buy as pending (the order primary asks the catalog while it
    /// commits). Idempotent.
    Begin {
        request: RequestId,
        item: ItemId,
        qty: u64,
        created: u64,
    },
    /// Record the catalog's answer; a successful reservation becomes an
    /// order with the next order id. Idempotent.
    Finish {
        request: RequestId,
        outcome: Result<Reservation, Rejection>,
    },
}

/// Where a buy stands in the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BuyStatus {
    Pending {
        item: ItemId,
        qty: u64,
        created: u64,
    },
    Done(Result<Order, Rejection>),
}

/// A command of either group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Catalog(CatalogCommand),
    Order(OrderCommand),
}

/// The outcome of applying a [`Command`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Catalog(CatalogOutcome),
    Order(BuyStatus),
    /// The command belongs to the other group (a routing bug, never applied).
    WrongGroup,
}

/// One log entry: a command at a position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub pos: LogPos,
    pub command: Command,
}
