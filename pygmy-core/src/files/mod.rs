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

/// [`FsFile`] over a file handle opened in append mode, for the adapters
/// whose files are `std::fs::File`-like (`StdFs` on the real disk, `SimFs`
/// on turmoil's): `append` is `io::Write::write_all`, `sync` and `set_len`
/// are the handle's own `sync_all` and `set_len`. Those two are inherent
/// methods of each file type, not a trait, so the adapter passes them in;
/// that keeps one implementation for both.
#[derive(Debug)]
pub struct AppendFile<F> {
    file: F,
    sync_all: fn(&F) -> io::Result<()>,
    set_len: fn(&F, u64) -> io::Result<()>,
}

impl<F> AppendFile<F> {
    /// Wraps `file`, which must have been opened for appending (every write
    /// goes to its end, wherever a `set_len` left it).
    pub fn new(
        file: F,
        sync_all: fn(&F) -> io::Result<()>,
        set_len: fn(&F, u64) -> io::Result<()>,
    ) -> Self {
        AppendFile {
            file,
            sync_all,
            set_len,
        }
    }
}

impl<F: io::Write + Send> FsFile for AppendFile<F> {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        (self.sync_all)(&self.file)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        (self.set_len)(&self.file, len)
    }
}

/// A read's result with "no such file" as `None`: how [`Fs::read`] and
/// [`Fs::read_from`] report a missing file, for every adapter.
pub fn found<T>(result: io::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
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
        Ok(found(self.read_at(path, 0, 1))?.map(|bytes| !bytes.is_empty()))
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
