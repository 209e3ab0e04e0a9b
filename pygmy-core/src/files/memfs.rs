//! An in-memory [`Fs`] with a POSIX-like durability model, for tests,
//! embedding and benches.
//!
//! # Model
//!
//! Files are inodes with two byte strings: `current` (what reads see) and
//! `durable` (what a crash leaves). `FsFile::sync` and `write_synced` copy
//! current to durable.
//!
//! Names live in two namespaces: the live one (what `read`, `open_append`,
//! `rename` and `remove` see and change) and the durable one. `sync_dir(d)`
//! makes the durable entries directly inside `d` — files and
//! subdirectories — equal to the live ones. So a created, renamed or removed
//! name survives a crash only once its directory is synced, and a new
//! directory only once its parent is.
//!
//! [`MemFs::crash`] replaces the live namespace with the durable one (less
//! anything under a directory whose own entry never became durable), resets
//! every inode to its durable bytes, and invalidates every open file handle:
//! a handle opened before a crash fails, as the process holding it would be
//! gone.
//!
//! [`MemFs::lying`] builds a disk whose syncs report success and do nothing,
//! "a storage that reports a sync it did not do": tests use it to prove that
//! the crash checks catch lost acknowledged writes.
//!
//! The roots `""` (a relative path's working directory) and `"/"` always
//! exist and are always durable.
//!
//! # Caveats
//!
//! - Renaming and removing directories is not supported (nothing here
//!   needs it); `rename` and `remove` act on files only.
//! - Writes are atomic: a crash never leaves half an `append`. Torn tails are
//!   tested by appending partial records directly.

use crate::files::{Fs, FsFile};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

type InodeId = u64;

#[derive(Default)]
struct Inode {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// `current` is `durable` plus appended bytes (no rewrite or truncation
    /// since the last sync), so a sync need only copy the tail: a log's
    /// group commit then costs its new bytes, not the whole file.
    append_only: bool,
    /// Open handles; an unlinked inode is kept while one is open.
    open: usize,
}

/// Names: path → inode for files, and the set of directories.
#[derive(Clone, Default)]
struct Namespace {
    files: BTreeMap<PathBuf, InodeId>,
    dirs: BTreeSet<PathBuf>,
}

impl Namespace {
    fn dir_exists(&self, path: &Path) -> bool {
        is_root(path) || self.dirs.contains(path)
    }

    /// True when every directory above `path` exists.
    fn reachable(&self, path: &Path) -> bool {
        path.ancestors().skip(1).all(|a| self.dir_exists(a))
    }
}

#[derive(Default)]
struct Disk {
    lying: bool,
    /// Bumped by every crash; handles from an older generation fail.
    generation: u64,
    next_inode: InodeId,
    inodes: BTreeMap<InodeId, Inode>,
    live: Namespace,
    durable: Namespace,
    file_syncs: u64,
}

fn is_root(path: &Path) -> bool {
    path.as_os_str().is_empty() || path == Path::new("/")
}

fn parent_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new(""))
}

fn not_found(what: &str, path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{what} {} not found", path.display()),
    )
}

fn is_a_directory(path: &Path) -> io::Error {
    io::Error::other(format!("{} is a directory", path.display()))
}

impl Disk {
    fn check_parent(&self, path: &Path) -> io::Result<()> {
        let parent = parent_of(path);
        if self.live.dir_exists(parent) {
            Ok(())
        } else {
            Err(not_found("directory", parent))
        }
    }

    fn check_not_dir(&self, path: &Path) -> io::Result<()> {
        if self.live.dir_exists(path) {
            Err(is_a_directory(path))
        } else {
            Ok(())
        }
    }

    /// The live file at `path`, created empty if missing.
    fn file_or_create(&mut self, path: &Path) -> io::Result<InodeId> {
        self.check_parent(path)?;
        self.check_not_dir(path)?;
        if let Some(&id) = self.live.files.get(path) {
            return Ok(id);
        }
        let id = self.next_inode;
        self.next_inode += 1;
        self.inodes.insert(id, Inode::default());
        self.live.files.insert(path.to_path_buf(), id);
        Ok(id)
    }

    fn inode(&mut self, id: InodeId) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&id)
            .ok_or_else(|| io::Error::other(format!("inode {id} is gone")))
    }

    fn sync_inode(&mut self, id: InodeId) -> io::Result<()> {
        self.file_syncs += 1;
        let lying = self.lying;
        let inode = self.inode(id)?;
        if !lying {
            if inode.append_only && inode.current.len() >= inode.durable.len() {
                let tail = inode.current[inode.durable.len()..].to_vec();
                inode.durable.extend_from_slice(&tail);
            } else {
                inode.durable = inode.current.clone();
            }
            inode.append_only = true;
        }
        Ok(())
    }

    /// Drops inodes no name and no handle refers to.
    fn collect_garbage(&mut self) {
        let named: BTreeSet<InodeId> = self
            .live
            .files
            .values()
            .chain(self.durable.files.values())
            .copied()
            .collect();
        self.inodes
            .retain(|id, inode| inode.open > 0 || named.contains(id));
    }

    fn crash(&mut self) {
        self.generation += 1;
        let durable = &self.durable;
        let survivors = Namespace {
            files: durable
                .files
                .iter()
                .filter(|(p, _)| durable.reachable(p))
                .map(|(p, id)| (p.clone(), *id))
                .collect(),
            dirs: durable
                .dirs
                .iter()
                .filter(|d| durable.reachable(d))
                .cloned()
                .collect(),
        };
        self.live = survivors.clone();
        self.durable = survivors;
        for inode in self.inodes.values_mut() {
            inode.current = inode.durable.clone();
            inode.append_only = true;
            inode.open = 0;
        }
        self.collect_garbage();
    }
}

/// An in-memory file system (see the module docs). Clones share one disk.
#[derive(Clone, Default)]
pub struct MemFs {
    disk: Arc<Mutex<Disk>>,
}

impl MemFs {
    /// An empty disk that keeps its promises.
    pub fn new() -> MemFs {
        MemFs::default()
    }

    /// An empty disk whose `sync`, `write_synced`'s sync and `sync_dir`
    /// report success but make nothing durable.
    pub fn lying() -> MemFs {
        let fs = MemFs::default();
        fs.disk.lock().lying = true;
        fs
    }

    /// Simulates a power loss: only what was made durable survives, and
    /// every open handle becomes invalid.
    pub fn crash(&self) {
        self.disk.lock().crash();
    }

    /// The file's current bytes, as a read sees them now.
    pub fn read_live(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        let disk = self.disk.lock();
        let id = disk.live.files.get(path.as_ref())?;
        disk.inodes.get(id).map(|i| i.current.clone())
    }

    /// The bytes a crash now would leave at `path` (`None` if the file
    /// would be gone).
    pub fn read_durable(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        let path = path.as_ref();
        let disk = self.disk.lock();
        if !disk.durable.reachable(path) {
            return None;
        }
        let id = disk.durable.files.get(path)?;
        disk.inodes.get(id).map(|i| i.durable.clone())
    }

    /// Every live file, in path order.
    pub fn files(&self) -> Vec<PathBuf> {
        self.disk.lock().live.files.keys().cloned().collect()
    }

    /// How many file syncs (`FsFile::sync` and `write_synced`) were asked for.
    pub fn file_syncs(&self) -> u64 {
        self.disk.lock().file_syncs
    }
}

impl Fs for MemFs {
    type File = MemFile;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        let missing: Vec<&Path> = dir
            .ancestors()
            .filter(|a| !disk.live.dir_exists(a))
            .collect();
        for a in &missing {
            if disk.live.files.contains_key(*a) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} is a file", a.display()),
                ));
            }
        }
        disk.live
            .dirs
            .extend(missing.into_iter().map(Path::to_path_buf));
        Ok(())
    }

    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        let disk = self.disk.lock();
        disk.check_not_dir(path)?;
        Ok(disk
            .live
            .files
            .get(path)
            .and_then(|id| disk.inodes.get(id))
            .map(|i| i.current.clone()))
    }

    fn open_append(&self, path: &Path) -> io::Result<MemFile> {
        let mut disk = self.disk.lock();
        let id = disk.file_or_create(path)?;
        disk.inode(id)?.open += 1;
        Ok(MemFile {
            disk: Arc::clone(&self.disk),
            inode: id,
            generation: disk.generation,
        })
    }

    fn write_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut disk = self.disk.lock();
        let id = disk.file_or_create(path)?;
        let inode = disk.inode(id)?;
        inode.current = bytes.to_vec();
        inode.append_only = false;
        disk.sync_inode(id)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        let id = *disk
            .live
            .files
            .get(from)
            .ok_or_else(|| not_found("file", from))?;
        disk.check_parent(to)?;
        disk.check_not_dir(to)?;
        disk.live.files.remove(from);
        disk.live.files.insert(to.to_path_buf(), id);
        disk.collect_garbage();
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.live
            .files
            .remove(path)
            .ok_or_else(|| not_found("file", path))?;
        disk.collect_garbage();
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        if !disk.live.dir_exists(dir) {
            return Err(not_found("directory", dir));
        }
        if disk.lying {
            return Ok(());
        }
        let Disk { live, durable, .. } = &mut *disk;
        durable.files.retain(|p, _| parent_of(p) != dir);
        durable.dirs.retain(|p| parent_of(p) != dir);
        durable.files.extend(
            live.files
                .iter()
                .filter(|(p, _)| parent_of(p) == dir)
                .map(|(p, id)| (p.clone(), *id)),
        );
        durable
            .dirs
            .extend(live.dirs.iter().filter(|p| parent_of(p) == dir).cloned());
        disk.collect_garbage();
        Ok(())
    }
}

/// An open [`MemFs`] file. It refers to its inode, not its name, so it
/// keeps writing to the same file across renames, as a POSIX descriptor
/// does.
pub struct MemFile {
    disk: Arc<Mutex<Disk>>,
    inode: InodeId,
    generation: u64,
}

impl MemFile {
    fn with<T>(&self, f: impl FnOnce(&mut Disk, InodeId) -> io::Result<T>) -> io::Result<T> {
        let mut disk = self.disk.lock();
        if disk.generation != self.generation {
            return Err(io::Error::other("file handle opened before a crash"));
        }
        f(&mut disk, self.inode)
    }
}

impl FsFile for MemFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.with(|disk, id| {
            disk.inode(id)?.current.extend_from_slice(bytes);
            Ok(())
        })
    }

    fn sync(&mut self) -> io::Result<()> {
        self.with(|disk, id| disk.sync_inode(id))
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| io::Error::other("length too large"))?;
        self.with(|disk, id| {
            let inode = disk.inode(id)?;
            inode.current.resize(len, 0);
            inode.append_only = false;
            Ok(())
        })
    }
}

impl Drop for MemFile {
    fn drop(&mut self) {
        let mut disk = self.disk.lock();
        if disk.generation != self.generation {
            return;
        }
        if let Some(inode) = disk.inodes.get_mut(&self.inode) {
            inode.open = inode.open.saturating_sub(1);
        }
        disk.collect_garbage();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    /// A disk with a durable `/d` directory.
    fn disk_with_dir() -> MemFs {
        let fs = MemFs::new();
        fs.create_dir_all(p("/d")).unwrap();
        fs.sync_dir(p("/")).unwrap();
        fs
    }

    #[test]
    fn synced_bytes_survive_a_crash_and_unsynced_ones_do_not() {
        let fs = disk_with_dir();
        let mut f = fs.open_append(p("/d/f")).unwrap();
        fs.sync_dir(p("/d")).unwrap();
        f.append(b"kept").unwrap();
        f.sync().unwrap();
        f.append(b"lost").unwrap();
        assert_eq!(fs.read_live("/d/f").unwrap(), b"keptlost");
        fs.crash();
        assert_eq!(fs.read_live("/d/f").unwrap(), b"kept");
    }

    #[test]
    fn file_created_without_sync_dir_vanishes_on_crash() {
        let fs = disk_with_dir();
        let mut f = fs.open_append(p("/d/f")).unwrap();
        f.append(b"data").unwrap();
        f.sync().unwrap();
        assert_eq!(fs.read_durable("/d/f"), None);
        fs.crash();
        assert_eq!(fs.read_live("/d/f"), None);
    }

    #[test]
    fn file_created_with_sync_dir_survives_a_crash() {
        let fs = disk_with_dir();
        fs.write_synced(p("/d/f"), b"data").unwrap();
        fs.sync_dir(p("/d")).unwrap();
        fs.crash();
        assert_eq!(fs.read_live("/d/f").unwrap(), b"data");
    }

    #[test]
    fn rename_without_sync_dir_is_undone_by_a_crash() {
        let fs = disk_with_dir();
        fs.write_synced(p("/d/old"), b"old").unwrap();
        fs.sync_dir(p("/d")).unwrap();
        fs.write_synced(p("/d/new.tmp"), b"new").unwrap();
        fs.sync_dir(p("/d")).unwrap();
        fs.rename(p("/d/new.tmp"), p("/d/old")).unwrap();
        assert_eq!(fs.read_live("/d/old").unwrap(), b"new");
        fs.crash();
        assert_eq!(fs.read_live("/d/old").unwrap(), b"old");
        assert_eq!(fs.read_live("/d/new.tmp").unwrap(), b"new");
    }

    #[test]
    fn rename_with_sync_dir_is_durable() {
        let fs = disk_with_dir();
        fs.write_synced(p("/d/old"), b"old").unwrap();
        fs.write_synced(p("/d/new.tmp"), b"new").unwrap();
        fs.rename(p("/d/new.tmp"), p("/d/old")).unwrap();
        fs.sync_dir(p("/d")).unwrap();
        fs.crash();
        assert_eq!(fs.read_live("/d/old").unwrap(), b"new");
        assert_eq!(fs.files(), vec![PathBuf::from("/d/old")]);
    }

    #[test]
    fn remove_without_sync_dir_is_undone_by_a_crash() {
        let fs = disk_with_dir();
        fs.write_synced(p("/d/f"), b"data").unwrap();
        fs.sync_dir(p("/d")).unwrap();
        fs.remove(p("/d/f")).unwrap();
        assert_eq!(fs.read(p("/d/f")).unwrap(), None);
        fs.crash();
        assert_eq!(fs.read_live("/d/f").unwrap(), b"data");
    }

    #[test]
    fn directory_whose_parent_was_never_synced_vanishes_with_its_files() {
        let fs = MemFs::new();
        fs.create_dir_all(p("/a/b")).unwrap();
        fs.write_synced(p("/a/b/f"), b"data").unwrap();
        fs.sync_dir(p("/a/b")).unwrap();
        fs.sync_dir(p("/a")).unwrap();
        // "/" was never synced, so "/a" is not durable.
        fs.crash();
        assert_eq!(fs.read_live("/a/b/f"), None);
        assert!(
            fs.open_append(p("/a/b/f")).is_err(),
            "the directory is gone"
        );
    }

    #[test]
    fn truncation_is_durable_only_after_sync() {
        let fs = disk_with_dir();
        let mut f = fs.open_append(p("/d/f")).unwrap();
        fs.sync_dir(p("/d")).unwrap();
        f.append(b"abcdef").unwrap();
        f.sync().unwrap();
        f.set_len(2).unwrap();
        f.append(b"X").unwrap();
        assert_eq!(fs.read_live("/d/f").unwrap(), b"abX");
        assert_eq!(fs.read_durable("/d/f").unwrap(), b"abcdef");
        f.sync().unwrap();
        fs.crash();
        assert_eq!(fs.read_live("/d/f").unwrap(), b"abX");
    }

    #[test]
    fn handle_follows_its_file_across_a_rename() {
        let fs = disk_with_dir();
        let mut f = fs.open_append(p("/d/a")).unwrap();
        fs.rename(p("/d/a"), p("/d/b")).unwrap();
        f.append(b"x").unwrap();
        assert_eq!(fs.read_live("/d/b").unwrap(), b"x");
        assert_eq!(fs.read_live("/d/a"), None);
    }

    #[test]
    fn handle_opened_before_a_crash_fails_after_it() {
        let fs = disk_with_dir();
        let mut f = fs.open_append(p("/d/f")).unwrap();
        fs.sync_dir(p("/d")).unwrap();
        fs.crash();
        assert!(f.append(b"late").is_err());
        assert!(f.sync().is_err());
        assert_eq!(fs.read_live("/d/f").unwrap(), b"");
    }

    #[test]
    fn lying_disk_loses_synced_data_on_crash() {
        let fs = MemFs::lying();
        fs.create_dir_all(p("/d")).unwrap();
        fs.sync_dir(p("/")).unwrap();
        let mut f = fs.open_append(p("/d/f")).unwrap();
        fs.sync_dir(p("/d")).unwrap();
        f.append(b"acknowledged").unwrap();
        f.sync().unwrap();
        drop(f);
        assert_eq!(fs.read_live("/d/f").unwrap(), b"acknowledged");
        fs.crash();
        assert_eq!(fs.read_live("/d/f"), None, "a lying disk must lose it");
    }

    #[test]
    fn syncs_after_appends_truncations_and_crashes_keep_exactly_the_synced_bytes() {
        // Exercises the append-only fast path of sync against full copies.
        let fs = MemFs::new();
        fs.create_dir_all(p("/d")).unwrap();
        fs.sync_dir(p("/")).unwrap();
        let mut f = fs.open_append(p("/d/f")).unwrap();
        fs.sync_dir(p("/d")).unwrap();
        f.append(b"abc").unwrap();
        f.sync().unwrap();
        f.append(b"def").unwrap();
        f.sync().unwrap();
        f.set_len(2).unwrap();
        // As long as what it replaced: only the rewrite flag tells.
        f.append(b"WXYZ").unwrap();
        f.sync().unwrap();
        f.append(b"lost").unwrap();
        drop(f);
        fs.crash();
        assert_eq!(fs.read_live("/d/f").unwrap(), b"abWXYZ");
        let mut f = fs.open_append(p("/d/f")).unwrap();
        f.append(b"!").unwrap();
        f.sync().unwrap();
        drop(f);
        fs.crash();
        assert_eq!(fs.read_live("/d/f").unwrap(), b"abWXYZ!");
    }

    #[test]
    fn missing_parent_directory_is_an_error() {
        let fs = MemFs::new();
        assert!(fs.open_append(p("/nope/f")).is_err());
        assert!(fs.write_synced(p("/nope/f"), b"x").is_err());
        assert!(fs.sync_dir(p("/nope")).is_err());
    }

    #[test]
    fn unreferenced_inodes_are_collected() {
        let fs = disk_with_dir();
        for _ in 0..10 {
            fs.write_synced(p("/d/f.tmp"), b"x").unwrap();
            fs.rename(p("/d/f.tmp"), p("/d/f")).unwrap();
            fs.sync_dir(p("/d")).unwrap();
        }
        assert_eq!(fs.disk.lock().inodes.len(), 1);
    }
}
