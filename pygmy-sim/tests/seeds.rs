//! The simulation over many seeds: every invariant holds under every drawn
//! fault schedule, and a seed replays identically.
//!
//! More seeds: `cargo run --release -p pygmy-sim -- --seeds 0..10000`.

use pygmy_sim::run::{run_many, run_seed, Jobs, SimOptions, Summary};
use std::collections::BTreeMap;

/// Seeds run by `cargo test` (issue: at least 200). A different range from
/// the one we debugged with, so the suite is not tuned to its own seeds.
const SEEDS: std::ops::Range<u64> = 1_000..1_200;

#[test]
fn every_invariant_holds_over_two_hundred_seeds() {
    all_pass(SEEDS, &workers(2), &SimOptions::default());
}

/// Runs `seeds` and fails with every failed seed's description unless all
/// of them passed.
fn all_pass(seeds: std::ops::Range<u64>, how: &Jobs, opts: &SimOptions) {
    let failures = parking_lot::Mutex::new(Vec::new());
    let results = run_many(seeds.clone(), how, opts, |summary| {
        if !summary.passed {
            failures.lock().push(summary.description.clone());
        }
    });
    assert_eq!(results.len(), seeds.count());
    let failures = failures.into_inner();
    assert!(
        failures.is_empty(),
        "{} of {} seeds failed:\n{}",
        failures.len(),
        results.len(),
        failures.join("\n")
    );
}

/// Seeds that found real bugs, kept so the bugs stay fixed.
///
/// - 38: catalog-1 and catalog-2 crash together while the links are slow,
///   and catalog-2's log loses its tail; catalog-1's `ViewReady` was judged
///   by the front end on its last heartbeat of catalog-1, from before the
///   restart (certain of its log), not on catalog-1's own uncertainty: two
///   copies of item 1 sold that never left the shelf (stock conservation
///   and linearizability failed). Fixed by `ViewReady` carrying the
///   primary's own `uncertain`.
/// - 4054: a bug of the harness, not of Pygmy: the link between two
///   replicas slowed as `catalog-2 <-> catalog-1` was tuned back to the
///   global latency as `catalog-1 <-> catalog-2` while still slow, and
///   turmoil panicked drawing a latency from a range whose minimum passed
///   its maximum. Fixed by keying tuned links by the unordered pair.
const REGRESSIONS: [u64; 2] = [38, 4054];

#[test]
fn seeds_that_found_bugs_pass() {
    for seed in REGRESSIONS {
        let report = run_seed(seed, &SimOptions::default());
        assert!(report.passed(), "{}", pygmy_sim::run::describe(&report));
    }
}

#[test]
fn a_seed_replays_with_the_same_trace() {
    let opts = SimOptions::default();
    for seed in [7, 1_234] {
        let first = run_seed(seed, &opts);
        let second = run_seed(seed, &opts);
        assert!(first.operations > 0, "seed {seed} ran no operations");
        assert_eq!(
            first.schedule, second.schedule,
            "seed {seed}: schedules differ"
        );
        assert_eq!(
            first.trace, second.trace,
            "seed {seed}: the same seed gave two different traces"
        );
        assert_eq!(first.trace_digest(), second.trace_digest());
    }
}

#[test]
fn different_seeds_give_different_runs() {
    // Guards the replay test against a trace that ignores the seed.
    let opts = SimOptions::default();
    let a = run_seed(3, &opts);
    let b = run_seed(4, &opts);
    assert_ne!(a.trace_digest(), b.trace_digest());
}

/// Worker processes of the `pygmy-sim` binary, `jobs` at a time.
fn workers(jobs: usize) -> Jobs {
    Jobs::Processes {
        exe: env!("CARGO_BIN_EXE_pygmy-sim").into(),
        jobs,
        args: Vec::new(),
    }
}

fn digests(seeds: std::ops::Range<u64>, jobs: &Jobs) -> BTreeMap<u64, u64> {
    let found = parking_lot::Mutex::new(BTreeMap::new());
    run_many(seeds, jobs, &SimOptions::default(), |s: &Summary| {
        found.lock().insert(s.seed, s.trace_digest);
    });
    found.into_inner()
}

#[test]
fn a_seed_gives_the_same_trace_alone_in_parallel_and_next_to_others() {
    // Serially in this process, after other seeds ran here (so tokio's
    // task counter is wherever they left it); in parallel worker
    // processes, two at a time, each seed alone in its process; and on two
    // threads of this process at once. Seeds with crashes, where task ids
    // used to decide the order a crashed host's sockets closed in.
    let seeds = 30..40;
    let _warm_up = run_seed(3, &SimOptions::default());
    let serial = digests(seeds.clone(), &Jobs::Serial);
    assert_eq!(serial.len(), seeds.clone().count());
    let parallel = digests(seeds.clone(), &workers(2));
    assert_eq!(serial, parallel, "serial and parallel traces differ");
    let threads: Vec<BTreeMap<u64, u64>> = std::thread::scope(|s| {
        let a = s.spawn(|| digests(seeds.clone(), &Jobs::Serial));
        let b = s.spawn(|| digests(seeds.clone(), &Jobs::Serial));
        [a, b]
            .into_iter()
            .map(|t| t.join().expect("no panic"))
            .collect()
    });
    for other in threads {
        assert_eq!(serial, other, "traces differ when two threads run seeds");
    }
}

/// Seeds of the three-front-end runs (a range of their own).
const MULTI_SEEDS: std::ops::Range<u64> = 3_000..3_040;

/// Three front ends share the views through the model of etcd; the fault
/// schedule crashes and cuts off front ends, the coordinator and the links
/// between them; clients spread over the front ends and move to another
/// when theirs fails. Every invariant holds, the view history's included
/// (one view per epoch, records move forward, views change only by the
/// leader).
#[test]
fn every_invariant_holds_with_three_front_ends() {
    let mut opts = SimOptions::default();
    opts.cluster.frontends = 3;
    let how = Jobs::Processes {
        exe: env!("CARGO_BIN_EXE_pygmy-sim").into(),
        jobs: 2,
        args: vec!["--frontends".into(), "3".into()],
    };
    all_pass(MULTI_SEEDS, &how, &opts);
}
