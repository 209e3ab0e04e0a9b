//! The storage boundary of a replica: a durable log of entries, snapshots,
//! and the tiny durable view record.
//!
//! The on-disk format lives in one place, `logstore.rs`, written against the
//! [`Fs`](crate::fs::Fs) trait.

use crate::archive::ArchiveFile;
use crate::command::Entry;
use crate::error::Result;
use crate::state::Snapshot;
use crate::types::Lsn;
use crate::view::View;

/// What a replica finds on its disk when it starts.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    /// The last view it accepted.
    pub view: Option<View>,
    /// The latest snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// The log entries after the snapshot, in lsn order, without gaps.
    pub entries: Vec<Entry>,
}

/// A replica's durable state.
///
/// Contract:
/// - `append` and `truncate_after` are durable only after `sync` returns
///   `Ok`; nothing is acknowledged to anyone before that. After a crash the
///   log holds a prefix of what was appended, cut at or after the last synced
///   point, never a corrupted or reordered entry.
/// - `save_snapshot` and `save_view` are durable when they return `Ok`
///   (write to a temporary file, sync, rename, sync the directory).
/// - An `Err` from any method means the disk can no longer be trusted: the
///   replica stops acknowledging writes.
pub trait Storage: Send + 'static {
    /// Reads everything back (the view, the latest snapshot, the log after it).
    /// Cuts a torn or corrupt tail off the log.
    fn load(&mut self) -> Result<Recovered>;
    /// Appends entries after the current last one (lsns must follow on).
    fn append(&mut self, entries: &[Entry]) -> Result<()>;
    /// Drops every entry with an lsn greater than `lsn`.
    fn truncate_after(&mut self, lsn: Lsn) -> Result<()>;
    /// Makes every append and truncation so far durable.
    fn sync(&mut self) -> Result<()>;
    /// Stores a snapshot durably and drops the log entries it covers. A
    /// snapshot past the log's end (a resync install) empties the log.
    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<()>;
    /// Stores the view durably.
    fn save_view(&mut self, view: &View) -> Result<()>;
    /// The fast half of taking a snapshot at `lsn` (at or below the synced
    /// end), run holding the store: the log entries after `lsn` move to a
    /// fresh log file and the entries the snapshot will cover stay behind
    /// in an older one, so nothing is copied but that short tail. Returns
    /// the slow half: a job that encodes the snapshot and writes it durably,
    /// to run *without* holding the store (appends and syncs go on
    /// meanwhile). Once it succeeded, `finish_snapshot` drops the older
    /// file. The caller keeps snapshot writes (this sequence and
    /// `save_snapshot`) from overlapping. A crash anywhere in between loses
    /// nothing: `load` puts the two files back together.
    fn begin_snapshot(&mut self, lsn: Lsn) -> Result<SnapshotJob>;
    /// Drops the log entries a job from `begin_snapshot` just covered.
    fn finish_snapshot(&mut self) -> Result<()>;
    /// The file for the order ledger's archive of finished buys (see
    /// `archive.rs`), beside the log; created empty if missing.
    fn archive(&mut self) -> Result<Box<dyn ArchiveFile>>;
}

/// See [`Storage::begin_snapshot`].
pub type SnapshotJob = Box<dyn FnOnce(&Snapshot) -> Result<()> + Send>;
