//! The small value types every part of Pygmy shares: node names, groups,
//! log positions and the book itself.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Milliseconds since the Unix epoch, for the timestamps of orders and
/// heartbeats (a real clock in pygmy-net, sim time in pygmy-sim). Handed in
/// to the front end and the replicas, which never read the wall clock.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// What a front end caches, and what an invalidation names: one `search`
/// result or one `lookup` result. The catalog primary computes these keys
/// for each committed change and pushes them to the front end
/// ([`Request::Invalidate`](crate::transport::message::Request::Invalidate)),
/// whose cache (`frontend/reads/cache.rs`) drops them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CacheKey {
    /// The books of a topic.
    Search(String),
    /// One book by id.
    Lookup(ItemId),
}

/// A view's epoch: every view change increments it, and a replica rejects any
/// message carrying an older one.
pub type Epoch = u64;
/// A log sequence number: the position of an entry in a group's log, from 1.
pub type Lsn = u64;
/// A book's id (an integer on the wire, as in the original).
pub type ItemId = u64;
/// An order's id, assigned by the order ledger when a buy succeeds.
pub type OrderId = u64;
/// The id of one buy request (the client's `Idempotency-Key`, or one the front
/// end makes). A repeated request id yields the first outcome again.
pub type RequestId = String;

/// The name of a node (`frontend`, `catalog-1`, `order-2`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub String);

impl NodeId {
    pub fn new(name: impl Into<String>) -> Self {
        NodeId(name.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for NodeId {
    fn from(s: &str) -> Self {
        NodeId(s.to_string())
    }
}

/// The two replicated services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    Catalog,
    Order,
}

impl Group {
    pub const ALL: [Group; 2] = [Group::Catalog, Group::Order];
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Group::Catalog => "catalog",
            Group::Order => "order",
        })
    }
}

/// A position in a log: the epoch that wrote the entry and its lsn.
/// `LogPos::ZERO` is the position before the first entry. Positions order
/// by epoch first, so "the longest log" is the greatest last position.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct LogPos {
    pub epoch: Epoch,
    pub lsn: Lsn,
}

impl LogPos {
    pub const ZERO: LogPos = LogPos { epoch: 0, lsn: 0 };
    pub fn new(epoch: Epoch, lsn: Lsn) -> Self {
        LogPos { epoch, lsn }
    }
}

impl fmt::Display for LogPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.epoch, self.lsn)
    }
}

/// A book as the original's wire format has it: `{"id","title","cost","count","topic"}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Book {
    pub id: ItemId,
    pub title: String,
    pub cost: u64,
    pub count: u64,
    pub topic: String,
}

/// The digest of no bytes: FNV-1a's offset basis, where [`fnv1a`] chains
/// start.
pub const DIGEST_BASIS: u64 = 0xcbf2_9ce4_8422_2325;

/// 64-bit FNV-1a of `bytes`, continuing a digest `from` ([`DIGEST_BASIS`] to
/// start one). The one digest function of the store: state digests, the
/// running digest of applied commands, the archive's prefix digest and a
/// keyed admin change's fingerprint all use it. Stable across processes
/// and platforms (unlike `std`'s `DefaultHasher`), and fast on the short
/// inputs it gets; not a cryptographic hash (replicas compare digests they
/// computed themselves, nobody forges them).
pub fn fnv1a(from: u64, bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut hasher = fnv::FnvHasher::with_key(from);
    hasher.write(bytes);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_is_the_standard_fnv_1a_and_chains() {
        // Published FNV-1a 64 test vectors: the digest of no bytes is the
        // offset basis, and of "a" is 0xaf63dc4c8601ec8c. Digests on disk
        // (snapshots, archive marks) depend on these values.
        assert_eq!(fnv1a(DIGEST_BASIS, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(DIGEST_BASIS, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(DIGEST_BASIS, b"foobar"), 0x8594_4171_f739_67e8);
        // Continuing a digest is digesting the concatenation.
        assert_eq!(
            fnv1a(fnv1a(DIGEST_BASIS, b"foo"), b"bar"),
            fnv1a(DIGEST_BASIS, b"foobar")
        );
    }
}
