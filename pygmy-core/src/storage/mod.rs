//! The storage boundary of a replica: a durable log of entries, snapshots,
//! and the tiny durable view record.
//!
//! The on-disk format lives in `logstore.rs` (its record framing in
//! `files/framing.rs`), written against the
//! [`Fs`](crate::files::Fs) trait.

pub mod logstore;

use crate::error::Result;
use crate::state::command::Entry;
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
    /// This disk's identity: a random number written when the disk was
    /// new (or its damaged contents were set aside). The view service
    /// records it per member, so a replaced or rebuilt disk is known as
    /// one that no longer holds what the old one held.
    pub disk: u64,
    /// The store held nothing of this replica when it was opened (a new or
    /// emptied folder), or what it held was damaged and set aside: its
    /// identity was written just now.
    pub new_disk: bool,
    /// The damage found when it was opened (the file and what was wrong),
    /// if its contents were set aside.
    pub damage: Option<String>,
    /// A bad tail cut off the log when it was opened (where, and how many
    /// bytes). A torn write after the last sync looks like this, but so
    /// does a damaged last record, which may have been committed.
    pub cut_tail: Option<String>,
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
/// - Damage is not an `Err` of `load`: a store that finds its files damaged
///   (see "Storage faults" in `logstore.rs`) renames them aside and loads
///   as a new, empty disk, saying so in [`Recovered::damage`].
pub trait Storage: Send + 'static {
    /// Reads everything back (the view, the latest snapshot, the log after it).
    /// Cuts a torn tail off the log; sets damaged contents aside.
    fn load(&mut self) -> Result<Recovered>;
    /// Sets every file aside (renamed, never deleted) because of `problem`,
    /// found above the store (the order archive does not match the
    /// snapshot), and loads as a new, empty disk with a new identity.
    fn set_aside(&mut self, problem: &str) -> Result<Recovered>;
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
}

/// See [`Storage::begin_snapshot`].
pub type SnapshotJob = Box<dyn FnOnce(&Snapshot) -> Result<()> + Send>;
