//! [`Fs`] on turmoil's simulated disk (turmoil 0.7.2, `unstable-fs`), so a
//! simulated replica runs the real storage format and `sim.crash(host)`
//! tests it.
//!
//! # Turmoil's durability model (read from its source)
//!
//! Each host has its own disk. Every change is queued as a pending operation:
//! - writes and `set_len` become durable on `File::sync_all` of that file;
//! - creating, renaming and removing a name becomes durable on `sync_dir` of
//!   the directory holding it, and a directory's own creation on `sync_dir` of
//!   itself or of its parent;
//! - `sim.crash` drops every pending operation, then every file or directory
//!   whose name never became durable.
//!
//! That is the contract of [`Fs`], so this adapter only forwards calls; its
//! files are pygmy-core's [`AppendFile`], as the real disk's are. Turmoil's
//! `File` is `Send` (a descriptor number, flags and a `std::sync::Mutex`
//! cursor), so no wrapper is needed to satisfy `FsFile: Send`; append mode
//! writes at the file's current length, pending `set_len`s included, so
//! `set_len` then `append` works as on a real disk.
//!
//! # Caveats
//!
//! - Every call must run inside a simulated host (turmoil finds the host's
//!   disk through the running simulation); outside one it panics.
//! - Turmoil keys pending writes by path, not by inode: writes still pending
//!   on a file that is then replaced by `rename` would land in the new file
//!   on its next sync. `LogStore` syncs the log before replacing it, which
//!   avoids this.
//! - `sync_dir("")` is a no-op: turmoil has no node for the working
//!   directory, and a relative top-level directory is made durable by syncing
//!   itself.

use pygmy_core::unstable::files::{found, AppendFile, Fs};
use std::io::{self, Write};
use std::path::Path;
use turmoil::fs::shim::std::fs as sim;

/// The current simulated host's file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimFs;

/// A simulated file opened for appending.
pub type SimFile = AppendFile<sim::File>;

impl Fs for SimFs {
    type File = SimFile;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        sim::create_dir_all(dir)
    }

    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        found(sim::read(path))
    }

    fn open_append(&self, path: &Path) -> io::Result<SimFile> {
        sim::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map(|file| AppendFile::new(file, sim::File::sync_all, sim::File::set_len))
    }

    fn write_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file = sim::File::create(path)?;
        file.write_all(bytes)?;
        file.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        sim::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        sim::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if dir.as_os_str().is_empty() {
            return Ok(());
        }
        sim::sync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use pygmy_core::unstable::state::command::{CatalogCommand, Command, Entry};
    use pygmy_core::unstable::state::orders::OrderLedger;
    use pygmy_core::unstable::state::{Snapshot, State};
    use pygmy_core::unstable::storage::logstore::LogStore;
    use pygmy_core::unstable::storage::{Recovered, Storage};
    use pygmy_core::unstable::types::{Group, LogPos, Lsn, NodeId};
    use pygmy_core::unstable::view::View;
    use std::sync::Arc;

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

    fn view() -> View {
        View {
            group: Group::Catalog,
            epoch: 2,
            primary: NodeId::new("catalog-1"),
            backups: vec![NodeId::new("catalog-2")],
        }
    }

    fn snapshot(lsn: Lsn) -> Snapshot {
        Snapshot {
            pos: LogPos::new(1, lsn),
            state: State::Orders(OrderLedger::new()),
            digest: lsn,
        }
    }

    /// What each boot of the host found on its disk.
    type Boots = Arc<Mutex<Vec<Recovered>>>;

    /// Runs a host that, on each boot, loads its store, records what it found
    /// and then runs `work(boot, store)`; crashes and bounces it after each
    /// boot until it has booted `boots` times. Returns what each boot found.
    fn run_host(
        builder: &mut turmoil::Builder,
        boots: usize,
        work: fn(usize, &mut LogStore<SimFs>) -> pygmy_core::Result<()>,
    ) -> Vec<Recovered> {
        let mut sim = builder.build();
        let found: Boots = Arc::default();
        let found_in_host = found.clone();
        sim.host("host", move || {
            let found = found_in_host.clone();
            async move {
                let mut store = LogStore::open(SimFs, DIR, 7)?;
                let recovered = store.load()?;
                let boot = {
                    let mut found = found.lock();
                    found.push(recovered);
                    found.len() - 1
                };
                work(boot, &mut store)?;
                std::future::pending::<()>().await;
                Ok(())
            }
        });
        let wait_for = |sim: &mut turmoil::Sim, n: usize| {
            for _ in 0..100 {
                if found.lock().len() >= n {
                    return;
                }
                sim.step().expect("step");
            }
            panic!("the host did not boot {n} times");
        };
        for n in 1..=boots {
            wait_for(&mut sim, n);
            // Let `work` finish its step too.
            sim.step().expect("step");
            if n < boots {
                sim.crash("host");
                sim.bounce("host");
            }
        }
        let found = found.lock();
        found.clone()
    }

    #[test]
    fn only_synced_entries_come_back_after_a_crash() {
        let found = run_host(&mut turmoil::Builder::new(), 2, |boot, store| {
            if boot == 0 {
                store.append(&entries(1..=3))?;
                store.sync()?;
                store.save_view(&view())?;
                store.append(&entries(4..=5))?;
            }
            Ok(())
        });
        assert!(found[0].entries.is_empty());
        assert_eq!(found[1].entries, entries(1..=3));
        assert_eq!(found[1].view, Some(view()));
    }

    #[test]
    fn snapshot_and_the_entries_after_it_survive_a_crash() {
        let found = run_host(&mut turmoil::Builder::new(), 3, |boot, store| {
            match boot {
                0 => {
                    store.append(&entries(1..=6))?;
                    store.save_snapshot(&snapshot(4))?;
                    store.append(&[entry(7)])?;
                    store.sync()?;
                    store.append(&[entry(8)])?;
                }
                1 => {
                    // After the crash the log continues from 7.
                    store.append(&[entry(8)])?;
                    store.sync()?;
                }
                _ => {}
            }
            Ok(())
        });
        assert_eq!(found[1].snapshot, Some(snapshot(4)));
        assert_eq!(found[1].entries, entries(5..=7));
        assert_eq!(found[2].snapshot, Some(snapshot(4)));
        assert_eq!(found[2].entries, entries(5..=8));
    }

    #[test]
    fn torn_writes_leave_a_clean_prefix_and_later_appends_work() {
        // With a block size, turmoil keeps a random number of whole blocks
        // of each pending write on a crash: a torn tail.
        let mut torn_somewhere = false;
        for seed in 0..16 {
            let mut builder = turmoil::Builder::new();
            builder.rng_seed(seed).fs().block_size(16);
            let found = run_host(&mut builder, 3, |boot, store| {
                match boot {
                    0 => {
                        store.append(&entries(1..=2))?;
                        store.sync()?;
                        store.append(&entries(3..=6))?;
                    }
                    1 => {
                        let next = store.last_lsn() + 1;
                        store.append(&[entry(next)])?;
                        store.sync()?;
                    }
                    _ => {}
                }
                Ok(())
            });
            let after_crash = &found[1].entries;
            assert!(after_crash.len() >= 2, "seed {seed}: synced entries lost");
            assert_eq!(
                after_crash[..],
                entries(1..=after_crash.len() as Lsn)[..],
                "seed {seed}: not a clean prefix"
            );
            let n = after_crash.len() as Lsn + 1;
            assert_eq!(found[2].entries, entries(1..=n), "seed {seed}");
            torn_somewhere |= (3..6).contains(&after_crash.len());
        }
        assert!(torn_somewhere, "no seed kept part of the unsynced append");
    }
}
