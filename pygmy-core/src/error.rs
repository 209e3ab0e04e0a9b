//! The one error type callers see. Variants are named by what the caller
//! should do: `Unavailable` and `NotPrimary` mean retry (elsewhere), the
//! others are final answers.

use crate::types::{Epoch, ItemId, NodeId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Error {
    /// No such book (or order).
    #[error("{0}")]
    NotFound(String),
    /// The book exists but has fewer copies than asked for.
    #[error("item {0} is out of stock")]
    OutOfStock(ItemId),
    /// The request itself is wrong: malformed id, missing parameter, bad body.
    #[error("{0}")]
    InvalidInput(String),
    /// The request conflicts with existing data (a book id already taken),
    /// or with a request still in progress under the same idempotency key.
    #[error("{0}")]
    Conflict(String),
    /// The idempotency key was used before for a different request (another
    /// item, quantity or change): nothing was done; use a new key.
    #[error("{0}")]
    KeyReused(String),
    /// Nobody can serve this now: retry later, possibly elsewhere.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// This replica is not the primary; `hint` is the primary it knows of.
    #[error("not the primary (try {hint:?})")]
    NotPrimary { hint: Option<NodeId> },
    /// The message carried an epoch older than the receiver's view.
    #[error("stale epoch {got}, current is {current}")]
    StaleEpoch { got: Epoch, current: Epoch },
    /// The caller lacks the token for an internal or admin operation.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Local storage failed; the node stops acknowledging writes.
    #[error("storage: {0}")]
    Storage(String),
    /// The message could not be delivered or answered in time.
    #[error("transport: {0}")]
    Transport(String),
}

impl Error {
    /// True when the same request may succeed if retried (here or elsewhere).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Unavailable(_)
                | Error::NotPrimary { .. }
                | Error::StaleEpoch { .. }
                | Error::Transport(_)
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
