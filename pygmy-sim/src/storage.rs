//! Storage faults: damage to a crashed replica's disk, within the storage
//! fault model (see "Storage faults" in `pygmy-core/src/storage/logstore.rs`).
//!
//! # What is injected
//!
//! One replica per group, drawn from the seed, is *damageable*; the other
//! never is, so no two replicas of a group are ever damaged at once. While
//! the damageable one is down (between a scheduled crash and its restart)
//! its disk may suffer one [`Damage`]: a flipped bit anywhere in its log,
//! snapshot, order archive, view record or disk identity; a torn or lost
//! tail of its log; a missing file; an emptied folder. The schedule also
//! draws *group outages*: both replicas of a group crash, the damageable
//! one is damaged, and the two come back one after the other in either
//! order, so a damaged replica often returns first, alone.
//!
//! # Never beyond the model
//!
//! The model holds only while another replica holds an intact copy of
//! every committed entry. A member of the last confirmed view does (every
//! committed entry is durable on each of its members), so the damage is
//! applied, at the replica's next boot, only if another member of its group
//! belongs to the view record's last confirmed view (or no view was ever
//! confirmed, when nothing was committed). The record is the front end's
//! durable one, published by [`PublishedRecords`] as it is saved.
//! Otherwise the damage is skipped, and the trace says so.
//!
//! # Determinism
//!
//! Where a flip lands, and each boot's disk identity, come from the seed;
//! the damage is applied inside the host, at boot, by the same code path
//! every run.

use crate::simfs::SimFs;
use parking_lot::Mutex;
use pygmy_core::unstable::files::{Fs, FsFile};
use pygmy_core::unstable::frontend::RecordStore;
use pygmy_core::unstable::types::{Group, NodeId};
use pygmy_core::unstable::view::GroupRecord;
use pygmy_core::Result;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A replica's data directory in the simulation.
pub const DATA: &str = "/data";

/// The files a damage may hit.
const FILES: [&str; 5] = ["log", "snapshot", "orders", "view", "disk-id"];

/// Every name a store may hold (what an emptied folder loses).
const ALL_FILES: [&str; 10] = [
    "log",
    "log.prev",
    "log.next",
    "log.tmp",
    "snapshot",
    "snapshot.tmp",
    "view",
    "view.tmp",
    "orders",
    "disk-id",
];

/// One kind of damage to a crashed replica's disk.
#[derive(Clone, Debug, PartialEq)]
pub enum Damage {
    /// One bit flipped at this fraction of the file's length.
    FlipBit { file: &'static str, at: f64 },
    /// The log loses this fraction of its bytes at its end (a torn last
    /// record, and whole synced records lost with it).
    LoseTail { fraction: f64 },
    /// The file is gone.
    LoseFile { file: &'static str },
    /// Every file is gone (a replaced disk).
    Empty,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::FlipBit { file, at } => write!(f, "bit flip in {file} at {:.0}%", at * 100.0),
            Damage::LoseTail { fraction } => {
                write!(f, "log loses its last {:.0}%", fraction * 100.0)
            }
            Damage::LoseFile { file } => write!(f, "{file} lost"),
            Damage::Empty => write!(f, "folder emptied"),
        }
    }
}

impl Damage {
    /// One damage, drawn.
    pub fn draw(rng: &mut SmallRng) -> Damage {
        match rng.gen_range(0..10) {
            0..=4 => Damage::FlipBit {
                file: FILES[rng.gen_range(0..FILES.len())],
                at: rng.gen_range(0.0..1.0),
            },
            5..=6 => Damage::LoseTail {
                fraction: rng.gen_range(0.01..0.5),
            },
            7..=8 => Damage::LoseFile {
                file: FILES[rng.gen_range(0..FILES.len())],
            },
            _ => Damage::Empty,
        }
    }

    /// Applies the damage to the current host's disk, durably. Returns
    /// what it did (for the trace), or why nothing was done.
    fn apply(&self, fs: &SimFs) -> std::io::Result<String> {
        let dir = Path::new(DATA);
        match self {
            Damage::FlipBit { file, at } => {
                let path = dir.join(file);
                let Some(mut bytes) = fs.read(&path)? else {
                    return Ok(format!("{self}: no {file}"));
                };
                if bytes.is_empty() {
                    return Ok(format!("{self}: {file} is empty"));
                }
                let i = ((bytes.len() as f64 * at) as usize).min(bytes.len() - 1);
                bytes[i] ^= 1 << (i % 8);
                fs.write_synced(&path, &bytes)?;
                Ok(format!("{self} (byte {i} of {})", bytes.len()))
            }
            Damage::LoseTail { fraction } => {
                let path = dir.join("log");
                let Some(bytes) = fs.read(&path)? else {
                    return Ok(format!("{self}: no log"));
                };
                let keep = (bytes.len() as f64 * (1.0 - fraction)) as u64;
                let mut file = fs.open_append(&path)?;
                file.set_len(keep)?;
                file.sync()?;
                Ok(format!("{self} ({} of {} bytes kept)", keep, bytes.len()))
            }
            Damage::LoseFile { file } => {
                let path = dir.join(file);
                if fs.read(&path)?.is_none() {
                    return Ok(format!("{self}: no {file}"));
                }
                fs.remove(&path)?;
                fs.sync_dir(dir)?;
                Ok(self.to_string())
            }
            Damage::Empty => {
                for name in ALL_FILES {
                    let path = dir.join(name);
                    if fs.read(&path)?.is_some() {
                        fs.remove(&path)?;
                    }
                }
                fs.sync_dir(dir)?;
                Ok(self.to_string())
            }
        }
    }
}

/// Adds storage faults to a drawn schedule (see the module docs): damage
/// after some crashes of each group's damageable replica, and group
/// outages. A stream of its own, so the rest of the schedule is the one
/// the seed drew without them.
pub fn add_to(
    schedule: &mut crate::faults::Schedule,
    seed: u64,
    members: &BTreeMap<Group, Vec<NodeId>>,
    window: (Duration, Duration),
) {
    use crate::faults::Fault;
    let mut rng = SmallRng::seed_from_u64(seed ^ 0xd15c_da3a);
    let damageable: BTreeMap<Group, String> = members
        .iter()
        .filter(|(_, m)| m.len() > 1)
        .map(|(g, m)| (*g, m[rng.gen_range(0..m.len())].0.clone()))
        .collect();
    let mut added = Vec::new();
    for (at, fault) in &schedule.events {
        if let Fault::Crash(n) = fault {
            if damageable.values().any(|d| d == n) && rng.gen_bool(0.5) {
                added.push((*at, Fault::Damage(n.clone(), Damage::draw(&mut rng))));
            }
        }
    }
    // A group outage in about half the runs.
    if rng.gen_bool(0.5) && !damageable.is_empty() {
        let groups: Vec<_> = damageable.keys().copied().collect();
        let group = groups[rng.gen_range(0..groups.len())];
        let damaged = damageable[&group].clone();
        let (start, end) = (window.0.as_millis() as u64, window.1.as_millis() as u64);
        let at = rng.gen_range(start..end.saturating_sub(600).max(start + 1));
        let ms = Duration::from_millis;
        for other in &members[&group] {
            added.push((ms(at), Fault::Crash(other.0.clone())));
        }
        added.push((
            ms(at + 1),
            Fault::Damage(damaged.clone(), Damage::draw(&mut rng)),
        ));
        // Back one after the other, the damaged one first more often.
        let first = ms((at + rng.gen_range(100..800)).min(end));
        let second = ms((at + rng.gen_range(900..3000)).min(end));
        for other in &members[&group] {
            let back = if (other.0 == damaged) == rng.gen_bool(0.7) {
                first
            } else {
                second
            };
            added.push((back, Fault::Restart(other.0.clone())));
        }
    }
    schedule.events.extend(added);
    // Stable: simultaneous events keep their order (a crash before the
    // damage drawn for it).
    schedule.events.sort_by_key(|(at, _)| *at);
}

/// What storage faults a run has queued, applied, and the disks it made:
/// shared by the run's driver and its hosts.
#[derive(Clone, Debug, Default)]
pub struct StorageFaults {
    inner: Arc<Mutex<Shared>>,
}

#[derive(Debug, Default)]
struct Shared {
    seed: u64,
    /// Damage waiting for a crashed replica's next boot.
    pending: BTreeMap<String, Vec<Damage>>,
    /// Boots per replica (each boot's disk identity differs).
    boots: BTreeMap<String, u64>,
    /// The front end's view record as last saved.
    records: Vec<GroupRecord>,
    /// What was applied or skipped, for the trace.
    log: Vec<String>,
}

impl StorageFaults {
    pub fn new(seed: u64) -> Self {
        let faults = StorageFaults::default();
        faults.inner.lock().seed = seed;
        faults
    }

    /// Queues `damage` for `node`'s next boot.
    pub fn queue(&self, node: &str, damage: Damage) {
        let mut shared = self.inner.lock();
        shared
            .pending
            .entry(node.to_string())
            .or_default()
            .push(damage);
    }

    /// What was applied or skipped so far (drained).
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut self.inner.lock().log)
    }

    /// The identity `node`'s disk gets if it is new at this boot: drawn
    /// from the seed, different at every boot.
    pub fn disk_id(&self, node: &NodeId, trust_damage: bool) -> u64 {
        let mut shared = self.inner.lock();
        let seed = shared.seed;
        let boot = shared.boots.entry(node.0.clone()).or_default();
        *boot += 1;
        // The deliberately broken store keeps one identity per node, so a
        // replaced disk looks like the old one.
        let boot = if trust_damage { 0 } else { *boot };
        let mut rng = SmallRng::seed_from_u64(seed ^ boot.wrapping_mul(0x9e37_79b9));
        let salt: u64 = node
            .0
            .bytes()
            .fold(0, |h, b| h.wrapping_mul(131).wrapping_add(b.into()));
        rng.gen::<u64>() ^ salt
    }

    /// Applies the damage queued for `node` to the current host's disk,
    /// unless that would go beyond the model (see the module docs). Called
    /// at the start of the replica's boot, before its store is opened.
    pub fn apply_pending(&self, node: &NodeId, group: Group) {
        let (pending, within) = {
            let mut shared = self.inner.lock();
            let pending = shared.pending.remove(&node.0).unwrap_or_default();
            let within = shared
                .records
                .iter()
                .find(|r| r.current.group == group)
                .and_then(|r| r.confirmed.as_ref())
                .is_none_or(|c| c.members().any(|m| m != node));
            (pending, within)
        };
        for damage in pending {
            let line = if within {
                match damage.apply(&SimFs) {
                    Ok(done) => format!("storage fault on {node}: {done}"),
                    Err(e) => format!("storage fault on {node}: {damage} failed: {e}"),
                }
            } else {
                format!(
                    "storage fault on {node} skipped ({damage}): no other member of the last confirmed view holds its data"
                )
            };
            self.inner.lock().log.push(line);
        }
    }

    /// The view records as they are now (the front end's, or the
    /// coordinator's with several front ends).
    pub fn publish(&self, records: &[GroupRecord]) {
        self.inner.lock().records = records.to_vec();
    }
}

/// The front end's record store, publishing each saved record to the run
/// (see the module docs).
pub struct PublishedRecords<R> {
    pub store: R,
    pub faults: StorageFaults,
}

impl<R: RecordStore> RecordStore for PublishedRecords<R> {
    fn load(&self) -> Result<Vec<GroupRecord>> {
        let records = self.store.load()?;
        self.faults.publish(&records);
        Ok(records)
    }

    fn save(&self, records: &[GroupRecord]) -> Result<()> {
        self.store.save(records)?;
        self.faults.publish(records);
        Ok(())
    }
}
