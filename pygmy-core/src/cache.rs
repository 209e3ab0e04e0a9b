//! STAND-IN (lead) until helper H3 lands the real module.
use crate::types::{Book, ItemId, Lsn};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the front end caches: one `search` result or one `lookup` result.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CacheKey {
    Search(String),
    Lookup(ItemId),
}
#[derive(Clone, Debug, PartialEq)]
pub enum CachedValue {
    Books(Vec<Book>),
    Book(Book),
}
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub fills: u64,
    pub rejected_fills: u64,
    pub evictions: u64,
    pub invalidations: u64,
}
pub struct Cache {
    capacity: usize,
    entries: BTreeMap<CacheKey, (u64, CachedValue, Lsn)>,
    lru: BTreeMap<u64, CacheKey>,
    tick: u64,
    marks: BTreeMap<CacheKey, Lsn>,
    floor: Lsn,
    stats: CacheStats,
}
impl Cache {
    pub fn new(capacity: usize) -> Self {
        Cache {
            capacity,
            entries: BTreeMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            marks: BTreeMap::new(),
            floor: 0,
            stats: CacheStats::default(),
        }
    }
    pub fn get(&mut self, key: &CacheKey) -> Option<CachedValue> {
        self.tick += 1;
        let tick = self.tick;
        match self.entries.get_mut(key) {
            Some(e) => {
                self.lru.remove(&e.0);
                e.0 = tick;
                self.lru.insert(tick, key.clone());
                self.stats.hits += 1;
                Some(e.1.clone())
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }
    pub fn fill(&mut self, key: CacheKey, value: CachedValue, lsn: Lsn) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let mark = self.marks.get(&key).copied().unwrap_or(0).max(self.floor);
        if lsn < mark || self.entries.get(&key).is_some_and(|e| e.2 > lsn) {
            self.stats.rejected_fills += 1;
            return false;
        }
        self.tick += 1;
        if let Some(old) = self.entries.remove(&key) {
            self.lru.remove(&old.0);
        }
        while self.entries.len() >= self.capacity {
            let Some((_, k)) = self.lru.pop_first() else {
                break;
            };
            self.entries.remove(&k);
            self.stats.evictions += 1;
        }
        self.lru.insert(self.tick, key.clone());
        self.entries.insert(key, (self.tick, value, lsn));
        self.stats.fills += 1;
        true
    }
    pub fn invalidate(&mut self, keys: &[CacheKey], lsn: Lsn) {
        for k in keys {
            if let Some(e) = self.entries.remove(k) {
                self.lru.remove(&e.0);
            }
            let m = self.marks.entry(k.clone()).or_insert(0);
            *m = (*m).max(lsn);
            self.stats.invalidations += 1;
        }
        while self.marks.len() > 4 * self.capacity + 64 {
            let Some((_, l)) = self.marks.pop_first() else {
                break;
            };
            self.floor = self.floor.max(l);
        }
    }
    pub fn invalidate_all(&mut self, lsn: Lsn) {
        self.entries.clear();
        self.lru.clear();
        self.floor = self.floor.max(lsn);
        self.stats.invalidations += 1;
    }
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
}
