//! A tiny durable record: one value in one file, replaced atomically. The
//! front end keeps its view record in one.
//!
//! The file holds a single record in the log store's framing (length + CRC,
//! see `framing.rs`, where the format lives). `save` writes `NAME.tmp`,
//! syncs it, renames it over `NAME` and syncs the directory, so after a crash
//! the file holds either the old value or the new one, whole.
//!
//! `load` tells a missing file (`None`: nothing was ever saved) from a
//! corrupt one (an error naming the file): since the file is only ever
//! replaced by rename, a bad one means the disk lost data, and quietly
//! starting from nothing could resurrect a stale view.

use crate::error::Result;
use crate::files::framing::{create_dir_durably, parent_dir, read_single, write_single};
use crate::files::Fs;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One durable value at `path` (see the module docs).
pub struct RecordFile<F: Fs> {
    fs: F,
    path: PathBuf,
    /// Serialises saves (they share the `.tmp` file) and remembers whether
    /// the directory was already created and synced.
    dir_ready: Mutex<bool>,
}

impl<F: Fs> RecordFile<F> {
    pub fn new(fs: F, path: impl Into<PathBuf>) -> Self {
        RecordFile {
            fs,
            path: path.into(),
            dir_ready: Mutex::new(false),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved value; `None` when nothing was ever saved.
    pub fn load<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        read_single(&self.fs, &self.path)
    }

    /// Replaces the value durably: when this returns `Ok`, a crash leaves
    /// `value`. Creates the directory (durably) on first use.
    pub fn save<T: Serialize>(&self, value: &T) -> Result<()> {
        let mut dir_ready = self.dir_ready.lock();
        if !*dir_ready {
            create_dir_durably(&self.fs, parent_dir(&self.path))?;
            *dir_ready = true;
        }
        write_single(&self.fs, &self.path, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::files::framing::tmp_path;
    use crate::files::memfs::MemFs;
    use crate::types::{Group, NodeId};
    use crate::view::{GroupRecord, View};

    const PATH: &str = "/var/pygmy/frontend/views";

    fn record(epoch: u64) -> GroupRecord {
        let view = View {
            group: Group::Catalog,
            epoch,
            primary: NodeId::new("catalog-1"),
            backups: vec![NodeId::new("catalog-2")],
        };
        GroupRecord {
            current: view.clone(),
            confirmed: Some(view),
            disks: [(NodeId::new("catalog-1"), 7)].into_iter().collect(),
        }
    }

    #[test]
    fn missing_record_loads_as_none() {
        let file = RecordFile::new(MemFs::new(), PATH);
        assert_eq!(file.load::<GroupRecord>().unwrap(), None);
    }

    #[test]
    fn saved_record_survives_a_crash_in_a_directory_it_created() {
        let fs = MemFs::new();
        let file = RecordFile::new(fs.clone(), PATH);
        file.save(&record(1)).unwrap();
        fs.crash();
        let reopened = RecordFile::new(fs, PATH);
        assert_eq!(reopened.load().unwrap(), Some(record(1)));
    }

    #[test]
    fn save_replaces_the_previous_value() {
        let fs = MemFs::new();
        let file = RecordFile::new(fs.clone(), PATH);
        file.save(&record(1)).unwrap();
        file.save(&record(2)).unwrap();
        fs.crash();
        assert_eq!(file.load().unwrap(), Some(record(2)));
        assert_eq!(fs.files(), vec![PathBuf::from(PATH)], "no tmp file left");
    }

    #[test]
    fn leftover_tmp_file_is_ignored() {
        let fs = MemFs::new();
        let file = RecordFile::new(fs.clone(), PATH);
        file.save(&record(1)).unwrap();
        // A crash after writing the tmp file but before the rename.
        fs.write_synced(&tmp_path(Path::new(PATH)), b"half a rec")
            .unwrap();
        assert_eq!(file.load().unwrap(), Some(record(1)));
        file.save(&record(3)).unwrap();
        assert_eq!(file.load().unwrap(), Some(record(3)));
    }

    #[test]
    fn corrupt_record_is_an_error_naming_the_file() {
        let fs = MemFs::new();
        let file = RecordFile::new(fs.clone(), PATH);
        file.save(&record(1)).unwrap();
        let mut bytes = fs.read_live(PATH).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x20;
        fs.write_synced(Path::new(PATH), &bytes).unwrap();
        let err = file.load::<GroupRecord>().unwrap_err();
        assert!(matches!(err, Error::Storage(m) if m.contains(PATH) && m.contains("corrupt")));
    }

    #[test]
    fn record_of_another_type_is_an_error() {
        let fs = MemFs::new();
        let file = RecordFile::new(fs, PATH);
        file.save(&"just a string").unwrap();
        assert!(file.load::<GroupRecord>().is_err());
    }

    #[test]
    fn lying_disk_loses_the_record_on_crash() {
        let fs = MemFs::lying();
        let file = RecordFile::new(fs.clone(), PATH);
        file.save(&record(1)).unwrap();
        fs.crash();
        assert_eq!(file.load::<GroupRecord>().unwrap(), None);
    }
}
