//! STUB — being written (read cache).
use crate::types::ItemId;
use serde::{Deserialize, Serialize};

/// What the front end caches: one `search` result or one `lookup` result.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CacheKey {
    Search(String),
    Lookup(ItemId),
}
