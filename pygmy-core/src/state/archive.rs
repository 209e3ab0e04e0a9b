//! The archive of finished buys: an append-only file holding one record per
//! finished buy (its order, or why it was refused), so that an order
//! replica's memory holds a small index per buy instead of the buys.
//!
//! The order ledger appends a record when it applies a buy's `Finish`. Only
//! committed entries are applied, in log order, so every replica's archive
//! is a prefix of the same sequence of records. An [`ArchiveMark`] (length,
//! record count and a running digest of the bytes) names such a prefix; the
//! ledger carries its mark in snapshots instead of the records.
//!
//! # Durability
//!
//! Appends are not synced: the log is what makes a finished buy durable,
//! and replaying it appends the record again. The archive only has to be
//! durable up to the mark of the snapshot that covers it, so the replica
//! syncs the archive ([`Archive::syncer`]) before writing a snapshot, and
//! on load ([`Archive::open`]) cuts the file back to the snapshot's mark and
//! checks the mark's count and digest against the bytes.
//!
//! # Memory
//!
//! In memory: a sorted vector of `(hash of request id, offset)` — 16 bytes
//! per buy — with a small tree of recent entries merged into it now and
//! then, and for each stride of 64 order ids the range of offsets its
//! orders lie in. A hash may be shared by two
//! request ids; a lookup reads each candidate record and compares the
//! request id, so the answer is exact. Recent appends wait in a buffer of at
//! most [`FLUSH_AT`] bytes before they are written to the file.
//!
//! # Caveats
//!
//! - Clones of an [`Archive`] share one file: a ledger clone reads only up
//!   to its own mark, so older copies stay consistent views, but only the
//!   newest ledger may append (an append from an older copy poisons the
//!   archive instead of forking it).
//! - An I/O error poisons the archive ([`Archive::failure`]); the replica
//!   checks for it after each apply and stops acknowledging.
//! - Opening reads the whole archive once, to check it and rebuild the
//!   index: a restart's time (and a transient buffer) grows with the
//!   number of finished buys (about 20 MB per 100,000).

use crate::files::framing::{decode_record, encode_value, HEADER_LEN};
use crate::files::{Fs, FsFile};
use crate::state::command::{Order, Rejection};
use crate::types::{fnv1a, ItemId, OrderId, RequestId, DIGEST_BASIS};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::hash_map::RandomState;
use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Appends wait in memory until this many bytes are buffered.
pub const FLUSH_AT: usize = 64 * 1024;
/// Orders are grouped by id in strides of this many for finding them by id.
const ID_STRIDE: u64 = 64;
/// Recent index entries are merged into the sorted vector at this count.
const MERGE_AT: usize = 4096;

/// A finished buy, as the archive records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Finished {
    Ordered(Order),
    Refused {
        request: RequestId,
        rejection: Rejection,
        /// The item and quantity the buy asked for, so a retry under its
        /// key can be told from another request (records written before
        /// 2026-12 lack it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        asked: Option<(ItemId, u64)>,
    },
}

impl Finished {
    pub fn request(&self) -> &str {
        match self {
            Finished::Ordered(order) => &order.request,
            Finished::Refused { request, .. } => request,
        }
    }

    /// The item and quantity the buy asked for, as far as the record
    /// tells: an order's, a refusal's own, or the item a refusal names.
    pub fn asked(&self) -> Option<(ItemId, Option<u64>)> {
        match self {
            Finished::Ordered(order) => Some((order.item_id, Some(order.qty))),
            Finished::Refused {
                asked: Some((item, qty)),
                ..
            } => Some((*item, Some(*qty))),
            Finished::Refused { rejection, .. } => match rejection {
                Rejection::NotFound(item) | Rejection::OutOfStock(item) => Some((*item, None)),
                _ => None,
            },
        }
    }

    pub fn into_result(self) -> Result<Order, Rejection> {
        match self {
            Finished::Ordered(order) => Ok(order),
            Finished::Refused { rejection, .. } => Err(rejection),
        }
    }
}

/// A prefix of the archive: its length in bytes, its records, and the
/// FNV-1a digest of its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveMark {
    pub len: u64,
    pub count: u64,
    pub digest: u64,
}

impl Default for ArchiveMark {
    fn default() -> Self {
        ArchiveMark {
            len: 0,
            count: 0,
            digest: DIGEST_BASIS,
        }
    }
}

impl ArchiveMark {
    fn extend(self, bytes: &[u8]) -> Self {
        ArchiveMark {
            len: self.len + bytes.len() as u64,
            count: self.count + 1,
            digest: fnv1a(self.digest, bytes),
        }
    }
}

/// The file under an archive. Object-safe, so storage can hand one out
/// without its file-system type showing.
pub trait ArchiveFile: Send {
    /// Appends `bytes` at the end (not durable until synced).
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// `len` bytes from `offset` (fewer at the end of the file).
    fn read_at(&self, offset: u64, len: u64) -> io::Result<Vec<u8>>;
    /// Cuts the file to `len` bytes.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Something that makes every append so far durable, to run without
    /// holding this file (an fsync takes a while; appends go on meanwhile).
    fn syncer(&self) -> io::Result<Box<dyn FnOnce() -> io::Result<()> + Send>>;
}

/// An archive file on an [`Fs`].
pub struct FsArchiveFile<F: Fs> {
    fs: F,
    path: PathBuf,
    file: F::File,
}

impl<F: Fs + Clone> FsArchiveFile<F> {
    /// Opens (creating) `path` and makes its name durable.
    pub fn open(fs: F, path: &Path) -> io::Result<Self> {
        let file = fs.open_append(path)?;
        fs.sync_dir(path.parent().unwrap_or(Path::new("")))?;
        Ok(FsArchiveFile {
            fs,
            path: path.to_path_buf(),
            file,
        })
    }
}

impl<F: Fs + Clone> ArchiveFile for FsArchiveFile<F> {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.append(bytes)
    }
    fn read_at(&self, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        self.fs.read_at(&self.path, offset, len)
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn syncer(&self) -> io::Result<Box<dyn FnOnce() -> io::Result<()> + Send>> {
        // Every file system here syncs a file's data through any handle
        // to it (POSIX fsync, turmoil by path, MemFs by inode).
        let mut handle = self.fs.open_append(&self.path)?;
        Ok(Box::new(move || handle.sync()))
    }
}

/// An archive file in memory (a ledger with no disk under it).
#[derive(Default)]
pub struct MemArchiveFile(Vec<u8>);

impl ArchiveFile for MemArchiveFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
    fn read_at(&self, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let start = usize::try_from(offset).map_or(self.0.len(), |o| o.min(self.0.len()));
        let end = usize::try_from(offset.saturating_add(len))
            .map_or(self.0.len(), |e| e.min(self.0.len()));
        Ok(self.0[start..end].to_vec())
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.truncate(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(())
    }
    fn syncer(&self) -> io::Result<Box<dyn FnOnce() -> io::Result<()> + Send>> {
        Ok(Box::new(|| Ok(())))
    }
}

/// A shared handle on an archive (see the module docs).
#[derive(Clone)]
pub struct Archive {
    shared: Arc<Mutex<Shared>>,
}

struct Shared {
    file: Box<dyn ArchiveFile>,
    /// Bytes written to the file; `buf` follows them.
    written: u64,
    buf: Vec<u8>,
    /// Everything appended (file and buffer).
    mark: ArchiveMark,
    index: RequestIndex,
    /// `strides[k]`: the first and last offsets of the orders with ids in
    /// `k * ID_STRIDE + 1 ..= (k + 1) * ID_STRIDE` (orders finish in any
    /// order, but mostly near their id's turn, so the range is short).
    strides: Vec<Option<(u64, u64)>>,
    failed: Option<String>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shared = self.shared.lock();
        f.debug_struct("Archive")
            .field("mark", &shared.mark)
            .field("failed", &shared.failed)
            .finish()
    }
}

impl Archive {
    /// An empty archive in memory.
    pub fn in_memory() -> Self {
        Self::new(Box::new(MemArchiveFile::default()))
    }

    fn new(file: Box<dyn ArchiveFile>) -> Self {
        Archive {
            shared: Arc::new(Mutex::new(Shared {
                file,
                written: 0,
                buf: Vec::new(),
                mark: ArchiveMark::default(),
                index: RequestIndex::default(),
                strides: Vec::new(),
                failed: None,
            })),
        }
    }

    /// Opens the archive in `file` as far as `mark` (a snapshot's): cuts
    /// whatever follows it, checks the mark against the bytes and indexes
    /// the records. An error means the file lost or changed data that a
    /// durable snapshot counts on.
    pub fn open(mut file: Box<dyn ArchiveFile>, mark: ArchiveMark) -> Result<Self, String> {
        let bytes = file
            .read_at(0, mark.len)
            .map_err(|e| format!("reading the order archive failed: {e}"))?;
        if (bytes.len() as u64) < mark.len {
            return Err(format!(
                "the order archive holds {} bytes, the snapshot counts on {}",
                bytes.len(),
                mark.len
            ));
        }
        file.set_len(mark.len)
            .map_err(|e| format!("cutting the order archive failed: {e}"))?;
        let archive = Archive::new(file);
        {
            let mut shared = archive.shared.lock();
            for (offset, len, record) in decode(&bytes, 0, None)? {
                shared.index_record(&record, offset);
                let (start, end) = (offset as usize, (offset + len) as usize);
                shared.mark = shared.mark.extend(&bytes[start..end]);
            }
            shared.written = mark.len;
            if shared.mark != mark {
                return Err(format!(
                    "the order archive does not match the snapshot ({:?} vs {mark:?})",
                    shared.mark
                ));
            }
        }
        Ok(archive)
    }

    /// The mark of everything appended.
    pub fn mark(&self) -> ArchiveMark {
        self.shared.lock().mark
    }

    /// The first I/O error or misuse, if any: the archive is poisoned.
    pub fn failure(&self) -> Option<String> {
        self.shared.lock().failed.clone()
    }

    /// Appends `record` after `at` (the appender's mark, which must be the
    /// archive's end) and returns the new mark. On failure the archive is
    /// poisoned and `at` comes back unchanged.
    pub fn append(&self, at: ArchiveMark, record: &Finished) -> ArchiveMark {
        let mut shared = self.shared.lock();
        if shared.failed.is_some() {
            return at;
        }
        if shared.mark != at {
            shared.failed = Some(format!(
                "append after {at:?} but the archive ends at {:?} (a stale copy appended)",
                shared.mark
            ));
            return at;
        }
        let start = shared.buf.len();
        if let Err(e) = encode_value(&mut shared.buf, record, Path::new("order archive")) {
            shared.buf.truncate(start);
            shared.failed = Some(e.to_string());
            return at;
        }
        shared.index_record(record, at.len);
        shared.mark = at.extend(&shared.buf[start..]);
        if shared.buf.len() >= FLUSH_AT {
            shared.flush();
        }
        shared.mark
    }

    /// The record of `request` within `at`, if it finished there.
    pub fn find(&self, at: ArchiveMark, request: &str) -> Option<Finished> {
        let mut shared = self.shared.lock();
        let hash = shared.index.hash(request);
        for offset in shared.index.candidates(hash) {
            if offset >= at.len {
                continue;
            }
            let found = shared.records(offset, at.len, Some(1)).ok()?;
            if let Some((_, _, record)) = found.into_iter().next() {
                if record.request() == request {
                    return Some(record);
                }
            }
        }
        None
    }

    /// The order with `id` within `at`: read among its stride's orders.
    pub fn order(&self, at: ArchiveMark, id: OrderId) -> Option<Order> {
        let mut shared = self.shared.lock();
        let k = usize::try_from(id.checked_sub(1)? / ID_STRIDE).ok()?;
        let (first, last) = (*shared.strides.get(k)?)?;
        if first >= at.len {
            return None;
        }
        // Through the record at `last` (records past `at` are not read).
        let end = if last >= at.len {
            at.len
        } else {
            let found = shared.records(last, at.len, Some(1)).ok()?;
            found.first().map_or(at.len, |(_, len, _)| last + len)
        };
        let records = shared.records(first, end, None).ok()?;
        records.into_iter().find_map(|(_, _, r)| match r {
            Finished::Ordered(order) if order.id == id => Some(order),
            _ => None,
        })
    }

    /// Every record from byte `from` (a record's start) to `at`.
    pub fn records_from(&self, at: ArchiveMark, from: u64) -> Result<Vec<Finished>, String> {
        let records = self.shared.lock().records(from, at.len, None)?;
        Ok(records.into_iter().map(|(_, _, r)| r).collect())
    }

    /// Makes the archive hold the records up to `from` it holds now (`from`
    /// must be its end, or 0 to start over), then `records`. Returns the
    /// new mark. Used when a replica installs a snapshot from its primary.
    pub fn extend_from(&self, from: u64, records: &[Finished]) -> Result<ArchiveMark, String> {
        let mut at = {
            let mut shared = self.shared.lock();
            if from == 0 && shared.mark.len > 0 {
                shared.buf.clear();
                if let Err(e) = shared.file.set_len(0) {
                    let e = format!("cutting the order archive failed: {e}");
                    shared.failed.get_or_insert(e.clone());
                    return Err(e);
                }
                shared.written = 0;
                shared.mark = ArchiveMark::default();
                shared.index = RequestIndex::default();
                shared.strides.clear();
            }
            if shared.mark.len != from {
                return Err(format!(
                    "records from byte {from} do not follow my archive's end at {}",
                    shared.mark.len
                ));
            }
            shared.mark
        };
        for record in records {
            at = self.append(at, record);
        }
        self.failure().map_or(Ok(at), Err)
    }

    /// See [`ArchiveFile::syncer`]: flushes the buffer, then hands out the
    /// fsync to run without the archive's lock.
    pub fn syncer(&self) -> Result<Box<dyn FnOnce() -> io::Result<()> + Send>, String> {
        let mut shared = self.shared.lock();
        shared.flush();
        if let Some(e) = &shared.failed {
            return Err(e.clone());
        }
        shared
            .file
            .syncer()
            .map_err(|e| format!("syncing the order archive failed: {e}"))
    }
}

impl Shared {
    fn index_record(&mut self, record: &Finished, offset: u64) {
        let hash = self.index.hash(record.request());
        self.index.insert(hash, offset);
        if let Finished::Ordered(order) = record {
            let stride = order.id.checked_sub(1).map(|n| n / ID_STRIDE);
            if let Some(k) = stride.and_then(|k| usize::try_from(k).ok()) {
                if self.strides.len() <= k {
                    self.strides.resize(k + 1, None);
                }
                let range = self.strides[k].get_or_insert((offset, offset));
                range.0 = range.0.min(offset);
                range.1 = range.1.max(offset);
            }
        }
    }

    fn flush(&mut self) {
        if self.buf.is_empty() || self.failed.is_some() {
            return;
        }
        match self.file.append(&self.buf) {
            Ok(()) => {
                self.written += self.buf.len() as u64;
                self.buf.clear();
            }
            Err(e) => self.failed = Some(format!("writing the order archive failed: {e}")),
        }
    }

    /// The bytes in `[from, to)`, from the file and the buffer.
    fn read(&self, from: u64, to: u64) -> Result<Vec<u8>, String> {
        let mut bytes = Vec::new();
        if from < self.written {
            let upto = to.min(self.written);
            bytes = self
                .file
                .read_at(from, upto - from)
                .map_err(|e| format!("reading the order archive failed: {e}"))?;
            if (bytes.len() as u64) < upto - from {
                return Err("the order archive is shorter than written".into());
            }
        }
        if to > self.written {
            let start = usize::try_from(from.max(self.written) - self.written).unwrap_or(0);
            let end = usize::try_from(to - self.written).unwrap_or(0);
            bytes.extend_from_slice(self.buf.get(start..end).unwrap_or_default());
        }
        Ok(bytes)
    }

    /// Decodes records from `from` up to `to` (at most `limit` of them),
    /// with their offsets and lengths. When looking for one record the read
    /// is short: a header first, then the rest. An error poisons the
    /// archive (a record it indexed cannot be read back).
    fn records(
        &mut self,
        from: u64,
        to: u64,
        limit: Option<usize>,
    ) -> Result<Vec<(u64, u64, Finished)>, String> {
        let read = if limit == Some(1) {
            self.read(from, (from + HEADER_LEN as u64).min(to))
                .and_then(|header| {
                    let len = header
                        .get(..4)
                        .map_or(0, |h| u32::from_le_bytes([h[0], h[1], h[2], h[3]]));
                    self.read(from, (from + HEADER_LEN as u64 + u64::from(len)).min(to))
                })
        } else {
            self.read(from, to)
        };
        let decoded = read.and_then(|bytes| decode(&bytes, from, limit));
        if let Err(e) = &decoded {
            self.failed.get_or_insert_with(|| e.clone());
        }
        decoded
    }
}

/// The records in `bytes` (which start at byte `from` of the archive), at
/// most `limit` of them, with their offsets and lengths.
fn decode(
    bytes: &[u8],
    from: u64,
    limit: Option<usize>,
) -> Result<Vec<(u64, u64, Finished)>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() && limit.is_none_or(|l| out.len() < l) {
        let offset = from + at as u64;
        let Some((payload, next)) = decode_record(bytes, at) else {
            return Err(format!("the order archive is corrupt at byte {offset}"));
        };
        let record: Finished = serde_json::from_slice(payload)
            .map_err(|e| format!("order archive record at byte {offset}: {e}"))?;
        out.push((offset, (next - at) as u64, record));
        at = next;
    }
    Ok(out)
}

/// Request-id hash → record offset, for many entries in little memory.
struct RequestIndex {
    hasher: RandomState,
    /// Sorted runs (by hash, then offset), largest first.
    runs: Vec<Vec<(u64, u64)>>,
    recent: BTreeSet<(u64, u64)>,
}

impl Default for RequestIndex {
    fn default() -> Self {
        RequestIndex {
            hasher: RandomState::new(),
            runs: Vec::new(),
            recent: BTreeSet::new(),
        }
    }
}

impl RequestIndex {
    fn hash(&self, request: &str) -> u64 {
        self.hasher.hash_one(request)
    }

    fn insert(&mut self, hash: u64, offset: u64) {
        self.recent.insert((hash, offset));
        if self.recent.len() >= MERGE_AT {
            self.merge();
        }
    }

    /// Turns the recent entries into a sorted run, then merges runs of
    /// equal size (a binary counter: each entry is copied about log2(n /
    /// MERGE_AT) times in all, and a merge as large as the index happens
    /// once per doubling; one big run merged every time would stall the
    /// replica for milliseconds every few thousand buys).
    fn merge(&mut self) {
        self.runs
            .push(std::mem::take(&mut self.recent).into_iter().collect());
        while let [.., older, newer] = &self.runs[..] {
            if newer.len() < older.len() {
                break;
            }
            let merged = merge_sorted(older, newer);
            self.runs.truncate(self.runs.len() - 2);
            self.runs.push(merged);
        }
    }

    fn candidates(&self, hash: u64) -> Vec<u64> {
        let mut out: Vec<u64> = self
            .recent
            .range((hash, 0)..=(hash, u64::MAX))
            .map(|(_, o)| *o)
            .collect();
        for run in &self.runs {
            let start = run.partition_point(|(h, _)| *h < hash);
            out.extend(
                run[start..]
                    .iter()
                    .take_while(|(h, _)| *h == hash)
                    .map(|(_, o)| *o),
            );
        }
        out
    }
}

/// The union of two sorted runs, in a vector of exactly their size.
fn merge_sorted(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut merged = Vec::with_capacity(a.len() + b.len());
    let mut b = b.iter().copied().peekable();
    for x in a.iter().copied() {
        while let Some(y) = b.next_if(|y| *y < x) {
            merged.push(y);
        }
        merged.push(x);
    }
    merged.extend(b);
    merged
}

/// Opens the archive file `orders` in `dir` on `fs`.
pub fn open_file<F: Fs + Clone>(fs: F, dir: &Path) -> io::Result<Box<dyn ArchiveFile>> {
    Ok(Box::new(FsArchiveFile::open(fs, &dir.join("orders"))?))
}

/// Opens an order replica's archive file (created empty if missing). The
/// replica calls it when it starts, and again after it set damaged files
/// aside. The archive is the order ledger's, not the log store's, so the
/// code that wires a replica hands it in beside the
/// [`Storage`](crate::storage::Storage), usually on the same folder:
/// [`opener`]`(fs, dir)`.
pub type ArchiveOpener = Box<dyn FnMut() -> crate::Result<Box<dyn ArchiveFile>> + Send>;

/// An [`ArchiveOpener`] for the file `orders` in `dir` on `fs` (the folder
/// of the replica's log store, so a set-aside of that folder covers it).
pub fn opener<F: Fs + Clone + Send + 'static>(fs: F, dir: impl Into<PathBuf>) -> ArchiveOpener {
    let dir = dir.into();
    Box::new(move || {
        open_file(fs.clone(), &dir).map_err(|e| {
            crate::Error::Storage(format!(
                "{}: open failed: {e}",
                dir.join("orders").display()
            ))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::memfs::MemFs;

    fn order(id: OrderId, request: &str) -> Finished {
        Finished::Ordered(Order {
            id,
            item_id: id % 7,
            title: format!("book {}", id % 7),
            topic: "topic".into(),
            qty: 1,
            cost: 5,
            remaining: 3,
            created: 1000 + id,
            request: request.into(),
        })
    }

    fn refusal(request: &str) -> Finished {
        Finished::Refused {
            request: request.into(),
            rejection: Rejection::OutOfStock(3),
            asked: Some((3, 1)),
        }
    }

    /// `n` finished buys: every fifth refused, the rest numbered orders.
    fn buys(n: usize) -> Vec<Finished> {
        let mut next_id = 1;
        (0..n)
            .map(|i| {
                let request = format!("req-{i}");
                if i % 5 == 4 {
                    refusal(&request)
                } else {
                    next_id += 1;
                    order(next_id - 1, &request)
                }
            })
            .collect()
    }

    fn append_all(archive: &Archive, records: &[Finished]) -> ArchiveMark {
        records
            .iter()
            .fold(archive.mark(), |at, r| archive.append(at, r))
    }

    fn on_disk(fs: &MemFs) -> Box<dyn ArchiveFile> {
        fs.create_dir_all(Path::new("/d")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        open_file(fs.clone(), Path::new("/d")).unwrap()
    }

    #[test]
    fn every_record_is_found_by_request_and_every_order_by_id() {
        // Enough records to merge the index and to flush the buffer.
        let records = buys(MERGE_AT + 900);
        let archive = Archive::open(on_disk(&MemFs::new()), ArchiveMark::default()).unwrap();
        let mark = append_all(&archive, &records);
        assert_eq!(mark.count, records.len() as u64);
        assert!(archive.shared.lock().written > 0, "nothing was flushed");
        for r in &records {
            assert_eq!(archive.find(mark, r.request()).as_ref(), Some(r));
            if let Finished::Ordered(o) = r {
                assert_eq!(archive.order(mark, o.id).as_ref(), Some(o));
            }
        }
        assert_eq!(archive.find(mark, "req-unknown"), None);
        let orders = records.iter().filter(|r| matches!(r, Finished::Ordered(_)));
        assert_eq!(archive.order(mark, orders.count() as u64 + 1), None);
        assert_eq!(archive.records_from(mark, 0).unwrap(), records);
        assert_eq!(archive.failure(), None);
    }

    #[test]
    fn orders_finished_out_of_id_order_are_found_by_id() {
        // Ids 1..=300 finish shuffled within neighbourhoods, and id 5
        // finishes last of all (a buy pending across a failover).
        let mut ids: Vec<OrderId> = (1..=300).filter(|id| *id != 5).collect();
        for chunk in ids.chunks_mut(7) {
            chunk.reverse();
        }
        ids.push(5);
        let archive = Archive::in_memory();
        let records: Vec<Finished> = ids.iter().map(|id| order(*id, &format!("q{id}"))).collect();
        let mark = append_all(&archive, &records);
        for r in &records {
            let Finished::Ordered(o) = r else {
                unreachable!()
            };
            assert_eq!(archive.order(mark, o.id).as_ref(), Some(o));
        }
        assert_eq!(archive.order(mark, 301), None);
        assert_eq!(archive.order(mark, 0), None);
    }

    #[test]
    fn an_older_mark_sees_the_archive_as_it_was() {
        let records = buys(40);
        let archive = Archive::in_memory();
        let early = append_all(&archive, &records[..20]);
        append_all(&archive, &records[20..]);
        assert_eq!(archive.find(early, "req-3"), Some(records[3].clone()));
        assert_eq!(archive.find(early, "req-30"), None);
        assert_eq!(archive.records_from(early, 0).unwrap(), records[..20]);
    }

    #[test]
    fn reopening_cuts_the_archive_to_the_mark_and_indexes_it() {
        let fs = MemFs::new();
        let records = buys(300);
        let archive = Archive::open(on_disk(&fs), ArchiveMark::default()).unwrap();
        let mark = append_all(&archive, &records[..200]);
        append_all(&archive, &records[200..]);
        (archive.syncer().unwrap())().unwrap();
        drop(archive);
        fs.crash();
        let reopened = Archive::open(on_disk(&fs), mark).unwrap();
        assert_eq!(reopened.mark(), mark);
        assert_eq!(reopened.find(mark, "req-150"), Some(records[150].clone()));
        assert_eq!(reopened.find(mark, "req-250"), None);
        let len = fs.read_live("/d/orders").unwrap().len() as u64;
        assert_eq!(len, mark.len, "the part after the mark was not cut");
        // Appends follow on from the mark.
        let next = reopened.append(mark, &records[200]);
        assert_eq!(reopened.find(next, "req-200"), Some(records[200].clone()));
    }

    #[test]
    fn an_archive_that_lost_or_changed_bytes_is_refused() {
        let fs = MemFs::new();
        let archive = Archive::open(on_disk(&fs), ArchiveMark::default()).unwrap();
        let mark = append_all(&archive, &buys(50));
        (archive.syncer().unwrap())().unwrap();
        let mut other = mark;
        other.digest ^= 1;
        assert!(Archive::open(on_disk(&fs), other).is_err());
        // Appended but never synced: a crash loses it.
        let unsynced = append_all(&archive, &buys(60)[50..]);
        archive.shared.lock().flush();
        fs.crash();
        let err = Archive::open(on_disk(&fs), unsynced).unwrap_err();
        assert!(err.contains("counts on"), "{err}");
    }

    #[test]
    fn an_append_from_a_stale_mark_poisons_the_archive() {
        let records = buys(3);
        let archive = Archive::in_memory();
        let first = archive.append(ArchiveMark::default(), &records[0]);
        archive.append(first, &records[1]);
        assert_eq!(archive.append(first, &records[2]), first);
        assert!(archive.failure().is_some());
    }

    #[test]
    fn extending_continues_at_the_end_or_starts_over() {
        let records = buys(100);
        let full = Archive::in_memory();
        let whole = append_all(&full, &records);
        let behind = Archive::in_memory();
        let part = append_all(&behind, &records[..30]);
        let tail = full.records_from(whole, part.len).unwrap();
        assert_eq!(behind.extend_from(part.len, &tail), Ok(whole));
        assert_eq!(behind.find(whole, "req-99"), Some(records[99].clone()));
        assert!(behind.extend_from(part.len, &tail).is_err(), "not its end");
        assert_eq!(behind.extend_from(0, &records), Ok(whole));
        assert_eq!(behind.records_from(whole, 0).unwrap(), records);
    }

    #[test]
    fn the_index_keeps_every_offset_of_a_shared_hash() {
        let mut index = RequestIndex::default();
        // Enough for several runs, merged and not.
        let n = 5 * MERGE_AT as u64 + 10;
        for offset in 0..n {
            index.insert(offset % 3, offset);
        }
        index.insert(1, 1_000_000);
        assert!(index.runs.len() > 1, "{} runs", index.runs.len());
        assert!(index.runs.iter().all(|r| r.is_sorted()));
        let mut ones = index.candidates(1);
        ones.sort();
        let expected: Vec<u64> = (0..n).filter(|o| o % 3 == 1).chain([1_000_000]).collect();
        assert_eq!(ones, expected);
        assert!(index.candidates(7).is_empty());
    }
}
