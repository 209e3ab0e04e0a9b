//! The front end's read cache: `search` and `lookup` answers, per key,
//! bounded, invalidated by pushes from the catalog primary.
//!
//! The original cleared its whole cache on every buy. Pygmy keeps each
//! answer until a committed change makes it stale, and proves it stale by
//! log position rather than by time.
//!
//! # How it works
//!
//! Every value comes from a read of committed state that a catalog replica
//! answered *at an lsn*: the value reflects every committed write up to and
//! including that lsn, and none after it. After each commit the catalog
//! primary pushes an invalidation `(keys, lsn)`: "the write at `lsn` changed
//! these keys" (batches carry the highest lsn of the batch, which only makes
//! the rule below stricter). The front end also invalidates a bought item
//! itself, with the reservation's commit lsn, before answering the buy.
//!
//! - **Marks.** For every invalidated key the cache remembers the highest
//!   invalidation lsn it has seen, its *mark*, whether or not a value for the
//!   key is cached. Marks outlive entries on purpose: a read may be in
//!   flight while its key is invalidated.
//! - **The fill rule.** A fill carrying a read at `lsn < mark(key)` is
//!   dropped: the read started before a write the cache already knows of,
//!   so its value may predate that write. A fill at `lsn >= mark(key)`
//!   already reflects every invalidation seen for the key and is kept.
//!   Between two fills of one key the one read at the higher lsn wins,
//!   whatever order they arrive in.
//! - **Reads mark too.** `saw(keys, lsn)` raises marks exactly as an
//!   invalidation does (without counting one): the front end calls it for
//!   the other keys of the items a read answered at `lsn` showed.
//! - **The invalidation rule.** `invalidate(keys, lsn)` raises the marks and
//!   drops the cached values read before `lsn`; a value read at or after
//!   `lsn` already shows that write and stays. `lsn = 0` means "changed, at
//!   an unknown position" (a retried buy whose reservation lsn is unknown):
//!   the value is dropped and no mark is raised, and the primary's own push,
//!   which carries the lsn, follows.
//! - **The floor.** Marks are bounded too (to `4 × capacity + 64`). When
//!   there are too many, the oldest (lowest-lsn) mark is forgotten and the
//!   *floor* is raised to its lsn; the floor acts as a mark of every key.
//!   Forgetting a mark this way is conservative: it can only reject more
//!   fills. `invalidate_all(lsn)` drops every value and raises the floor: the
//!   front end calls it when a new catalog primary confirms its view,
//!   because invalidations the old primary committed but never delivered
//!   died with it.
//! - **Eviction.** At most `capacity` values are held; a fill into a full
//!   cache evicts the least recently used value (a hit or a fill counts as a
//!   use). Capacity 0 turns the cache off.
//!
//! # Guarantees
//!
//! - **Never older than a seen invalidation.** Once `invalidate(keys, l)`
//!   (or `invalidate_all(l)`) has returned, `get` never returns, for those
//!   keys, a value read at an lsn below `l`, whichever order fills and
//!   invalidations arrive in.
//! - **Fresh fills are kept.** A fill read at an lsn at or above every
//!   invalidation the cache has seen is always accepted (with capacity > 0),
//!   so the rules never starve the cache of current values.
//! - **Bounded.** `len() <= capacity()` at all times, and the marks are
//!   bounded by `4 × capacity + 64`.
//! - Deterministic: no clock, no randomness. Hash maps are only looked up,
//!   never iterated; eviction order comes from an ordered map.
//!
//! # Caveats
//!
//! - On its own, staleness is bounded by invalidation delivery, not by
//!   zero: between a commit and the arrival of its invalidation, a value
//!   read before the commit can still be served. The front end closes that
//!   gap for everything a client can know of (see "Fresh reads" in
//!   `frontend/mod.rs`): it invalidates before answering any write, and marks
//!   the other keys of the items every read answer shows ([`Cache::saw`]),
//!   so a hit is never older than a write acknowledged or a state shown.
//! - Lsns are compared across replicas. That is sound because every replica
//!   applies the same committed log, so "state at lsn n" is the same
//!   everywhere; after a view change the whole cache is dropped anyway.
//! - A `search` value is invalidated through its topic key only, so a write
//!   must name every key it changes (the primary names an item's `lookup`
//!   and its topic's `search`).

pub use crate::types::CacheKey;
use crate::types::{Book, Lsn};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A cached answer.
#[derive(Clone, Debug, PartialEq)]
pub enum CachedValue {
    Books(Vec<Book>),
    Book(Book),
}

/// Counters, for benches and the health page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheStats {
    /// `get` calls that returned a value.
    pub hits: u64,
    /// `get` calls that found nothing.
    pub misses: u64,
    /// Fills that stored a value.
    pub fills: u64,
    /// Fills dropped by the fill rule (stale reads, or older than the entry).
    pub rejected_fills: u64,
    /// Values evicted to make room.
    pub evictions: u64,
    /// Keys invalidated (one per key per `invalidate`; `invalidate_all`
    /// counts one).
    pub invalidations: u64,
}

/// One cached value.
struct Entry {
    value: CachedValue,
    /// The lsn the value was read at.
    lsn: Lsn,
    /// Its position in `recency`.
    used: u64,
}

/// The bounded, versioned read cache (see the module docs).
pub struct Cache {
    capacity: usize,
    /// Looked up only, never iterated (so hashing decides nothing).
    entries: HashMap<CacheKey, Entry>,
    /// Use order: `used` tick → key; the first is the least recently used.
    recency: BTreeMap<u64, CacheKey>,
    tick: u64,
    /// The highest invalidation lsn seen per key; only marks above `floor`.
    marks: HashMap<CacheKey, Lsn>,
    /// The same marks ordered by lsn, so the oldest is forgotten first.
    marks_by_lsn: BTreeSet<(Lsn, CacheKey)>,
    /// A mark every key has (forgotten marks, whole-cache invalidations).
    floor: Lsn,
    stats: CacheStats,
    /// Deliberately broken, for the simulation's own tests (see [`Cache::breaking`]).
    broken: Breakage,
}

/// Deliberate breakage of the cache's rules, for the simulation's own
/// tests: each lets the cache serve stale values, so the read checks must
/// catch it. Never set otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Breakage {
    /// Fills read before the key's mark are kept (the fill rule is skipped).
    pub keep_stale_fills: bool,
    /// A fill replaces the cached value even when that was read later.
    pub older_fill_wins: bool,
}

impl Cache {
    /// A cache of at most `capacity` values; 0 turns it off.
    pub fn new(capacity: usize) -> Self {
        Cache {
            capacity,
            entries: HashMap::new(),
            recency: BTreeMap::new(),
            tick: 0,
            marks: HashMap::new(),
            marks_by_lsn: BTreeSet::new(),
            floor: 0,
            stats: CacheStats::default(),
            broken: Breakage::default(),
        }
    }

    /// Deliberately broken, for tests only (see [`Breakage`]).
    pub fn breaking(mut self, broken: Breakage) -> Self {
        self.broken = broken;
        self
    }

    /// The cached value of `key`, if any; counts as a use of it.
    pub fn get(&mut self, key: &CacheKey) -> Option<CachedValue> {
        let Some(entry) = self.entries.get_mut(key) else {
            self.stats.misses += 1;
            return None;
        };
        self.tick += 1;
        touch(&mut self.recency, entry, self.tick);
        self.stats.hits += 1;
        Some(entry.value.clone())
    }

    /// Offers `value`, read at `lsn`, for `key`. Returns whether it was kept:
    /// not when the read is older than an invalidation of the key seen
    /// already, nor older than the value cached now, nor with capacity 0.
    pub fn fill(&mut self, key: CacheKey, value: CachedValue, lsn: Lsn) -> bool {
        if self.capacity == 0 {
            return false;
        }
        if lsn < self.mark(&key) && !self.broken.keep_stale_fills {
            self.stats.rejected_fills += 1;
            return false;
        }
        self.tick += 1;
        if let Some(entry) = self.entries.get_mut(&key) {
            if entry.lsn > lsn && !self.broken.older_fill_wins {
                // Both are allowed; the newer read wins.
                self.stats.rejected_fills += 1;
                return false;
            }
            entry.value = value;
            entry.lsn = lsn;
            touch(&mut self.recency, entry, self.tick);
            self.stats.fills += 1;
            return true;
        }
        while self.entries.len() >= self.capacity {
            let Some((_, oldest)) = self.recency.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
            self.stats.evictions += 1;
        }
        self.recency.insert(self.tick, key.clone());
        let entry = Entry {
            value,
            lsn,
            used: self.tick,
        };
        self.entries.insert(key, entry);
        self.stats.fills += 1;
        true
    }

    /// The write committed at `lsn` changed `keys`: drops their values read
    /// before `lsn` and rejects such fills from now on. `lsn = 0`: changed at
    /// an unknown position; drops the values only.
    pub fn invalidate(&mut self, keys: &[CacheKey], lsn: Lsn) {
        self.stats.invalidations += keys.len() as u64;
        self.raise(keys, lsn);
    }

    /// A read answered at `lsn` showed the items behind `keys` (the front
    /// end passes the keys of every item in the answer other than the one
    /// it fills): their values read before `lsn` may be older than what a
    /// client has now seen, so they are dropped and such fills rejected,
    /// exactly as by an invalidation at `lsn` (but not counted as one).
    /// `lsn = 0` does nothing.
    pub fn saw(&mut self, keys: &[CacheKey], lsn: Lsn) {
        if lsn > 0 {
            self.raise(keys, lsn);
        }
    }

    /// `invalidate` without the counting.
    fn raise(&mut self, keys: &[CacheKey], lsn: Lsn) {
        for key in keys {
            let stale = self
                .entries
                .get(key)
                .is_some_and(|e| lsn == 0 || e.lsn < lsn);
            if stale {
                if let Some(e) = self.entries.remove(key) {
                    self.recency.remove(&e.used);
                }
            }
            if self.capacity > 0 && lsn > self.floor {
                self.raise_mark(key, lsn);
            }
        }
        let limit = self.capacity.saturating_mul(4).saturating_add(64);
        while self.marks.len() > limit {
            let Some((lsn, key)) = self.marks_by_lsn.pop_first() else {
                break;
            };
            self.marks.remove(&key);
            self.floor = self.floor.max(lsn);
        }
    }

    /// Every key may have changed up to `lsn`: drops every value and rejects
    /// fills read before `lsn` for any key.
    pub fn invalidate_all(&mut self, lsn: Lsn) {
        self.entries.clear();
        self.recency.clear();
        self.floor = self.floor.max(lsn);
        while let Some((l, _)) = self.marks_by_lsn.first() {
            if *l > self.floor {
                break;
            }
            if let Some((_, key)) = self.marks_by_lsn.pop_first() {
                self.marks.remove(&key);
            }
        }
        self.stats.invalidations += 1;
    }

    /// Number of cached values.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// The lowest lsn a fill of `key` may have been read at.
    fn mark(&self, key: &CacheKey) -> Lsn {
        self.marks
            .get(key)
            .map_or(self.floor, |m| (*m).max(self.floor))
    }

    fn raise_mark(&mut self, key: &CacheKey, lsn: Lsn) {
        match self.marks.get_mut(key) {
            Some(mark) if *mark >= lsn => {}
            Some(mark) => {
                self.marks_by_lsn.remove(&(*mark, key.clone()));
                *mark = lsn;
                self.marks_by_lsn.insert((lsn, key.clone()));
            }
            None => {
                self.marks.insert(key.clone(), lsn);
                self.marks_by_lsn.insert((lsn, key.clone()));
            }
        }
    }
}

/// Moves `entry` to the most recently used end, at `tick`.
fn touch(recency: &mut BTreeMap<u64, CacheKey>, entry: &mut Entry, tick: u64) {
    if let Some(key) = recency.remove(&entry.used) {
        recency.insert(tick, key);
    }
    entry.used = tick;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ItemId;
    use proptest::prelude::*;

    /// A value that carries the lsn it was read at (as its `count`).
    fn book(id: ItemId, lsn: Lsn) -> CachedValue {
        CachedValue::Book(Book {
            id,
            title: format!("book {id}"),
            cost: 10,
            count: lsn,
            topic: "t".into(),
        })
    }

    fn read_at(value: &CachedValue) -> Lsn {
        match value {
            CachedValue::Book(b) => b.count,
            CachedValue::Books(bs) => bs[0].count,
        }
    }

    fn lookup(id: ItemId) -> CacheKey {
        CacheKey::Lookup(id)
    }

    #[test]
    fn a_fill_is_served_until_invalidated() {
        let mut c = Cache::new(4);
        assert!(c.get(&lookup(1)).is_none());
        assert!(c.fill(lookup(1), book(1, 5), 5));
        assert_eq!(c.get(&lookup(1)), Some(book(1, 5)));
        c.invalidate(&[lookup(1)], 6);
        assert!(c.get(&lookup(1)).is_none());
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.fills, s.invalidations), (1, 2, 1, 1));
    }

    #[test]
    fn a_stale_fill_racing_an_invalidation_is_dropped() {
        // A read at lsn 5 is in flight when the write at lsn 6 is pushed.
        let mut c = Cache::new(4);
        c.invalidate(&[lookup(1)], 6);
        assert!(!c.fill(lookup(1), book(1, 5), 5));
        assert!(c.get(&lookup(1)).is_none());
        assert_eq!(c.stats().rejected_fills, 1);
        // A read that already shows the write is kept.
        assert!(c.fill(lookup(1), book(1, 6), 6));
        assert_eq!(c.get(&lookup(1)), Some(book(1, 6)));
    }

    #[test]
    fn an_invalidation_keeps_a_value_read_after_it() {
        let mut c = Cache::new(4);
        assert!(c.fill(lookup(1), book(1, 9), 9));
        // A late push for a write the cached read already shows.
        c.invalidate(&[lookup(1)], 7);
        assert_eq!(c.get(&lookup(1)), Some(book(1, 9)));
        c.invalidate(&[lookup(1)], 9);
        assert_eq!(c.get(&lookup(1)), Some(book(1, 9)));
        c.invalidate(&[lookup(1)], 10);
        assert!(c.get(&lookup(1)).is_none());
    }

    #[test]
    fn an_invalidation_at_lsn_zero_drops_the_value_but_not_later_fills() {
        let mut c = Cache::new(4);
        assert!(c.fill(lookup(1), book(1, 9), 9));
        c.invalidate(&[lookup(1)], 0);
        assert!(c.get(&lookup(1)).is_none());
        assert!(c.fill(lookup(1), book(1, 3), 3));
    }

    #[test]
    fn the_newer_of_two_fills_wins_in_either_order() {
        let mut c = Cache::new(4);
        assert!(c.fill(lookup(1), book(1, 8), 8));
        assert!(!c.fill(lookup(1), book(1, 7), 7));
        assert_eq!(c.get(&lookup(1)), Some(book(1, 8)));
        assert!(c.fill(lookup(1), book(1, 8), 8), "an equal read replaces");
        assert!(c.fill(lookup(1), book(1, 12), 12));
        assert_eq!(c.get(&lookup(1)), Some(book(1, 12)));
    }

    #[test]
    fn a_read_marks_the_other_keys_of_its_items_like_an_invalidation() {
        let mut c = Cache::new(4);
        let search = CacheKey::Search("t".into());
        assert!(c.fill(search.clone(), book(1, 3), 3));
        // A lookup of book 1 answered at lsn 8 showed a newer state of it.
        c.saw(std::slice::from_ref(&search), 8);
        assert!(c.get(&search).is_none(), "the older search is dropped");
        assert!(!c.fill(search.clone(), book(1, 5), 5), "and not refilled");
        assert!(c.fill(search.clone(), book(1, 8), 8));
        c.saw(std::slice::from_ref(&search), 6);
        assert_eq!(c.get(&search), Some(book(1, 8)), "a newer value stays");
        c.saw(std::slice::from_ref(&search), 0);
        assert_eq!(c.get(&search), Some(book(1, 8)), "lsn 0 says nothing");
        assert_eq!(c.stats().invalidations, 0, "reads are not invalidations");
    }

    #[test]
    fn the_broken_caches_break_exactly_their_rule() {
        let stale = Breakage {
            keep_stale_fills: true,
            ..Breakage::default()
        };
        let mut c = Cache::new(4).breaking(stale);
        c.invalidate(&[lookup(1)], 6);
        assert!(
            c.fill(lookup(1), book(1, 5), 5),
            "a fill older than its mark is kept"
        );
        let older = Breakage {
            older_fill_wins: true,
            ..Breakage::default()
        };
        let mut c = Cache::new(4).breaking(older);
        assert!(c.fill(lookup(1), book(1, 9), 9));
        assert!(
            c.fill(lookup(1), book(1, 7), 7),
            "an older fill replaces a newer value"
        );
        assert_eq!(c.get(&lookup(1)), Some(book(1, 7)));
        c.invalidate(&[lookup(1)], 10);
        assert!(
            !c.fill(lookup(1), book(1, 8), 8),
            "the mark rule still holds"
        );
    }

    #[test]
    fn the_least_recently_used_value_is_evicted() {
        let mut c = Cache::new(2);
        c.fill(lookup(1), book(1, 1), 1);
        c.fill(lookup(2), book(2, 1), 1);
        assert!(c.get(&lookup(1)).is_some()); // 2 is now the oldest use
        c.fill(lookup(3), book(3, 1), 1);
        assert_eq!(c.len(), 2);
        assert!(c.get(&lookup(2)).is_none());
        assert!(c.get(&lookup(1)).is_some());
        assert!(c.get(&lookup(3)).is_some());
        assert_eq!(c.stats().evictions, 1);
        // Refilling a cached key evicts nothing.
        c.fill(lookup(3), book(3, 2), 2);
        assert_eq!((c.len(), c.stats().evictions), (2, 1));
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let mut c = Cache::new(0);
        assert!(!c.fill(lookup(1), book(1, 1), 1));
        c.invalidate(&[lookup(1)], 5);
        assert!(c.is_empty() && c.get(&lookup(1)).is_none());
        assert!(
            c.marks.is_empty(),
            "no marks are kept when nothing is cached"
        );
    }

    #[test]
    fn invalidate_all_drops_everything_and_rejects_older_reads_of_any_key() {
        let mut c = Cache::new(4);
        c.fill(lookup(1), book(1, 3), 3);
        c.fill(CacheKey::Search("t".into()), book(2, 3), 3);
        c.invalidate(&[lookup(2)], 4);
        c.invalidate_all(10);
        assert!(c.is_empty());
        assert!(
            c.marks.is_empty(),
            "marks at or below the floor are dropped"
        );
        assert!(!c.fill(lookup(7), book(7, 9), 9));
        assert!(c.fill(lookup(7), book(7, 10), 10));
    }

    #[test]
    fn forgotten_marks_raise_the_floor_oldest_first() {
        let mut c = Cache::new(1); // at most 68 marks
        for id in 0..100 {
            c.invalidate(&[lookup(id)], 100 + id);
        }
        assert_eq!(c.marks.len(), 68);
        assert_eq!(c.marks_by_lsn.len(), 68);
        // The 32 oldest marks (lsn 100..=131) were forgotten into the floor.
        assert_eq!(c.floor, 131);
        assert!(!c.fill(lookup(0), book(0, 130), 130), "floor applies");
        assert!(c.fill(lookup(0), book(0, 131), 131));
        assert!(!c.fill(lookup(99), book(99, 198), 198), "own mark applies");
    }

    /// One step of a random schedule of cache calls.
    #[derive(Clone, Debug)]
    enum Op {
        Get(ItemId),
        Fill(ItemId, Lsn),
        Invalidate(Vec<ItemId>, Lsn),
        InvalidateAll(Lsn),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few keys and lsns, so fills race invalidations of the same key.
        prop_oneof![
            4 => (0..12u64).prop_map(Op::Get),
            4 => (0..12u64, 0..40u64).prop_map(|(k, l)| Op::Fill(k, l)),
            3 => (proptest::collection::vec(0..12u64, 1..4), 0..40u64)
                .prop_map(|(ks, l)| Op::Invalidate(ks, l)),
            1 => (0..40u64).prop_map(Op::InvalidateAll),
        ]
    }

    proptest! {
        /// Whatever the interleaving of fills and invalidations, a value is
        /// never older than an invalidation the cache has seen for its key,
        /// a value dropped at lsn 0 does not come back, the cache never holds
        /// more than `capacity` values, and a fill at or above every seen
        /// invalidation is kept.
        #[test]
        fn never_serves_a_value_older_than_a_seen_invalidation(
            capacity in 0..6usize,
            ops in proptest::collection::vec(op(), 1..200),
        ) {
            let mut c = Cache::new(capacity);
            // The model: per key, the highest invalidation lsn seen, and
            // whether a value filled since the last invalidation may exist.
            let mut seen: BTreeMap<ItemId, Lsn> = BTreeMap::new();
            let mut seen_all: Lsn = 0;
            let mut highest: Lsn = 0;
            let mut dropped: BTreeSet<ItemId> = BTreeSet::new();
            let mut newest_fill: BTreeMap<ItemId, Lsn> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Get(k) => {
                        if let Some(v) = c.get(&lookup(k)) {
                            let floor = seen.get(&k).copied().unwrap_or(0).max(seen_all);
                            prop_assert!(read_at(&v) >= floor,
                                "key {} served a read at {} after an invalidation at {}",
                                k, read_at(&v), floor);
                            prop_assert!(!dropped.contains(&k), "key {} came back", k);
                        }
                    }
                    Op::Fill(k, l) => {
                        let kept = c.fill(lookup(k), book(k, l), l);
                        let newest = newest_fill.get(&k).copied().unwrap_or(0);
                        if capacity > 0 && l >= highest && l >= newest {
                            prop_assert!(kept, "a fresh fill of {} at {} was dropped", k, l);
                        }
                        if kept {
                            dropped.remove(&k);
                            newest_fill.insert(k, newest.max(l));
                        }
                    }
                    Op::Invalidate(ks, l) => {
                        let keys: Vec<_> = ks.iter().map(|k| lookup(*k)).collect();
                        c.invalidate(&keys, l);
                        for k in ks {
                            let m = seen.entry(k).or_insert(0);
                            *m = (*m).max(l);
                            if l == 0 {
                                dropped.insert(k);
                            }
                        }
                        highest = highest.max(l);
                    }
                    Op::InvalidateAll(l) => {
                        c.invalidate_all(l);
                        seen_all = seen_all.max(l);
                        highest = highest.max(l);
                        prop_assert!(c.is_empty());
                    }
                }
                prop_assert!(c.len() <= capacity, "{} values > capacity {}", c.len(), capacity);
                prop_assert_eq!(c.recency.len(), c.entries.len());
                prop_assert_eq!(c.marks_by_lsn.len(), c.marks.len());
            }
        }

        /// With more keys than marks fit, the floor keeps the guarantee.
        #[test]
        fn forgetting_marks_never_lets_a_stale_fill_in(
            lsns in proptest::collection::vec(1..1000u64, 1..300),
            stale_by in 1..50u64,
        ) {
            let mut c = Cache::new(1);
            let mut seen: BTreeMap<ItemId, Lsn> = BTreeMap::new();
            for (i, l) in lsns.iter().enumerate() {
                let k = i as ItemId;
                c.invalidate(&[lookup(k)], *l);
                seen.insert(k, *l);
                prop_assert!(c.marks.len() <= 68);
            }
            for (k, l) in seen {
                let stale = l.saturating_sub(stale_by);
                prop_assert!(!c.fill(lookup(k), book(k, stale), stale), "key {} at {}", k, stale);
            }
        }
    }
}
