//! [`Fs`] on the real disk, through `std::fs`.
//!
//! Durability is real fsync: `FsFile::sync` and `write_synced` call
//! `File::sync_all`, and `sync_dir` opens the directory and `sync_all`s it,
//! which is how POSIX makes a created or renamed directory entry durable.
//! The empty path (the parent of a bare relative name) means the working
//! directory, `"."`.

use pygmy_core::unstable::files::{found, AppendFile, Fs};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::Path;

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFs;

/// A file opened for appending (`O_APPEND`): every write goes to the end,
/// wherever a `set_len` left it.
pub type StdFile = AppendFile<File>;

fn dir_or_cwd(dir: &Path) -> &Path {
    if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }
}

impl Fs for StdFs {
    type File = StdFile;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir_or_cwd(dir))
    }

    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        found(std::fs::read(path))
    }

    fn read_from(&self, path: &Path, offset: u64) -> io::Result<Option<Vec<u8>>> {
        found(self.read_at(path, offset, u64::MAX))
    }

    fn read_at(&self, path: &Path, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let mut file = File::open(path)?;
        file.seek(io::SeekFrom::Start(offset))?;
        let mut bytes = Vec::new();
        file.take(len).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn open_append(&self, path: &Path) -> io::Result<StdFile> {
        OpenOptions::new()
            .append(true)
            .create(true)
            .read(true)
            .open(path)
            // Every fsync is timed for the metrics.
            .map(|file| AppendFile::new(file, |f: &File| timed(|| f.sync_all()), File::set_len))
    }

    fn write_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file = File::create(path)?;
        file.write_all(bytes)?;
        timed(|| file.sync_all())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let dir = File::open(dir_or_cwd(dir))?;
        timed(|| dir.sync_all())
    }
}

/// Runs one fsync, recording its time in the metrics' fsync histogram.
/// (Real time: this file system is the real disk, never the simulation's.)
fn timed(sync: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    let started = std::time::Instant::now();
    let result = sync();
    crate::metrics::fsync_histogram().observe(started.elapsed().as_secs_f64());
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use pygmy_core::unstable::files::FsFile;
    use pygmy_core::unstable::state::command::{CatalogCommand, Command, Entry};
    use pygmy_core::unstable::storage::logstore::LogStore;
    use pygmy_core::unstable::storage::Storage;
    use pygmy_core::unstable::types::LogPos;
    use std::path::PathBuf;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("pygmy-stdfs-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn entry(lsn: u64) -> Entry {
        Entry {
            pos: LogPos::new(1, lsn),
            command: Command::Catalog(CatalogCommand::Restock { item: lsn, qty: 1 }),
        }
    }

    #[test]
    fn set_len_then_append_writes_at_the_new_end() {
        let tmp = TempDir::new("setlen");
        StdFs.create_dir_all(&tmp.0).unwrap();
        let path = tmp.0.join("f");
        let mut f = StdFs.open_append(&path).unwrap();
        f.append(b"abcdef").unwrap();
        f.set_len(2).unwrap();
        f.append(b"X").unwrap();
        f.sync().unwrap();
        StdFs.sync_dir(&tmp.0).unwrap();
        assert_eq!(StdFs.read(&path).unwrap().unwrap(), b"abX");
    }

    #[test]
    fn missing_file_reads_as_none() {
        let tmp = TempDir::new("missing");
        assert_eq!(StdFs.read(&tmp.0.join("nope")).unwrap(), None);
    }

    #[test]
    fn log_store_round_trips_on_the_real_disk() {
        let tmp = TempDir::new("logstore");
        let dir = tmp.0.join("catalog-1");
        let mut store = LogStore::open(StdFs, &dir, 7).unwrap();
        store.append(&[entry(1), entry(2), entry(3)]).unwrap();
        store.truncate_after(2).unwrap();
        store.append(&[entry(3)]).unwrap();
        store.sync().unwrap();
        drop(store);
        let mut store = LogStore::open(StdFs, &dir, 7).unwrap();
        let recovered = store.load().unwrap();
        assert_eq!(recovered.entries, vec![entry(1), entry(2), entry(3)]);
    }
}
