//! The small file-system trait the storage format is written against, so the
//! same format code runs on a real disk (pygmy-net's `StdFs`), on turmoil's
//! simulated disk (pygmy-sim) and in memory (`MemFs`, in `memfs.rs`).
//!
//! Durability contract (a POSIX disk's, which turmoil's `unstable-fs` models):
//! - bytes written to a file survive a crash only after `FsFile::sync` on it;
//! - a file that was created or renamed survives a crash only after
//!   `Fs::sync_dir` on its directory, too;
//! - `rename` replaces the target atomically.

pub mod framing;
pub mod memfs;
pub mod record;

use std::io;
use std::path::Path;

/// An open file, positioned for appending.
pub trait FsFile: Send {
    /// Appends `bytes` at the end of the file (not durable until `sync`).
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes every write to this file durable (fsync).
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes; later appends go after it.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

/// A directory tree of files.
pub trait Fs: Send + Sync + 'static {
    type File: FsFile;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The whole file, or `None` when it does not exist.
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>>;
    /// The file's bytes from `offset` to its end (none past the end), or
    /// `None` when it does not exist. Compaction reads only a log's tail
    /// with it. The default reads the whole file; a real disk seeks.
    fn read_from(&self, path: &Path, offset: u64) -> io::Result<Option<Vec<u8>>> {
        Ok(self.read(path)?.map(|bytes| {
            let start = usize::try_from(offset).map_or(bytes.len(), |o| o.min(bytes.len()));
            bytes[start..].to_vec()
        }))
    }
    /// Up to `len` bytes of the file from `offset` (fewer at its end; an
    /// error when it does not exist). The order archive reads single
    /// records with it. The default reads from `offset` to the end; a real
    /// disk reads just the range.
    fn read_at(&self, path: &Path, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let mut bytes = self
            .read_from(path, offset)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
        bytes.truncate(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(bytes)
    }
    /// Whether `path` exists, and whether it holds any bytes: `None` when
    /// missing, `Some(false)` when empty. The default reads the file; a real
    /// disk reads one byte.
    fn probe(&self, path: &Path) -> io::Result<Option<bool>> {
        match self.read_at(path, 0, 1) {
            Ok(bytes) => Ok(Some(!bytes.is_empty())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
    /// Opens `path` for appending, creating it empty if missing.
    fn open_append(&self, path: &Path) -> io::Result<Self::File>;
    /// Creates or truncates `path`, writes `bytes` and syncs the file
    /// (not the directory).
    fn write_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}
