//! The on-disk format of a replica's storage, and the only place it lives.
//!
//! A [`LogStore`] keeps three files in its directory (and, while a snapshot
//! is being written, `log.prev`), all written against the
//! [`Fs`] trait so the same code runs on a real disk, on turmoil's simulated
//! disk and in memory:
//!
//! - `log`: append-only records, one per [`Entry`], in lsn order without
//!   gaps. An in-memory index (lsn → byte offset) makes `truncate_after` a
//!   single `set_len`.
//! - `snapshot`: one record holding the latest [`Snapshot`].
//! - `view`: one record holding the last accepted [`View`].
//! - `orders` (order replicas): the archive of finished buys, whose format
//!   and durability rules are in `archive.rs`; it uses the same framing.
//! - `disk-id`: one record holding this disk's identity, a random `u64`
//!   written when the folder was found empty (see "Storage faults").
//!
//! Every record is framed as `[len: u32 LE][crc32(payload): u32 LE][payload]`
//! with a JSON payload, so a torn or corrupt record is recognised by its
//! length or its CRC.
//!
//! # Guarantees
//!
//! - **Appends and truncations are durable after `sync`** (an fsync of the
//!   log), and `sync` costs nothing when nothing changed since the last one.
//!   After a crash the log holds what it held at the last sync, plus possibly
//!   some later appends, cut at the first torn, corrupt or out-of-sequence
//!   record: `load` cuts the file there (`set_len`), so later appends follow
//!   on from valid data.
//! - **What `load` returns is durable**: it syncs the log (and `open` syncs
//!   the directory), because after a restart without a crash the log may
//!   hold appends that never reached the disk, and the caller treats every
//!   entry it loads as its own durable log.
//! - **Snapshots and views are durable when saved**: written to `NAME.tmp`
//!   and synced, renamed over `NAME`, then the directory is synced. A crash
//!   leaves either the old file or the new one, never a mix.
//! - **Saving a snapshot compacts the log**: the log is synced first, then the
//!   entries the snapshot does not cover are rewritten to `log.tmp`, synced,
//!   renamed over `log` and the directory synced. A crash between the
//!   snapshot's rename and the log's rename leaves entries the snapshot
//!   already covers at the front of the log; `load` skips them. That is the
//!   path of an installed snapshot.
//! - **A replica's own snapshots split the log instead** (`begin_snapshot`):
//!   only the entries after the snapshot's lsn — the few not yet applied —
//!   move to a fresh `log`, and the covered ones wait in `log.prev` until
//!   the snapshot is durable (`finish_snapshot` removes it). So the cost
//!   under the store's lock does not grow with the log, which grows with
//!   the state. Every crash point of the split loads the whole log: `load`
//!   merges `log.prev` back (where both files hold an lsn, `log` is right).
//! - **A failed write poisons the store**: after an I/O error on a write or
//!   sync, every later call fails too. Retrying an fsync that failed may
//!   report success for data the kernel already dropped, so the store never
//!   trusts the disk again; the replica restarts from what `load` finds.
//!
//! # Storage faults
//!
//! The fault model: while a replica is down, any of its files may be
//! damaged — a torn or lost tail of the log, a flipped bit anywhere in the
//! log, snapshot, archive, view record or identity, a missing file, an
//! emptied folder (a replaced disk). As long as another replica of the
//! group holds an intact copy of every committed entry, nothing committed
//! is lost (the replication side is in `replication/mod.rs` and
//! `viewservice.rs`). What the store does on `open`:
//!
//! - **A new disk** (no identity, no data) gets an identity, from the
//!   random number the caller hands in, and loads empty
//!   ([`Recovered::new_disk`]). An emptied folder is one: its identity is
//!   not the old one, which is how the view service knows it holds nothing.
//! - **A torn tail** — the last record short or failing its CRC, with no
//!   valid record anywhere after it — is cut, and reported
//!   ([`Recovered::cut_tail`]). It is what a crash leaves after appends not
//!   yet synced, but a damaged last record (perhaps committed), or a tail
//!   of synced records lost whole, looks the same: the replica treats its
//!   log's end as uncertain after every restart.
//! - **Damage** — a bad record followed by a valid one, a record whose lsn
//!   breaks the sequence, a log starting past the snapshot (a missing
//!   snapshot), a missing log, a bad record in `log.prev` (a synced log), a
//!   corrupt view, snapshot or identity — is never cut around. Every file
//!   is renamed aside (`NAME.damaged-N`, with the reason in
//!   `damaged-N.why`; nothing is deleted), the folder becomes a new disk
//!   with a new identity, and [`Recovered::damage`] names the file and what
//!   was wrong with it. The replica then rebuilds from an intact member.
//! - **A missing identity beside data** (a folder from a build before
//!   identities, or the identity file lost) keeps its data, checked as
//!   above, under a new identity: the view service counts the replica as
//!   holding committed entries only once it has synchronised again.
//!
//! The decoders over bytes — [`decode_record`] and
//! [`decode_single`](crate::files::framing::decode_single) (view, snapshot,
//! view record, identity), in `files/framing.rs`, and [`check_log`] (a
//! whole log) — return
//! an error, never panic, and check every length field against the bytes
//! before reading or allocating.
//!
//! # Caveats
//!
//! - A log record whose CRC holds but whose JSON does not decode is a
//!   software mismatch, not a torn write: `load` refuses it with an error
//!   rather than cut the log, because cutting would drop acknowledged entries.
//! - Compaction reads and rewrites the part of the log the snapshot does not
//!   cover, so its cost is the size of that tail (short, when the replica
//!   splits at its own commit point).
//! - Directories are created once, at `open`, and each of their ancestors is
//!   synced then so that the directory itself survives a crash.

use crate::error::{Error, Result};
use crate::files::framing::{
    create_dir_durably, decode_record, encode_value, io_err, read_single_checked, storage_err,
    tmp_path, write_single, HEADER_LEN,
};
use crate::files::{Fs, FsFile};
use crate::state::command::Entry;
use crate::state::Snapshot;
use crate::storage::{Recovered, SnapshotJob, Storage};
use crate::types::Lsn;
use crate::view::View;
use std::io;
use std::path::{Path, PathBuf};

const LOG: &str = "log";
const SNAPSHOT: &str = "snapshot";
/// The older part of a log split by a snapshot in progress.
const PREV: &str = "log.prev";
/// A log's tail being moved to a fresh file.
const NEXT: &str = "log.next";
const VIEW: &str = "view";
/// The disk's identity (a random `u64` written when the disk was new).
const DISK_ID: &str = "disk-id";
/// The order ledger's archive file, which its opener keeps in a replica's
/// folder beside the log (`state/archive.rs`, [`opener`]). The store knows
/// it only by name: a set-aside renames it with the rest, and a file there
/// counts as data.
///
/// [`opener`]: crate::state::archive::opener
const ARCHIVE: &str = "orders";
/// Every file a store may hold: what a set-aside renames.
const FILES: [&str; 11] = [
    LOG,
    PREV,
    NEXT,
    "log.tmp",
    SNAPSHOT,
    "snapshot.tmp",
    VIEW,
    "view.tmp",
    ARCHIVE,
    DISK_ID,
    "disk-id.tmp",
];

// ---------------------------------------------------------------------------
// The log store.

/// A replica's [`Storage`] in one directory (see the module docs).
pub struct LogStore<F: Fs> {
    fs: F,
    dir: PathBuf,
    log_path: PathBuf,
    /// The log, open for appending. `None` only while it is being replaced,
    /// or after that failed (and the store is poisoned).
    log: Option<F::File>,
    /// The lsn just before the first live entry of the `log` file: the
    /// stored snapshot's (0 without one), or during a snapshot the lsn it
    /// will cover (the entries up to it wait in `log.prev`).
    log_base: Lsn,
    /// `log.prev` exists: a snapshot begun and not finished.
    prev: bool,
    /// `offsets[i]`: byte offset of the entry with lsn `log_base + 1 + i`.
    offsets: Vec<u64>,
    /// Length of the valid log: where the next record goes.
    end: u64,
    /// Something was appended or truncated since the last sync.
    dirty: bool,
    /// The first write or sync failure; once set every call fails with it.
    failed: Option<String>,
    /// The identity to write if the disk is new or damaged.
    new_disk_id: u64,
    /// This disk's identity.
    disk: u64,
    /// The disk was new, or set aside, when the store was opened.
    new_disk: bool,
    /// The damage that had the contents set aside, if any.
    damage: Option<String>,
    /// The torn tail cut off the log when it was opened, if any.
    cut_tail: Option<String>,
    /// Deliberately broken (see `unsafe_trust_damage`).
    trust_damage: bool,
}

/// What a scan of the log bytes found.
struct Scan {
    entries: Vec<Entry>,
    offsets: Vec<u64>,
    end: u64,
}

impl<F: Fs> LogStore<F> {
    /// Opens (creating if needed) the store in `dir`, cuts any torn tail
    /// off its log, and sets damaged contents aside (see the module docs).
    /// `new_disk_id` is the identity written if the disk is new or was
    /// damaged: pass a random number (the simulation draws it from its
    /// seed), so a replaced disk never has the old one's identity.
    pub fn open(fs: F, dir: impl Into<PathBuf>, new_disk_id: u64) -> Result<Self> {
        Self::open_with(fs, dir.into(), new_disk_id, false)
    }

    /// Deliberately broken, for the simulation's own tests: a store that
    /// trusts a damaged disk as earlier builds did — it cuts the log at the
    /// first bad record, whatever follows, reads a damaged view, snapshot
    /// or identity as missing, and never sets anything aside. Never use
    /// otherwise.
    pub fn open_trusting_damage(fs: F, dir: impl Into<PathBuf>, new_disk_id: u64) -> Result<Self> {
        Self::open_with(fs, dir.into(), new_disk_id, true)
    }

    fn open_with(fs: F, dir: PathBuf, new_disk_id: u64, trust_damage: bool) -> Result<Self> {
        create_dir_durably(&fs, &dir)?;
        let log_path = dir.join(LOG);
        let mut store = LogStore {
            fs,
            dir,
            log_path,
            log: None,
            log_base: 0,
            prev: false,
            offsets: Vec::new(),
            end: 0,
            dirty: false,
            failed: None,
            new_disk_id,
            disk: 0,
            new_disk: false,
            damage: None,
            cut_tail: None,
            trust_damage,
        };
        store.identify()?;
        store.recover()?;
        Ok(store)
    }

    /// This disk's identity (see [`Recovered::disk`]).
    pub fn disk_id(&self) -> u64 {
        self.disk
    }

    /// Reads the disk identity, writing one on a new disk; sets the
    /// contents aside if the identity itself is damaged.
    fn identify(&mut self) -> Result<()> {
        let id_path = self.dir.join(DISK_ID);
        let id: Option<u64> = match read_single_checked(&self.fs, &id_path)? {
            Ok(id) => id,
            Err(_) if self.trust_damage => None,
            Err(problem) => return self.set_aside_all(&problem),
        };
        if let Some(id) = id {
            self.disk = id;
            return Ok(());
        }
        let mut present = Vec::new();
        for name in [LOG, PREV, SNAPSHOT, VIEW, ARCHIVE] {
            let path = self.dir.join(name);
            let found = self.fs.probe(&path).map_err(|e| io_err(&path, "read", e))?;
            // An empty log or archive is what a new disk holds.
            let holds = match name {
                LOG | ARCHIVE => found == Some(true),
                _ => found.is_some(),
            };
            if holds {
                present.push(name);
            }
        }
        if present.is_empty() {
            self.init_disk()?;
            self.new_disk = true;
            tracing::info!(dir = %self.dir.display(), disk = self.disk, "new disk: no data here; wrote its identity");
            return Ok(());
        }
        // The files may be whole (a folder from a build before disk
        // identities) or not: keep them, checked as ever, under a new
        // identity, so the view service counts this replica as holding
        // committed entries only once it has been synchronised again.
        tracing::warn!(
            file = %id_path.display(),
            found = %present.join(", "),
            "disk identity missing though the folder holds data; writing a new one (this replica resynchronises before it counts as intact)"
        );
        self.disk = self.new_disk_id;
        let result = write_single(&self.fs, &id_path, &self.disk);
        self.poison(result)
    }

    /// Makes the folder a new disk: an empty log and a new identity, both
    /// durable.
    fn init_disk(&mut self) -> Result<()> {
        let log = self
            .fs
            .open_append(&self.log_path)
            .map_err(|e| io_err(&self.log_path, "open", e))?;
        // The log was just created: its directory entry survives a crash
        // only once the directory is synced (the identity's write syncs it).
        self.log = Some(log);
        self.disk = self.new_disk_id;
        let result = write_single(&self.fs, &self.dir.join(DISK_ID), &self.disk);
        self.poison(result)
    }

    /// Renames every file of the store aside (`NAME.damaged-N`, with the
    /// reason in `damaged-N.why`), then makes the folder a new disk. Nothing
    /// is deleted: an operator can inspect, or recover by hand, what was set
    /// aside.
    fn set_aside_all(&mut self, problem: &str) -> Result<()> {
        tracing::error!(
            dir = %self.dir.display(),
            problem,
            "storage damaged: setting its files aside; this replica starts empty and rebuilds from a peer"
        );
        self.log = None;
        let mut n = 1;
        loop {
            let why = self.dir.join(format!("damaged-{n}.why"));
            if self
                .fs
                .probe(&why)
                .map_err(|e| io_err(&why, "read", e))?
                .is_none()
            {
                break;
            }
            n += 1;
        }
        for name in FILES {
            let path = self.dir.join(name);
            if self
                .fs
                .probe(&path)
                .map_err(|e| io_err(&path, "read", e))?
                .is_some()
            {
                let aside = self.dir.join(format!("{name}.damaged-{n}"));
                self.fs
                    .rename(&path, &aside)
                    .map_err(|e| io_err(&path, "set aside", e))?;
            }
        }
        let why = self.dir.join(format!("damaged-{n}.why"));
        self.fs
            .write_synced(&why, problem.as_bytes())
            .map_err(|e| io_err(&why, "write", e))?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| io_err(&self.dir, "sync_dir", e))?;
        self.init_disk()?;
        self.new_disk = true;
        self.damage = Some(problem.to_string());
        Ok(())
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The lsn of the last entry (or of the snapshot when the log is empty).
    pub fn last_lsn(&self) -> Lsn {
        self.log_base + self.offsets.len() as u64
    }

    /// Fails if an earlier write failed (see "poisons" in the module docs).
    fn check(&self) -> Result<()> {
        match &self.failed {
            Some(msg) => Err(Error::Storage(format!(
                "{msg} (an earlier write failed; the store no longer trusts its disk)"
            ))),
            None => Ok(()),
        }
    }

    /// Passes `result` on, poisoning the store if it is an error.
    fn poison<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            self.failed.get_or_insert_with(|| e.to_string());
        }
        result
    }

    /// Runs one operation on the open log file, poisoning the store on error.
    fn with_log<T>(
        &mut self,
        op: &str,
        f: impl FnOnce(&mut F::File) -> io::Result<T>,
    ) -> Result<T> {
        let result = match self.log.as_mut() {
            Some(file) => f(file).map_err(|e| io_err(&self.log_path, op, e)),
            None => Err(storage_err(&self.log_path, "not open")),
        };
        self.poison(result)
    }

    /// Reads everything back, cuts a torn tail off the log and rebuilds the
    /// index; sets the contents aside if they are damaged.
    fn recover(&mut self) -> Result<Recovered> {
        let mut recovered = match self.examine()? {
            Ok(recovered) => recovered,
            Err(problem) => {
                self.set_aside_all(&problem)?;
                self.examine()?.map_err(|p| storage_err(&self.dir, p))?
            }
        };
        recovered.disk = self.disk;
        recovered.new_disk = self.new_disk;
        recovered.damage = self.damage.clone();
        recovered.cut_tail = self.cut_tail.clone();
        Ok(recovered)
    }

    /// Reads everything back: `Ok(Err(problem))` when the files are damaged
    /// (nothing was changed then), an error for an I/O failure or a software
    /// mismatch (a record that passes its CRC but does not decode).
    fn examine(&mut self) -> Result<std::result::Result<Recovered, String>> {
        if let Err(problem) = self.merge_prev()? {
            return Ok(Err(problem));
        }
        let view: Option<View> = match read_single_checked(&self.fs, &self.dir.join(VIEW))? {
            Ok(view) => view,
            Err(_) if self.trust_damage => None,
            Err(problem) => return Ok(Err(problem)),
        };
        let snapshot: Option<Snapshot> =
            match read_single_checked(&self.fs, &self.dir.join(SNAPSHOT))? {
                Ok(snapshot) => snapshot,
                Err(_) if self.trust_damage => None,
                Err(problem) => return Ok(Err(problem)),
            };
        let snapshot_lsn = snapshot.as_ref().map_or(0, |s| s.pos.lsn);
        let bytes = match self
            .fs
            .read(&self.log_path)
            .map_err(|e| io_err(&self.log_path, "read", e))?
        {
            Some(bytes) => bytes,
            None if self.trust_damage => Vec::new(),
            None => return Ok(Err(format!("{}: missing", self.log_path.display()))),
        };
        let scan = match scan_log(&bytes, snapshot_lsn, &self.log_path)? {
            Ok(scan) => scan,
            Err(problem) if self.trust_damage => {
                tracing::warn!(
                    problem,
                    "trusting a damaged log (deliberately broken build)"
                );
                scan_prefix(&bytes, snapshot_lsn, &self.log_path)?
            }
            Err(problem) => return Ok(Err(problem)),
        };
        if self.log.is_none() {
            let log = self
                .fs
                .open_append(&self.log_path)
                .map_err(|e| io_err(&self.log_path, "open", e))?;
            self.log = Some(log);
        }
        if scan.end < bytes.len() as u64 {
            let cut = format!(
                "{}: cut {} bytes after the last whole record, at byte {}",
                self.log_path.display(),
                bytes.len() as u64 - scan.end,
                scan.end
            );
            tracing::warn!(
                cut,
                "torn log tail cut (a write after the last sync, or a damaged last record: this replica's log end is uncertain until it resynchronises)"
            );
            self.cut_tail = Some(cut);
            self.with_log("cut torn tail", |f| f.set_len(scan.end))?;
        }
        // Make what is returned durable: after a restart without a crash the
        // log may hold appends that reached only the page cache, and the
        // caller will treat every entry it loads as its durable log.
        self.with_log("sync", |f| f.sync())?;
        self.dirty = false;
        self.log_base = snapshot_lsn;
        self.prev = false;
        self.offsets = scan.offsets;
        self.end = scan.end;
        Ok(Ok(Recovered {
            view,
            snapshot,
            entries: scan.entries,
            ..Recovered::default()
        }))
    }

    /// Puts a log split by an unfinished snapshot back into one file.
    ///
    /// `log.prev` holds the older entries and `log` the newer; where both
    /// hold an lsn (a crash hit while `log.prev` was being cut), `log` is
    /// right. The merged log (`log.prev` up to `log`'s first entry, then
    /// `log`) replaces `log` durably before `log.prev` goes, so a crash
    /// during the merge leaves something this merge reads the same way.
    /// Entries the stored snapshot covers are left for `scan_log` to skip.
    fn merge_prev(&mut self) -> Result<std::result::Result<(), String>> {
        let (prev_path, next_path) = (self.dir.join(PREV), self.dir.join(NEXT));
        // A roll that crashed before its rename: `log` is still whole.
        if self
            .fs
            .read(&next_path)
            .map_err(|e| io_err(&next_path, "read", e))?
            .is_some()
        {
            self.fs
                .remove(&next_path)
                .map_err(|e| io_err(&next_path, "remove", e))?;
        }
        let Some(prev) = self
            .fs
            .read(&prev_path)
            .map_err(|e| io_err(&prev_path, "read", e))?
        else {
            return Ok(Ok(()));
        };
        let log = self
            .fs
            .read(&self.log_path)
            .map_err(|e| io_err(&self.log_path, "read", e))?
            .unwrap_or_default();
        let first_in_log = first_lsn(&log, &self.log_path)?;
        // `log.prev` was a synced log when it was renamed: every record
        // before the limit must be whole.
        let valid = valid_before(&prev, first_in_log, &prev_path)?;
        if valid < prev.len() && decode_record(&prev, valid).is_none() && !self.trust_damage {
            return Ok(Err(format!(
                "{}: bad record at byte {valid} of {}",
                prev_path.display(),
                prev.len()
            )));
        }
        let mut merged = prev[..valid].to_vec();
        merged.extend_from_slice(&log);
        self.log = None;
        let tmp = tmp_path(&self.log_path);
        let result = self
            .fs
            .write_synced(&tmp, &merged)
            .and_then(|_| self.fs.rename(&tmp, &self.log_path))
            .and_then(|_| self.fs.sync_dir(&self.dir))
            .and_then(|_| self.fs.remove(&prev_path))
            .and_then(|_| self.fs.sync_dir(&self.dir))
            .and_then(|_| self.fs.open_append(&self.log_path));
        let file = result.map_err(|e| io_err(&self.log_path, "merge log.prev into", e))?;
        self.log = Some(file);
        Ok(Ok(()))
    }

    /// Moves the entries after `lsn` to a fresh `log`, leaving the older
    /// ones in `log.prev` (see `Storage::begin_snapshot`). The steps, each
    /// safe to crash after: write the tail to `log.next` and sync it; rename
    /// `log` to `log.prev` (a crash leaves the whole log there); rename
    /// `log.next` to `log` and sync the directory (a crash leaves the tail
    /// in both files, and `log` wins); cut `log.prev` after `lsn`.
    fn roll(&mut self, lsn: Lsn) -> Result<()> {
        // Nothing may be pending on the file that is about to be renamed.
        if self.dirty {
            self.with_log("sync", |f| f.sync())?;
            self.dirty = false;
        }
        let first_kept = (lsn - self.log_base) as usize;
        let from = self.offsets.get(first_kept).copied().unwrap_or(self.end);
        let tail = self.read_tail(from)?;
        let (prev_path, next_path) = (self.dir.join(PREV), self.dir.join(NEXT));
        self.log = None;
        let fs = &self.fs;
        fs.write_synced(&next_path, &tail)
            .and_then(|_| fs.rename(&self.log_path, &prev_path))
            .and_then(|_| fs.rename(&next_path, &self.log_path))
            .and_then(|_| fs.sync_dir(&self.dir))
            .map_err(|e| io_err(&self.log_path, "roll", e))?;
        self.prev = true;
        let mut prev = fs
            .open_append(&prev_path)
            .map_err(|e| io_err(&prev_path, "open", e))?;
        prev.set_len(from)
            .and_then(|_| prev.sync())
            .map_err(|e| io_err(&prev_path, "cut", e))?;
        let file = fs
            .open_append(&self.log_path)
            .map_err(|e| io_err(&self.log_path, "open", e))?;
        self.log = Some(file);
        self.offsets = self.offsets[first_kept..]
            .iter()
            .map(|o| o - from)
            .collect();
        self.end -= from;
        self.log_base = lsn;
        Ok(())
    }

    /// Removes `log.prev`, whose entries a stored snapshot covers.
    fn drop_prev(&mut self) -> Result<()> {
        if !self.prev {
            return Ok(());
        }
        let path = self.dir.join(PREV);
        self.fs
            .remove(&path)
            .and_then(|_| self.fs.sync_dir(&self.dir))
            .map_err(|e| io_err(&path, "remove", e))?;
        self.prev = false;
        Ok(())
    }

    /// Drops the log entries a snapshot at `lsn` covers by rewriting the rest
    /// to `log.tmp` and renaming it over `log`.
    fn compact(&mut self, lsn: Lsn) -> Result<()> {
        let (drop_to, kept) = if lsn >= self.last_lsn() {
            (self.end, Vec::new())
        } else {
            let first_kept = (lsn - self.log_base) as usize;
            let drop_to = self.offsets[first_kept];
            let kept = self.offsets[first_kept..]
                .iter()
                .map(|o| o - drop_to)
                .collect();
            (drop_to, kept)
        };
        if drop_to > 0 {
            let result = self.rewrite_log(drop_to);
            self.poison(result)?;
        }
        self.log_base = lsn;
        self.offsets = kept;
        self.end -= drop_to;
        // Whatever `log.prev` holds is older still: covered too.
        let result = self.drop_prev();
        self.poison(result)
    }

    /// Replaces the log durably with its bytes from `from` to the end.
    /// The log's valid bytes from `from` to its indexed end. Only that tail
    /// is read: the log may be as long as the state.
    fn read_tail(&self, from: u64) -> Result<Vec<u8>> {
        let path = &self.log_path;
        let mut bytes = self
            .fs
            .read_from(path, from)
            .map_err(|e| io_err(path, "read", e))?
            .unwrap_or_default();
        let len = usize::try_from(self.end - from)
            .ok()
            .filter(|len| *len <= bytes.len())
            .ok_or_else(|| storage_err(path, "shorter than its index"))?;
        bytes.truncate(len);
        Ok(bytes)
    }

    fn rewrite_log(&mut self, from: u64) -> Result<()> {
        let tail = self.read_tail(from)?;
        let path = &self.log_path;
        let tmp = tmp_path(path);
        // Close the old log before it is replaced; appends go to the new one.
        self.log = None;
        self.fs
            .write_synced(&tmp, &tail)
            .map_err(|e| io_err(&tmp, "write", e))?;
        self.fs
            .rename(&tmp, path)
            .map_err(|e| io_err(path, "rename", e))?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| io_err(&self.dir, "sync_dir", e))?;
        let file = self
            .fs
            .open_append(path)
            .map_err(|e| io_err(path, "open", e))?;
        self.log = Some(file);
        Ok(())
    }
}

/// Reads the log's records and tells a torn tail from damage.
///
/// Entries the snapshot covers may lead the log (a crash hit between the
/// snapshot's rename and the log's rewrite); they are skipped. The first
/// kept entry must be `snapshot_lsn + 1`, and each next one must follow on.
/// A record that is short or fails its CRC ends the log if no valid record
/// follows it anywhere in the bytes (a torn tail: `Scan::end` is where it
/// starts); if one does, or if a valid record breaks the lsn sequence, the
/// log is damaged (`Ok(Err(problem))`), never cut there. A record that
/// passes its CRC but does not decode is an error (a software mismatch).
fn scan_log(
    bytes: &[u8],
    snapshot_lsn: Lsn,
    path: &Path,
) -> Result<std::result::Result<Scan, String>> {
    let mut scan = Scan {
        entries: Vec::new(),
        offsets: Vec::new(),
        end: 0,
    };
    let mut at = 0;
    while at < bytes.len() {
        let Some((payload, next)) = decode_record(bytes, at) else {
            if let Some(good) = next_valid_entry(bytes, at) {
                return Ok(Err(format!(
                    "{}: bad record at byte {at} followed by a valid one at byte {good} (damage, not a torn write)",
                    path.display()
                )));
            }
            break;
        };
        let entry = decode_entry(payload, at, path)?;
        let lsn = entry.pos.lsn;
        let expected = snapshot_lsn + 1 + scan.entries.len() as u64;
        if scan.entries.is_empty() && lsn <= snapshot_lsn {
            // Covered by the snapshot: skipped, but the bytes stay valid.
        } else if lsn == expected {
            scan.offsets.push(at as u64);
            scan.entries.push(entry);
        } else {
            let what = if scan.entries.is_empty() && snapshot_lsn == 0 {
                "(no snapshot: is it missing?)"
            } else {
                "(entries missing)"
            };
            return Ok(Err(format!(
                "{}: record at byte {at} holds lsn {lsn} where lsn {expected} should be {what}",
                path.display()
            )));
        }
        at = next;
        scan.end = at as u64;
    }
    Ok(Ok(scan))
}

/// The log's whole, in-sequence records up to the first bad one, whatever
/// follows: how earlier builds read a log, kept for the deliberately broken
/// store (`unsafe_trust_damage`).
fn scan_prefix(bytes: &[u8], snapshot_lsn: Lsn, path: &Path) -> Result<Scan> {
    let mut scan = Scan {
        entries: Vec::new(),
        offsets: Vec::new(),
        end: 0,
    };
    let mut at = 0;
    while let Some((payload, next)) = decode_record(bytes, at) {
        let entry = decode_entry(payload, at, path)?;
        let lsn = entry.pos.lsn;
        let expected = snapshot_lsn + 1 + scan.entries.len() as u64;
        if scan.entries.is_empty() && lsn <= snapshot_lsn {
            // Covered by the snapshot.
        } else if lsn == expected {
            scan.offsets.push(at as u64);
            scan.entries.push(entry);
        } else {
            break;
        }
        at = next;
        scan.end = at as u64;
    }
    Ok(scan)
}

/// Where the first record after the bad one at `bad` that passes its CRC
/// and decodes as an entry starts, if any. First where the bad record's
/// length field says the next one starts (a flipped bit in a payload), then
/// at every byte (a damaged length field). Cheap on a torn tail: a length
/// field is checked against the remaining bytes before any CRC.
fn next_valid_entry(bytes: &[u8], bad: usize) -> Option<usize> {
    let is_entry = |at: usize| {
        decode_record(bytes, at)
            .is_some_and(|(payload, _)| serde_json::from_slice::<Entry>(payload).is_ok())
    };
    if let Some(header) = bytes.get(bad..bad + HEADER_LEN) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let skip = bad.saturating_add(HEADER_LEN).saturating_add(len);
        if skip < bytes.len() && is_entry(skip) {
            return Some(skip);
        }
    }
    (bad + 1..bytes.len()).find(|at| is_entry(*at))
}

/// What a check of a log file's bytes found (see [`check_log`]).
#[derive(Debug, PartialEq, Eq)]
pub struct LogCheck {
    /// How many entries the log holds after the snapshot's lsn.
    pub entries: usize,
    /// Where the whole records end (the rest is a torn tail).
    pub end: u64,
}

/// Checks the bytes of a log file as `LogStore` reads them on open, given
/// the lsn of the snapshot beside it: `Ok(Ok(_))` for a whole log (perhaps
/// with a torn tail), `Ok(Err(problem))` for damage, `Err` for a record that
/// passes its CRC but does not decode. Never panics; allocates in
/// proportion to the entries found, never from a length field.
pub fn check_log(bytes: &[u8], snapshot_lsn: Lsn) -> Result<std::result::Result<LogCheck, String>> {
    Ok(
        scan_log(bytes, snapshot_lsn, Path::new("log"))?.map(|scan| LogCheck {
            entries: scan.entries.len(),
            end: scan.end,
        }),
    )
}

/// The lsn of the first valid record in `bytes`, if any.
fn first_lsn(bytes: &[u8], path: &Path) -> Result<Option<Lsn>> {
    match decode_record(bytes, 0) {
        Some((payload, _)) => Ok(Some(decode_entry(payload, 0, path)?.pos.lsn)),
        None => Ok(None),
    }
}

/// Where the valid records of `bytes` end, or the first one with an lsn of
/// at least `limit` starts.
fn valid_before(bytes: &[u8], limit: Option<Lsn>, path: &Path) -> Result<usize> {
    let mut at = 0;
    while let Some((payload, next)) = decode_record(bytes, at) {
        let lsn = decode_entry(payload, at, path)?.pos.lsn;
        if limit.is_some_and(|limit| lsn >= limit) {
            break;
        }
        at = next;
    }
    Ok(at)
}

/// Decodes a record's payload that passed its CRC; failing to is a software
/// mismatch, not a torn write, so it is an error rather than a cut.
fn decode_entry(payload: &[u8], at: usize, path: &Path) -> Result<Entry> {
    serde_json::from_slice(payload).map_err(|e| {
        storage_err(
            path,
            format!("record at byte {at} passes its CRC but does not decode ({e}); refusing to cut acknowledged entries"),
        )
    })
}

impl<F: Fs + Clone> Storage for LogStore<F> {
    fn load(&mut self) -> Result<Recovered> {
        self.check()?;
        self.recover()
    }

    fn set_aside(&mut self, problem: &str) -> Result<Recovered> {
        self.check()?;
        let result = self.set_aside_all(problem);
        self.poison(result)?;
        self.recover()
    }

    fn append(&mut self, entries: &[Entry]) -> Result<()> {
        self.check()?;
        if entries.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        let mut offsets = Vec::with_capacity(entries.len());
        for (next, entry) in (self.last_lsn() + 1..).zip(entries) {
            if entry.pos.lsn != next {
                return Err(storage_err(
                    &self.log_path,
                    format!(
                        "append of lsn {} does not follow lsn {}",
                        entry.pos.lsn,
                        next - 1
                    ),
                ));
            }
            offsets.push(self.end + buf.len() as u64);
            encode_value(&mut buf, entry, &self.log_path)?;
        }
        self.with_log("append", |f| f.append(&buf))?;
        self.offsets.extend(offsets);
        self.end += buf.len() as u64;
        self.dirty = true;
        Ok(())
    }

    fn truncate_after(&mut self, lsn: Lsn) -> Result<()> {
        self.check()?;
        if lsn >= self.last_lsn() {
            return Ok(());
        }
        if lsn < self.log_base {
            return Err(storage_err(
                &self.log_path,
                format!(
                    "truncate_after({lsn}) would cut into the snapshot at lsn {}",
                    self.log_base
                ),
            ));
        }
        let keep = (lsn - self.log_base) as usize;
        let new_end = self.offsets[keep];
        self.with_log("truncate", |f| f.set_len(new_end))?;
        self.offsets.truncate(keep);
        self.end = new_end;
        self.dirty = true;
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.check()?;
        if !self.dirty {
            return Ok(());
        }
        self.with_log("sync", |f| f.sync())?;
        self.dirty = false;
        Ok(())
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<()> {
        self.check()?;
        let lsn = snapshot.pos.lsn;
        if lsn < self.log_base {
            return Err(storage_err(
                &self.dir.join(SNAPSHOT),
                format!(
                    "snapshot at lsn {lsn} is older than the stored one at lsn {}",
                    self.log_base
                ),
            ));
        }
        // Sync the log before replacing it, so no write to the old file is
        // still pending. (Turmoil's simulated disk keys pending writes by
        // path and would apply them to the new file on its next sync.)
        self.sync()?;
        let result = write_single(&self.fs, &self.dir.join(SNAPSHOT), snapshot);
        self.poison(result)?;
        self.compact(lsn)
    }

    fn save_view(&mut self, view: &View) -> Result<()> {
        self.check()?;
        let result = write_single(&self.fs, &self.dir.join(VIEW), view);
        self.poison(result)
    }

    fn begin_snapshot(&mut self, lsn: Lsn) -> Result<SnapshotJob> {
        self.check()?;
        if self.prev {
            return Err(storage_err(
                &self.dir.join(PREV),
                "a snapshot is already in progress",
            ));
        }
        if lsn > self.last_lsn() {
            return Err(storage_err(
                &self.log_path,
                format!(
                    "snapshot at lsn {lsn} is past the log's end {}",
                    self.last_lsn()
                ),
            ));
        }
        // At or below the base there is nothing to move: the job only
        // writes the snapshot file.
        if lsn > self.log_base {
            let result = self.roll(lsn);
            self.poison(result)?;
        }
        let (fs, path) = (self.fs.clone(), self.dir.join(SNAPSHOT));
        Ok(Box::new(move |snapshot| write_single(&fs, &path, snapshot)))
    }

    fn finish_snapshot(&mut self) -> Result<()> {
        self.check()?;
        let result = self.drop_prev();
        self.poison(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::framing::encode_record;
    use crate::files::memfs::MemFs;
    use crate::state::command::{CatalogCommand, Command};
    use crate::state::orders::OrderLedger;
    use crate::state::State;
    use crate::types::{Group, LogPos, NodeId};
    use proptest::prelude::*;

    const DIR: &str = "/data/catalog-1";

    fn entry(lsn: Lsn) -> Entry {
        Entry {
            pos: LogPos::new(1, lsn),
            command: Command::Catalog(CatalogCommand::Restock { item: lsn, qty: 1 }),
        }
    }

    fn entries(lsns: std::ops::RangeInclusive<Lsn>) -> Vec<Entry> {
        lsns.map(entry).collect()
    }

    fn snapshot(lsn: Lsn) -> Snapshot {
        Snapshot {
            pos: LogPos::new(1, lsn),
            state: State::Orders(OrderLedger::new()),
            digest: lsn,
        }
    }

    fn open(fs: &MemFs) -> LogStore<MemFs> {
        LogStore::open(fs.clone(), DIR, 7).expect("open")
    }

    fn load(fs: &MemFs) -> Recovered {
        open(fs).load().expect("load")
    }

    fn log_path() -> PathBuf {
        Path::new(DIR).join(LOG)
    }

    /// Appends raw bytes to the live log file, as a torn write would leave.
    fn append_raw(fs: &MemFs, bytes: &[u8]) {
        let mut f = fs.open_append(&log_path()).expect("open log");
        f.append(bytes).expect("append raw");
    }

    fn framed(entry: &Entry) -> Vec<u8> {
        let mut out = Vec::new();
        encode_value(&mut out, entry, Path::new("test")).expect("encode");
        out
    }

    #[test]
    fn appended_and_synced_entries_come_back_on_reopen() {
        let fs = MemFs::new();
        let mut store = open(&fs);
        store.append(&entries(1..=3)).unwrap();
        store.append(&entries(4..=5)).unwrap();
        store.sync().unwrap();
        drop(store);
        let recovered = load(&fs);
        assert_eq!(recovered.entries, entries(1..=5));
        assert!(recovered.snapshot.is_none());
        assert!(recovered.view.is_none());
    }

    #[test]
    fn truncate_after_then_append_follows_on() {
        let fs = MemFs::new();
        let mut store = open(&fs);
        store.append(&entries(1..=5)).unwrap();
        store.truncate_after(2).unwrap();
        assert_eq!(store.last_lsn(), 2);
        let replacement = Entry {
            pos: LogPos::new(2, 3),
            command: Command::Catalog(CatalogCommand::SetPrice { item: 9, cost: 9 }),
        };
        store.append(std::slice::from_ref(&replacement)).unwrap();
        store.sync().unwrap();
        drop(store);
        let mut expected = entries(1..=2);
        expected.push(replacement);
        assert_eq!(load(&fs).entries, expected);
    }

    #[test]
    fn truncate_after_beyond_the_end_changes_nothing() {
        let fs = MemFs::new();
        let mut store = open(&fs);
        store.append(&entries(1..=3)).unwrap();
        store.truncate_after(7).unwrap();
        store.sync().unwrap();
        assert_eq!(load(&fs).entries, entries(1..=3));
    }

    #[test]
    fn append_that_does_not_follow_on_is_refused() {
        let fs = MemFs::new();
        let mut store = open(&fs);
        store.append(&entries(1..=2)).unwrap();
        let err = store.append(&[entry(4)]).unwrap_err();
        assert!(matches!(err, Error::Storage(m) if m.contains("does not follow")));
        // Nothing was written: the next entry still fits.
        store.append(&[entry(3)]).unwrap();
        store.sync().unwrap();
        assert_eq!(load(&fs).entries, entries(1..=3));
    }

    /// A store holding entries 1..=`last`, synced.
    fn synced_store(fs: &MemFs, last: Lsn) -> LogStore<MemFs> {
        let mut store = open(fs);
        store.append(&entries(1..=last)).unwrap();
        store.sync().unwrap();
        store
    }

    fn prev_path() -> PathBuf {
        Path::new(DIR).join(PREV)
    }

    fn framed_all(lsns: std::ops::RangeInclusive<Lsn>) -> Vec<u8> {
        entries(lsns).iter().flat_map(framed).collect()
    }

    #[test]
    fn a_snapshot_moves_only_the_tail_and_appends_go_on_meanwhile() {
        let fs = MemFs::new();
        let mut store = synced_store(&fs, 5);
        let job = store.begin_snapshot(3).unwrap();
        assert_eq!(fs.read_live(log_path()).unwrap(), framed_all(4..=5));
        assert_eq!(fs.read_live(prev_path()).unwrap(), framed_all(1..=3));
        // Appends go on while the job runs.
        store.append(&[entry(6)]).unwrap();
        store.sync().unwrap();
        job(&snapshot(3)).unwrap();
        store.finish_snapshot().unwrap();
        assert_eq!(fs.read_live(prev_path()), None);
        assert_eq!(fs.read_live(log_path()).unwrap(), framed_all(4..=6));
        drop(store);
        fs.crash();
        let recovered = load(&fs);
        assert_eq!(recovered.snapshot, Some(snapshot(3)));
        assert_eq!(recovered.entries, entries(4..=6));
    }

    #[test]
    fn a_crash_before_the_snapshot_is_written_loses_nothing() {
        let fs = MemFs::new();
        let mut store = synced_store(&fs, 5);
        let _job = store.begin_snapshot(3).unwrap();
        store.append(&[entry(6)]).unwrap();
        store.sync().unwrap();
        drop(store);
        fs.crash();
        let recovered = load(&fs);
        assert_eq!(recovered.snapshot, None);
        assert_eq!(recovered.entries, entries(1..=6));
        // The two files were put back together.
        assert_eq!(fs.read_live(prev_path()), None);
        assert_eq!(fs.read_live(log_path()).unwrap(), framed_all(1..=6));
    }

    #[test]
    fn a_crash_after_the_snapshot_before_finishing_skips_the_covered_entries() {
        let fs = MemFs::new();
        let mut store = synced_store(&fs, 5);
        store.begin_snapshot(3).unwrap()(&snapshot(3)).unwrap();
        drop(store);
        fs.crash();
        let recovered = load(&fs);
        assert_eq!(recovered.snapshot, Some(snapshot(3)));
        assert_eq!(recovered.entries, entries(4..=5));
    }

    #[test]
    fn a_truncation_during_a_snapshot_is_not_undone_by_the_older_file() {
        let fs = MemFs::new();
        let mut store = synced_store(&fs, 5);
        let _job = store.begin_snapshot(3).unwrap();
        store.truncate_after(3).unwrap();
        let replacement = Entry {
            pos: LogPos::new(2, 4),
            command: Command::Catalog(CatalogCommand::SetPrice { item: 9, cost: 9 }),
        };
        store.append(std::slice::from_ref(&replacement)).unwrap();
        store.sync().unwrap();
        drop(store);
        fs.crash();
        let mut expected = entries(1..=3);
        expected.push(replacement);
        assert_eq!(load(&fs).entries, expected);
    }

    /// The states a crash can leave in the middle of a roll at lsn 3 of a
    /// log holding 1..=5, each loading as the whole log.
    #[test]
    fn every_crash_point_of_a_roll_loads_the_whole_log() {
        let dir = Path::new(DIR);
        let next = dir.join(NEXT);
        // A name for the state, and how to leave the disk in it.
        type Setup<'a> = (&'a str, &'a dyn Fn(&MemFs));
        let setups: [Setup; 3] = [
            ("tail written, not renamed", &|fs| {
                fs.write_synced(&next, &framed_all(4..=5)).unwrap();
            }),
            ("log renamed to log.prev, no log", &|fs| {
                fs.rename(&log_path(), &prev_path()).unwrap();
            }),
            ("tail renamed to log, log.prev not cut", &|fs| {
                fs.write_synced(&next, &framed_all(4..=5)).unwrap();
                fs.rename(&log_path(), &prev_path()).unwrap();
                fs.rename(&next, &log_path()).unwrap();
            }),
        ];
        for (name, setup) in setups {
            let fs = MemFs::new();
            let mut store = open(&fs);
            store.append(&entries(1..=5)).unwrap();
            store.sync().unwrap();
            drop(store);
            setup(&fs);
            fs.sync_dir(dir).unwrap();
            fs.crash();
            assert_eq!(load(&fs).entries, entries(1..=5), "{name}");
            assert_eq!(fs.read_live(&next), None, "{name}");
            assert_eq!(fs.read_live(prev_path()), None, "{name}");
        }
    }

    #[test]
    fn a_second_snapshot_waits_for_the_first_to_finish() {
        let fs = MemFs::new();
        let mut store = synced_store(&fs, 5);
        let _job = store.begin_snapshot(2).unwrap();
        assert!(store.begin_snapshot(4).is_err());
        assert!(store.begin_snapshot(9).is_err());
    }

    #[test]
    fn snapshot_then_reopen_gives_snapshot_and_remaining_entries() {
        let fs = MemFs::new();
        let mut store = open(&fs);
        store.append(&entries(1..=6)).unwrap();
        store.sync().unwrap();
        store.save_snapshot(&snapshot(4)).unwrap();
        store.append(&[entry(7)]).unwrap();
        store.sync().unwrap();
        drop(store);
        let recovered = load(&fs);
        assert_eq!(recovered.snapshot, Some(snapshot(4)));
        assert_eq!(recovered.entries, entries(5..=7));
        // The covered entries are gone from the file, not just skipped.
        let log = fs.read_live(log_path()).unwrap();
        let expected: Vec<u8> = entries(5..=7).iter().flat_map(framed).collect();
        assert_eq!(log, expected);
    }

    #[test]
    fn snapshot_is_durable_and_compacts_even_with_unsynced_appends() {
        let fs = MemFs::new();
        let mut store = open(&fs);
        store.append(&entries(1..=4)).unwrap();
        store.save_snapshot(&snapshot(2)).unwrap();
        fs.crash();
        let recovered = load(&fs);
        assert_eq!(recovered.snapshot, Some(snapshot(2)));
        assert_eq!(recovered.entries, entries(3..=4));
    }

    #[test]
    fn snapshot_past_the_log_end_empties_the_log() {
        let fs = MemFs::new();
        let mut store = open(&fs);
        store.append(&entries(1..=3)).unwrap();
        store.sync().unwrap();
        store.save_snapshot(&snapshot(10)).unwrap();
        assert_eq!(store.last_lsn(), 10);
        store.append(&[entry(11)]).unwrap();
        store.sync().unwrap();
        fs.crash();
        let recovered = load(&fs);
        assert_eq!(recovered.snapshot, Some(snapshot(10)));
        assert_eq!(recovered.entries, vec![entry(11)]);
    }

    #[test]
    fn older_snapshot_than_the_stored_one_is_refused() {
        let fs = MemFs::new();
        let mut store = open(&fs);
        store.save_snapshot(&snapshot(5)).unwrap();
        assert!(store.save_snapshot(&snapshot(3)).is_err());
    }

    #[test]
    fn entries_covered_by_the_snapshot_at_the_log_front_are_skipped() {
        // A crash between the snapshot's rename and the log's rewrite: the
        // snapshot says 3, the log still holds 1..=5.
        let fs = MemFs::new();
        let store = synced_store(&fs, 5);
        drop(store);
        write_single(&fs, &Path::new(DIR).join(SNAPSHOT), &snapshot(3)).unwrap();
        let mut store = open(&fs);
        let recovered = store.load().unwrap();
        assert_eq!(recovered.snapshot, Some(snapshot(3)));
        assert_eq!(recovered.entries, entries(4..=5));
        // The index skips them too: truncating to the snapshot keeps nothing.
        store.truncate_after(3).unwrap();
        store.append(&[entry(4)]).unwrap();
        store.sync().unwrap();
        assert_eq!(load(&fs).entries, vec![entry(4)]);
    }

    #[test]
    fn view_round_trips() {
        let fs = MemFs::new();
        let view = View {
            group: Group::Catalog,
            epoch: 3,
            primary: NodeId::new("catalog-2"),
            backups: vec![NodeId::new("catalog-1")],
        };
        let mut store = open(&fs);
        store.save_view(&view).unwrap();
        fs.crash();
        assert_eq!(load(&fs).view, Some(view));
    }

    #[test]
    fn unsynced_appends_vanish_on_crash_and_synced_ones_survive() {
        let fs = MemFs::new();
        let mut store = open(&fs);
        store.append(&entries(1..=3)).unwrap();
        store.sync().unwrap();
        store.append(&entries(4..=6)).unwrap();
        fs.crash();
        assert_eq!(load(&fs).entries, entries(1..=3));
    }

    #[test]
    fn unsynced_truncation_is_undone_by_a_crash() {
        let fs = MemFs::new();
        let mut store = open(&fs);
        store.append(&entries(1..=3)).unwrap();
        store.sync().unwrap();
        store.truncate_after(1).unwrap();
        fs.crash();
        assert_eq!(load(&fs).entries, entries(1..=3));
    }

    #[test]
    fn torn_tail_is_cut_on_load_and_later_appends_work() {
        let fs = MemFs::new();
        let mut store = open(&fs);
        store.append(&entries(1..=2)).unwrap();
        store.sync().unwrap();
        drop(store);
        // Half a record, then garbage.
        let torn = framed(&entry(3));
        append_raw(&fs, &torn[..torn.len() / 2]);
        let mut store = open(&fs);
        assert_eq!(store.load().unwrap().entries, entries(1..=2));
        store.append(&entries(3..=4)).unwrap();
        store.sync().unwrap();
        fs.crash();
        assert_eq!(load(&fs).entries, entries(1..=4));
    }

    #[test]
    fn record_that_passes_its_crc_but_does_not_decode_is_an_error() {
        let fs = MemFs::new();
        drop(open(&fs));
        let mut bad = Vec::new();
        encode_record(&mut bad, b"{\"not\":\"an entry\"}", Path::new("test")).unwrap();
        append_raw(&fs, &bad);
        let err = LogStore::open(fs.clone(), DIR, 7).err().expect("refused");
        assert!(
            matches!(err, Error::Storage(m) if m.contains("log") && m.contains("does not decode"))
        );
    }

    /// Flips one bit of the live file `name` in the store's directory, at
    /// byte `at`.
    fn flip(fs: &MemFs, name: &str, at: usize) {
        let path = Path::new(DIR).join(name);
        let mut bytes = fs.read_live(&path).expect("file exists");
        bytes[at] ^= 0x04;
        fs.write_synced(&path, &bytes).unwrap();
    }

    /// The store's files, by name.
    fn names(fs: &MemFs) -> Vec<String> {
        fs.files()
            .iter()
            .filter(|p| p.starts_with(DIR))
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_new_disk_gets_an_identity_that_later_opens_keep() {
        let fs = MemFs::new();
        let first = load(&fs);
        assert!(first.new_disk && first.damage.is_none());
        assert_eq!(first.disk, 7);
        fs.crash();
        let again = LogStore::open(fs.clone(), DIR, 9).unwrap().load().unwrap();
        assert!(!again.new_disk);
        assert_eq!(again.disk, 7, "the identity survives a crash");
    }

    #[test]
    fn an_emptied_folder_is_a_new_disk_with_a_new_identity() {
        let fs = MemFs::new();
        drop(synced_store(&fs, 3));
        for path in fs.files() {
            fs.remove(&path).unwrap();
        }
        let recovered = LogStore::open(fs.clone(), DIR, 9).unwrap().load().unwrap();
        assert!(recovered.new_disk);
        assert_eq!(recovered.disk, 9);
        assert!(recovered.entries.is_empty());
    }

    #[test]
    fn a_flipped_bit_in_the_middle_of_the_log_sets_the_files_aside() {
        let fs = MemFs::new();
        drop(synced_store(&fs, 5));
        let original = fs.read_live(log_path()).unwrap();
        // Inside the second record's payload.
        flip(&fs, LOG, framed(&entry(1)).len() + HEADER_LEN + 3);
        let damaged = fs.read_live(log_path()).unwrap();
        let recovered = LogStore::open(fs.clone(), DIR, 9).unwrap().load().unwrap();
        let damage = recovered.damage.expect("damage reported");
        assert!(
            damage.contains("log") && damage.contains("bad record"),
            "{damage}"
        );
        assert!(
            recovered.entries.is_empty(),
            "nothing is trusted, nothing cut"
        );
        assert!(recovered.new_disk);
        assert_eq!(recovered.disk, 9, "a new identity");
        // Kept aside, not deleted.
        let aside = Path::new(DIR).join("log.damaged-1");
        assert_eq!(fs.read_live(&aside), Some(damaged));
        assert_ne!(fs.read_live(&aside), Some(original));
        let why = fs.read_live(Path::new(DIR).join("damaged-1.why")).unwrap();
        assert_eq!(String::from_utf8(why).unwrap(), damage);
        assert!(names(&fs).contains(&"disk-id.damaged-1".to_string()));
    }

    #[test]
    fn a_flipped_bit_in_a_length_field_in_the_middle_is_damage_too() {
        let fs = MemFs::new();
        drop(synced_store(&fs, 5));
        flip(&fs, LOG, framed(&entry(1)).len() + 1);
        let recovered = load(&fs);
        assert!(recovered.damage.is_some_and(|d| d.contains("bad record")));
        assert!(recovered.entries.is_empty());
    }

    #[test]
    fn a_second_damage_is_set_aside_beside_the_first() {
        let fs = MemFs::new();
        drop(synced_store(&fs, 3));
        flip(&fs, LOG, HEADER_LEN + 2);
        drop(load(&fs));
        let mut store = open(&fs);
        store.append(&entries(1..=3)).unwrap();
        store.sync().unwrap();
        store
            .save_view(&View {
                group: Group::Catalog,
                epoch: 1,
                primary: NodeId::new("a"),
                backups: vec![],
            })
            .unwrap();
        drop(store);
        flip(&fs, VIEW, HEADER_LEN + 1);
        let recovered = load(&fs);
        assert!(recovered.damage.is_some_and(|d| d.contains("view")));
        let names = names(&fs);
        assert!(names.contains(&"log.damaged-1".to_string()));
        assert!(names.contains(&"log.damaged-2".to_string()));
        assert!(names.contains(&"view.damaged-2".to_string()));
    }

    #[test]
    fn a_bad_last_record_is_cut_as_a_torn_tail_and_reported() {
        let fs = MemFs::new();
        drop(synced_store(&fs, 3));
        let len = fs.read_live(log_path()).unwrap().len();
        flip(&fs, LOG, len - 2);
        let recovered = load(&fs);
        assert!(recovered.damage.is_none());
        assert_eq!(recovered.entries, entries(1..=2));
        let cut = recovered.cut_tail.expect("the cut is reported");
        assert!(cut.contains("log") && cut.contains("cut"), "{cut}");
    }

    #[test]
    fn a_gap_in_lsns_is_damage_not_a_cut() {
        let fs = MemFs::new();
        let mut store = open(&fs);
        store.append(&entries(1..=2)).unwrap();
        store.sync().unwrap();
        drop(store);
        append_raw(&fs, &framed(&entry(4)));
        let recovered = load(&fs);
        assert!(recovered
            .damage
            .is_some_and(|d| d.contains("lsn 4 where lsn 3")));
        assert!(recovered.entries.is_empty());
    }

    #[test]
    fn a_missing_snapshot_is_damage_when_the_log_starts_after_it() {
        let fs = MemFs::new();
        let mut store = open(&fs);
        store.append(&entries(1..=6)).unwrap();
        store.sync().unwrap();
        store.save_snapshot(&snapshot(4)).unwrap();
        drop(store);
        fs.remove(&Path::new(DIR).join(SNAPSHOT)).unwrap();
        let recovered = load(&fs);
        let damage = recovered.damage.expect("damage");
        assert!(damage.contains("snapshot"), "{damage}");
        assert!(recovered.snapshot.is_none() && recovered.entries.is_empty());
    }

    #[test]
    fn a_corrupt_snapshot_is_set_aside_naming_it() {
        let fs = MemFs::new();
        let mut store = open(&fs);
        store.save_snapshot(&snapshot(1)).unwrap();
        drop(store);
        flip(&fs, SNAPSHOT, HEADER_LEN);
        let recovered = load(&fs);
        let damage = recovered.damage.expect("damage");
        assert!(
            damage.contains("snapshot") && damage.contains("corrupt"),
            "{damage}"
        );
        assert!(recovered.snapshot.is_none());
        assert!(names(&fs).contains(&"snapshot.damaged-1".to_string()));
    }

    #[test]
    fn a_missing_log_is_damage() {
        let fs = MemFs::new();
        drop(synced_store(&fs, 2));
        fs.remove(&log_path()).unwrap();
        assert!(load(&fs).damage.is_some_and(|d| d.contains("log: missing")));
    }

    #[test]
    fn a_missing_identity_beside_data_keeps_the_data_under_a_new_identity() {
        let fs = MemFs::new();
        drop(synced_store(&fs, 2));
        fs.remove(&Path::new(DIR).join(DISK_ID)).unwrap();
        let recovered = LogStore::open(fs.clone(), DIR, 9).unwrap().load().unwrap();
        assert_eq!(recovered.entries, entries(1..=2));
        assert_eq!(recovered.disk, 9);
        assert!(!recovered.new_disk && recovered.damage.is_none());
    }

    #[test]
    fn set_aside_from_above_starts_empty_with_a_new_identity() {
        let fs = MemFs::new();
        drop(synced_store(&fs, 2));
        let mut store = LogStore::open(fs.clone(), DIR, 9).unwrap();
        let recovered = store.set_aside("orders: does not match").unwrap();
        assert!(recovered.entries.is_empty() && recovered.new_disk);
        assert_eq!(recovered.disk, 9);
        assert_eq!(recovered.damage.as_deref(), Some("orders: does not match"));
        assert!(names(&fs).contains(&"log.damaged-1".to_string()));
    }

    #[test]
    fn a_trusting_store_cuts_at_damage_as_earlier_builds_did() {
        let fs = MemFs::new();
        drop(synced_store(&fs, 5));
        flip(&fs, LOG, framed(&entry(1)).len() + HEADER_LEN + 3);
        let mut store = LogStore::open_trusting_damage(fs.clone(), DIR, 9).unwrap();
        let recovered = store.load().unwrap();
        assert_eq!(recovered.entries, vec![entry(1)]);
    }

    #[test]
    fn entries_found_by_a_restart_without_a_crash_are_made_durable() {
        let fs = MemFs::new();
        let mut store = open(&fs);
        store.append(&entries(1..=2)).unwrap();
        drop(store); // a process restart: the page cache keeps the appends
        let recovered = load(&fs);
        assert_eq!(recovered.entries, entries(1..=2));
        fs.crash();
        assert_eq!(load(&fs).entries, entries(1..=2));
    }

    #[test]
    fn sync_without_changes_does_not_fsync() {
        let fs = MemFs::new();
        let mut store = open(&fs);
        store.append(&[entry(1)]).unwrap();
        let before = fs.file_syncs();
        store.sync().unwrap();
        store.sync().unwrap();
        store.sync().unwrap();
        assert_eq!(fs.file_syncs(), before + 1);
    }

    #[test]
    fn log_directory_and_file_survive_a_crash_right_after_open() {
        let fs = MemFs::new();
        drop(open(&fs));
        fs.crash();
        assert_eq!(fs.read_durable(log_path()), Some(Vec::new()));
    }

    #[test]
    fn lying_disk_loses_synced_entries_on_crash() {
        let fs = MemFs::lying();
        let mut store = open(&fs);
        store.append(&entries(1..=3)).unwrap();
        store.sync().unwrap();
        store
            .save_view(&View {
                group: Group::Order,
                epoch: 1,
                primary: NodeId::new("order-1"),
                backups: vec![],
            })
            .unwrap();
        fs.crash();
        let recovered = load(&fs);
        assert!(recovered.entries.is_empty(), "the lie must show");
        assert!(recovered.view.is_none(), "the lie must show");
    }

    #[derive(Clone, Debug)]
    enum Op {
        Append(u64),
        Sync,
        TruncateBack(u64),
        Snapshot(u64),
        /// `begin_snapshot` (the split), its job run later by `RunJob`.
        BeginSnapshot(u64),
        RunJob,
        FinishSnapshot,
        Crash,
        Reopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1u64..4).prop_map(Op::Append),
            3 => Just(Op::Sync),
            2 => (0u64..4).prop_map(Op::TruncateBack),
            1 => (0u64..6).prop_map(Op::Snapshot),
            2 => (0u64..6).prop_map(Op::BeginSnapshot),
            2 => Just(Op::RunJob),
            2 => Just(Op::FinishSnapshot),
            2 => Just(Op::Crash),
            1 => Just(Op::Reopen),
        ]
    }

    proptest! {
        /// After any sequence of appends, syncs, truncations, snapshots,
        /// crashes and reopens, what loads is exactly the model's log: the
        /// durable one after a crash, the live one after a clean reopen.
        #[test]
        fn loaded_log_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
            let fs = MemFs::new();
            let mut store = open(&fs);
            // The model: the snapshot lsn (durable on save), the live log
            // after it, and the log as of the last sync; with a split log,
            // the lsn the `log` file starts after (`base`), the job not yet
            // run, and whether `finish_snapshot` is still due.
            let mut snap: Lsn = 0;
            let mut base: Lsn = 0;
            let mut job: Option<(SnapshotJob, Lsn)> = None;
            let mut unfinished = false;
            let mut live: Vec<Entry> = Vec::new();
            let mut durable: Vec<Entry> = Vec::new();
            let last = |snap: Lsn, live: &[Entry]| live.last().map_or(snap, |e| e.pos.lsn);
            for op in ops {
                match op {
                    Op::Append(n) => {
                        let from = last(snap, &live) + 1;
                        let new = entries(from..=from + n - 1);
                        store.append(&new).unwrap();
                        live.extend(new);
                    }
                    Op::Sync => {
                        store.sync().unwrap();
                        durable = live.clone();
                    }
                    Op::TruncateBack(k) => {
                        let lsn = last(snap, &live).saturating_sub(k).max(base);
                        store.truncate_after(lsn).unwrap();
                        live.retain(|e| e.pos.lsn <= lsn);
                    }
                    // Snapshot writes never overlap (the replica's contract).
                    Op::Snapshot(_) | Op::BeginSnapshot(_) if job.is_some() || unfinished => {}
                    Op::Snapshot(k) => {
                        // Anywhere from the log's base to past the end.
                        let lsn = (base + k).min(last(snap, &live) + 2);
                        store.save_snapshot(&snapshot(lsn)).unwrap();
                        snap = lsn;
                        base = lsn;
                        live.retain(|e| e.pos.lsn > lsn);
                        durable = live.clone();
                    }
                    Op::BeginSnapshot(k) => {
                        // Up to the end (a replica snapshots its commit point).
                        let lsn = (base + k).min(last(snap, &live));
                        let begun = store.begin_snapshot(lsn).unwrap();
                        if lsn > base {
                            // The split syncs the log first.
                            durable = live.clone();
                            base = lsn;
                        }
                        job = Some((begun, lsn));
                    }
                    Op::RunJob => {
                        if let Some((run, lsn)) = job.take() {
                            run(&snapshot(lsn)).unwrap();
                            snap = lsn;
                            live.retain(|e| e.pos.lsn > lsn);
                            durable.retain(|e| e.pos.lsn > lsn);
                            unfinished = true;
                        }
                    }
                    Op::FinishSnapshot => {
                        if std::mem::take(&mut unfinished) {
                            store.finish_snapshot().unwrap();
                        }
                    }
                    Op::Crash | Op::Reopen => {
                        // A job not run dies with the process.
                        job = None;
                        unfinished = false;
                        drop(store);
                        if matches!(op, Op::Crash) {
                            fs.crash();
                            live = durable.clone();
                        }
                        // Loading syncs what it returns.
                        durable = live.clone();
                        store = open(&fs);
                        let recovered = store.load().unwrap();
                        prop_assert_eq!(recovered.snapshot.map_or(0, |s| s.pos.lsn), snap);
                        prop_assert_eq!(&recovered.entries, &live);
                        prop_assert_eq!(store.last_lsn(), last(snap, &live));
                        base = snap;
                        prop_assert_eq!(fs.read_live(prev_path()), None, "log.prev merged back");
                    }
                }
            }
        }

        /// Any bytes at all: checking them as a log never panics, and a
        /// whole log with one byte changed anywhere is either read whole,
        /// cut only in its last record, or refused as damage.
        #[test]
        fn checking_any_bytes_never_panics(
            n in 1u64..6,
            at_frac in 0.0f64..1.0,
            xor in 1u8..=255,
            noise in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let _ = check_log(&noise, 0);
            let mut bytes: Vec<u8> = entries(1..=n).iter().flat_map(framed).collect();
            let last_start = bytes.len() - framed(&entry(n)).len();
            let at = ((bytes.len() as f64 * at_frac) as usize).min(bytes.len() - 1);
            bytes[at] ^= xor;
            // Damage (`Ok(Err(_))`) and mismatches (`Err(_)`) are refusals.
            if let Ok(Ok(found)) = check_log(&bytes, 0) {
                prop_assert!(
                    found.entries as u64 == n || (at >= last_start && found.entries as u64 == n - 1),
                    "a change at byte {} of {} cut the log to {:?}", at, bytes.len(), found
                );
            }
        }

        /// Every prefix of a valid log file loads as exactly the entries
        /// whose records lie wholly inside it, and the file is cut to them.
        #[test]
        fn any_prefix_of_the_log_loads_as_its_whole_records(n in 1u64..8, cut_frac in 0.0f64..1.0) {
            let records: Vec<Vec<u8>> = entries(1..=n).iter().map(framed).collect();
            let bytes: Vec<u8> = records.concat();
            let cut = (bytes.len() as f64 * cut_frac) as usize;
            let fs = MemFs::new();
            fs.create_dir_all(Path::new(DIR)).unwrap();
            fs.write_synced(&log_path(), &bytes[..cut]).unwrap();
            let mut whole = 0usize;
            let mut kept = 0u64;
            for r in &records {
                if whole + r.len() > cut { break; }
                whole += r.len();
                kept += 1;
            }
            let recovered = load(&fs);
            let expected = if kept == 0 { Vec::new() } else { entries(1..=kept) };
            prop_assert_eq!(recovered.entries, expected);
            prop_assert_eq!(fs.read_live(log_path()).unwrap().len(), whole);
        }
    }
}
