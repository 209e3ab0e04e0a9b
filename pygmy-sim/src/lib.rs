//! # Pygmy simulation
//!
//! The whole Pygmy cluster — front end, two catalog and two order replicas,
//! several clients — under turmoil, running pygmy-net's HTTP code over
//! turmoil's network and the storage format over turmoil's simulated disk
//! (where a crash loses unsynced writes). A fault schedule drawn from the
//! seed crashes and restarts nodes, partitions links, drops messages and
//! delays them; then everything heals. Clients record a [history](pygmy_core::invariants::history) of what
//! they asked and what they were told, and pygmy-core's invariant library
//! ([`pygmy_core::invariants`]) decides whether the invariants of
//! `docs/DESIGN.md` held:
//!
//! 1. no negative stock, and stock is conserved;
//! 2. every acknowledged order is on every order replica, once;
//! 3. the replicas of each group converge to identical state;
//! 4. buys are linearizable per item, and no read shows a lost write; the
//!    whole history per item, reads included, is linearizable (every read
//!    reflects every write acknowledged, and every state shown, before it
//!    was sent), and order reads find every acknowledged order;
//! 5. after healing, every request completes within a bound.
//!
//! A failing run prints its seed and schedule; the same seed replays it.
//!
//! # Layout
//!
//! - `net`: pygmy-net's `Accept` and a client connector over turmoil TCP.
//! - `simfs`: the storage file system on turmoil's simulated disk.
//! - `cluster`: host factories for the front end and the replicas.
//! - `workload`: clients speaking the public HTTP API, recording history.
//! - `faults`: fault schedules drawn from the seed.
//! - `storage`: storage faults (damage to a crashed replica's disk, within
//!   the storage fault model) and the run's view of the view record.
//! - `run`: one run end to end, and many seeds in parallel; it gathers the
//!   final states and hands them, with the history, to the checkers of
//!   [`pygmy_core::invariants`] (the history and its recorder live there
//!   too, so the checkers can be used without turmoil).

pub mod cluster;
pub mod faults;
pub mod net;
pub mod run;
pub mod simfs;
pub mod storage;
pub mod workload;

// Replaying a seed needs turmoil to seed tokio's runtime RNG, which it can
// only do under `--cfg tokio_unstable` (set in `.cargo/config.toml`; a
// `RUSTFLAGS` variable replaces that setting, so it must carry the flag too).
#[cfg(not(tokio_unstable))]
compile_error!(
    "pygmy-sim needs `--cfg tokio_unstable` for deterministic replay: keep .cargo/config.toml, or add it to RUSTFLAGS"
);
