//! A replica's log in memory: the entries after its snapshot, and the rules
//! for comparing two logs.
//!
//! Two facts make the comparison cheap. An entry is written by the single
//! primary of its epoch, once per lsn, so the same `(epoch, lsn)` names the
//! same entry *and the same prefix before it* on every replica (the log
//! matching property). And epochs never decrease along a log. So "do our
//! logs agree up to your end?" is one lookup, and a disagreement can skip
//! back over whole epochs instead of one entry at a time.

use crate::state::command::Entry;
use crate::types::{LogPos, Lsn};

/// Entries after `base` (the position the snapshot covers; `LogPos::ZERO`
/// when there is none), consecutive in lsn.
#[derive(Clone, Debug, Default)]
pub struct MemLog {
    base: LogPos,
    entries: Vec<Entry>,
}

/// What a replica answers when asked for the entries after a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchAnswer {
    /// The position is in my log: here is what follows it.
    Entries(Vec<Entry>),
    /// The position is not in my log: cut yours back to this lsn, ask again.
    Diverged(Lsn),
    /// The position is before my snapshot: take the snapshot.
    Snapshot,
}

impl MemLog {
    pub fn new(base: LogPos, entries: Vec<Entry>) -> Self {
        debug_assert!(entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.pos.lsn == base.lsn + 1 + i as u64));
        MemLog { base, entries }
    }

    /// The position covered by the snapshot.
    pub fn base(&self) -> LogPos {
        self.base
    }

    /// The position of the last entry (or `base` when empty).
    pub fn last(&self) -> LogPos {
        self.entries.last().map(|e| e.pos).unwrap_or(self.base)
    }

    /// The position at `lsn`, if this log still knows it.
    pub fn pos_at(&self, lsn: Lsn) -> Option<LogPos> {
        if lsn == self.base.lsn {
            return Some(self.base);
        }
        self.get(lsn).map(|e| e.pos)
    }

    /// True when this log holds exactly the entry at `pos`.
    pub fn contains(&self, pos: LogPos) -> bool {
        self.pos_at(pos.lsn) == Some(pos)
    }

    pub fn get(&self, lsn: Lsn) -> Option<&Entry> {
        if lsn <= self.base.lsn {
            return None;
        }
        self.entries.get((lsn - self.base.lsn - 1) as usize)
    }

    /// Up to `limit` entries after `lsn` (which must be ≥ `base.lsn`).
    pub fn entries_after(&self, lsn: Lsn, limit: usize) -> Vec<Entry> {
        let start = lsn.saturating_sub(self.base.lsn) as usize;
        self.entries
            .iter()
            .skip(start)
            .take(limit)
            .cloned()
            .collect()
    }

    /// Entries in `(from, to]`.
    pub fn range(&self, from: Lsn, to: Lsn) -> Vec<Entry> {
        self.entries_after(from, to.saturating_sub(from) as usize)
    }

    pub fn push(&mut self, entry: Entry) {
        debug_assert_eq!(entry.pos.lsn, self.last().lsn + 1);
        self.entries.push(entry);
    }

    /// Drops every entry after `lsn` (never into the snapshot).
    pub fn truncate_after(&mut self, lsn: Lsn) {
        let keep = lsn.saturating_sub(self.base.lsn) as usize;
        self.entries.truncate(keep);
    }

    /// Forgets the entries up to `upto`, which a snapshot now covers.
    pub fn compact(&mut self, upto: LogPos) {
        let drop = upto.lsn.saturating_sub(self.base.lsn) as usize;
        self.entries.drain(..drop.min(self.entries.len()));
        self.base = upto;
    }

    /// Empties the log after installing a snapshot at `base`.
    pub fn reset(&mut self, base: LogPos) {
        self.entries.clear();
        self.base = base;
    }

    /// Answers "what follows `after` in your log?" (at most `limit` entries).
    pub fn answer(&self, after: LogPos, limit: usize) -> FetchAnswer {
        if after.lsn < self.base.lsn {
            return FetchAnswer::Snapshot;
        }
        if self.contains(after) {
            return FetchAnswer::Entries(self.entries_after(after.lsn, limit));
        }
        // `after` is not ours. Entries of an epoch all come from its one
        // primary, so our logs agree at most up to where our entries of
        // epoch ≤ after.epoch end; skip back there in one step. The lsn
        // strictly decreases, so the exchange ends.
        let mut m = (after.lsn.saturating_sub(1)).min(self.last().lsn);
        while m > self.base.lsn && self.pos_at(m).is_some_and(|p| p.epoch > after.epoch) {
            m -= 1;
        }
        if m < self.base.lsn || (m == self.base.lsn && self.base.epoch > after.epoch) {
            FetchAnswer::Snapshot
        } else {
            FetchAnswer::Diverged(m)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::command::{CatalogCommand, Command};

    fn entry(epoch: u64, lsn: u64) -> Entry {
        Entry {
            pos: LogPos::new(epoch, lsn),
            command: Command::Catalog(CatalogCommand::Restock { item: 1, qty: lsn }),
        }
    }

    fn log(base: LogPos, epochs: &[u64]) -> MemLog {
        let entries = epochs
            .iter()
            .enumerate()
            .map(|(i, &e)| entry(e, base.lsn + 1 + i as u64))
            .collect();
        MemLog::new(base, entries)
    }

    #[test]
    fn matching_position_returns_what_follows() {
        let l = log(LogPos::ZERO, &[1, 1, 2, 2]);
        assert_eq!(
            l.answer(LogPos::new(1, 2), 10),
            FetchAnswer::Entries(vec![entry(2, 3), entry(2, 4)])
        );
        assert_eq!(
            l.answer(LogPos::ZERO, 1),
            FetchAnswer::Entries(vec![entry(1, 1)])
        );
        assert_eq!(l.answer(l.last(), 10), FetchAnswer::Entries(vec![]));
    }

    #[test]
    fn divergent_suffix_skips_back_over_newer_epochs() {
        // Mine: 1 1 3 3 3; theirs ends at (2, 5) — an old primary's suffix.
        let l = log(LogPos::ZERO, &[1, 1, 3, 3, 3]);
        assert_eq!(l.answer(LogPos::new(2, 5), 10), FetchAnswer::Diverged(2));
        // Theirs is longer than mine and from an older epoch.
        assert_eq!(l.answer(LogPos::new(1, 9), 10), FetchAnswer::Diverged(2));
        // Theirs is longer, same last epoch as my last: cut to my end.
        assert_eq!(l.answer(LogPos::new(3, 9), 10), FetchAnswer::Diverged(5));
    }

    #[test]
    fn positions_before_the_snapshot_get_the_snapshot() {
        let l = log(LogPos::new(2, 10), &[2, 3]);
        assert_eq!(l.answer(LogPos::new(2, 4), 10), FetchAnswer::Snapshot);
        assert_eq!(l.answer(LogPos::new(1, 10), 10), FetchAnswer::Snapshot);
        assert_eq!(
            l.answer(LogPos::new(2, 10), 10),
            FetchAnswer::Entries(vec![entry(2, 11), entry(3, 12)])
        );
    }

    #[test]
    fn truncate_compact_and_reset_keep_positions_consistent() {
        let mut l = log(LogPos::ZERO, &[1, 1, 1, 2]);
        l.truncate_after(2);
        assert_eq!(l.last(), LogPos::new(1, 2));
        l.push(entry(2, 3));
        l.compact(LogPos::new(1, 2));
        assert_eq!(l.base(), LogPos::new(1, 2));
        assert_eq!(l.get(3).map(|e| e.pos), Some(LogPos::new(2, 3)));
        assert!(l.get(2).is_none());
        assert!(l.contains(LogPos::new(1, 2)));
        l.reset(LogPos::new(4, 40));
        assert_eq!(l.last(), LogPos::new(4, 40));
    }

    /// Repeatedly answering and truncating always ends in agreement, and
    /// never cuts the common prefix.
    #[test]
    fn resync_converges_and_keeps_the_common_prefix() {
        let primary = log(LogPos::ZERO, &[1, 1, 2, 2, 4, 4, 4]);
        let mut mine = log(LogPos::ZERO, &[1, 1, 2, 3, 3, 3, 3, 3, 3]);
        for _ in 0..10 {
            match primary.answer(mine.last(), 100) {
                FetchAnswer::Entries(es) => {
                    for e in es {
                        mine.push(e);
                    }
                    break;
                }
                FetchAnswer::Diverged(m) => {
                    assert!(m >= 3, "cut into the common prefix");
                    mine.truncate_after(m);
                }
                FetchAnswer::Snapshot => panic!("no snapshot here"),
            }
        }
        assert_eq!(mine.last(), primary.last());
        assert_eq!(mine.range(0, 7), primary.range(0, 7));
    }
}
