//! Fault schedules, drawn from the seed: crashes and restarts of any node
//! (the front end included), partitions between any pair (both directions or
//! one way), message loss and latency spikes; and, in a scripted schedule,
//! one slow link (a fixed latency on one pair while every other link stays
//! fast), or the confirmation race of several front ends
//! ([`confirmation_race`]). Every fault is undone by its own
//! later event, and all are undone at the heal time.
//!
//! # Slow links in the default schedule
//!
//! Crashes, cuts and a network slow everywhere alike rarely produce the
//! races a stale read needs: an answer from one replica overtaken by a
//! later one from another, an invalidation that arrives after the fill it
//! should have stopped, a backup whose commit point trails the primary's by
//! more than one exchange. Those need one path slower than the others. So
//! [`add_slow_links`] draws, from a stream of its own, slow links into most
//! seeds' schedules: a front end's link to one replica (its answers and
//! invalidations come late, overtaken by the other replica's), or the link
//! between two replicas of a group (a slow replica: the backup learns the
//! commit point late while the primary has answered the write). A run
//! switches them off with `SimOptions::slow_links = false`
//! (`pygmy-sim --no-slow-links`), which gives back the schedule drawn by
//! [`draw`] alone.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::fmt;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    Crash(String),
    Restart(String),
    Partition(String, String),
    /// Messages from the first node to the second are dropped.
    PartitionOneWay(String, String),
    Repair(String, String),
    /// Links start failing at random (turmoil drops the messages in flight).
    Loss(f64),
    /// Message latency up to this many milliseconds.
    Latency(u64),
    /// Loss and latency back to normal.
    Calm,
    /// Every message between the two nodes (both ways) takes this many
    /// milliseconds while the other links stay fast: a congested path.
    /// Answers and invalidations that cross it are overtaken by those that
    /// take another path — the races the cache's fill rules are for.
    SlowLink(String, String, u64),
    /// The slow link is back to the normal latency.
    FastLink(String, String),
    /// The crashed replica's disk is damaged (see `storage.rs`).
    Damage(String, crate::storage::Damage),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Crash(n) => write!(f, "crash {n}"),
            Fault::Restart(n) => write!(f, "restart {n}"),
            Fault::Partition(a, b) => write!(f, "partition {a} <-> {b}"),
            Fault::PartitionOneWay(a, b) => write!(f, "partition {a} -> {b}"),
            Fault::Repair(a, b) => write!(f, "repair {a} <-> {b}"),
            Fault::Loss(p) => write!(f, "message loss {p}"),
            Fault::Latency(ms) => write!(f, "latency up to {ms} ms"),
            Fault::Calm => write!(f, "loss and latency back to normal"),
            Fault::SlowLink(a, b, ms) => write!(f, "link {a} <-> {b} slowed to {ms} ms"),
            Fault::FastLink(a, b) => write!(f, "link {a} <-> {b} back to normal latency"),
            Fault::Damage(n, d) => write!(f, "damage {n}: {d}"),
        }
    }
}

/// Faults at simulated times, in time order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schedule {
    pub events: Vec<(Duration, Fault)>,
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.events.is_empty() {
            return write!(f, "  (no faults)");
        }
        for (i, (at, fault)) in self.events.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  {:>6.3}s {fault}", at.as_secs_f64())?;
        }
        Ok(())
    }
}

/// A slow network from 1.5 s to 9 s: every message delayed up to 300 ms,
/// so read answers, invalidations and buy answers overtake one another —
/// the races the cache's rules are for. The schedule of the stale-read
/// tests (`tests/broken.rs`, `pygmy-sim --slow-network`).
pub fn slow_network() -> Schedule {
    Schedule {
        events: vec![
            (Duration::from_millis(1_500), Fault::Latency(300)),
            (Duration::from_millis(9_000), Fault::Calm),
        ],
    }
}

/// A slow link from 1.5 s to 9 s between the front end and the first
/// catalog replica (the catalog's first primary): 25 ms each way, every
/// other link fast, so reads answered by the far replica come back after
/// later reads answered by the near one: after a write that changed the
/// item, whose invalidation crosses the slow link too, that is the race the
/// cache's "never replace a newer value" rule is for. The
/// schedule of the older-fill test (`tests/broken.rs`, `pygmy-sim
/// --slow-link`).
pub fn slow_link() -> Schedule {
    let (fe, far) = ("frontend".to_string(), "catalog-1".to_string());
    Schedule {
        events: vec![
            (
                Duration::from_millis(1_500),
                Fault::SlowLink(fe.clone(), far.clone(), 25),
            ),
            (Duration::from_millis(9_000), Fault::FastLink(fe, far)),
        ],
    }
}

/// A confirmation stored by a front end that does not lead, while the
/// leader decides from the records it loaded before that store: the race
/// a view store without compare-and-swap needs to undo a confirmation. The
/// schedule of the blind-views test (`tests/broken.rs`, `pygmy-sim
/// --confirmation-race`; the node names assume `--frontends` above 1).
///
/// Why the seeds' own schedules do not show it: the leader reloads the
/// records at the start of each heartbeat round, and new primaries ask
/// the first front end (`frontend`) to confirm their views, which is also
/// the first leader; so a confirmation stored by another front end during
/// a round in which the leader also decides a view is rare. Here:
///
/// 1. From 1 s to 2 s `frontend` is cut off from the coordinator: its
///    leadership lapses and another front end takes it (and keeps it, as
///    it renews every round). Once back, `frontend` does not lead, yet new
///    primaries still ask it first.
/// 2. At 3 s the catalog's first primary (`catalog-1`) crashes, and
///    [`CONFIRMATION_RACE_GAP`] later the order group's (`order-1`). The
///    leader finds each down after the same number of missed heartbeats,
///    one round apart: it stores the catalog's new view in one round, and
///    decides the order group's at the end of the next — a round that
///    lasts a probe timeout (catalog-1 does not answer), during which
///    `catalog-2` learns its view and has `frontend` store its
///    confirmation. An honest leader's store of the order view then fails
///    its compare-and-swap and it decides again from the new records; a
///    blind one stores the catalog record it loaded, undoing the
///    confirmation (`RECORDS_MOVE_FORWARD`).
/// 3. Both come back at 5 s.
pub fn confirmation_race() -> Schedule {
    let fe = "frontend".to_string();
    let coordinator = "coordinator".to_string();
    let (catalog, order) = ("catalog-1".to_string(), "order-1".to_string());
    let crash = Duration::from_millis(3_000);
    Schedule {
        events: vec![
            (
                Duration::from_millis(1_000),
                Fault::Partition(fe.clone(), coordinator.clone()),
            ),
            (Duration::from_millis(2_000), Fault::Repair(fe, coordinator)),
            (crash, Fault::Crash(catalog.clone())),
            (crash + CONFIRMATION_RACE_GAP, Fault::Crash(order.clone())),
            (Duration::from_millis(5_000), Fault::Restart(catalog)),
            (Duration::from_millis(5_000), Fault::Restart(order)),
        ],
    }
}

/// A deposed order primary that a front end with stale views still
/// reaches, and clients that read orders there: the schedule of the
/// untenured-order-reads test (`tests/broken.rs`, `pygmy-sim
/// --deposed-order-primary`; the node names assume `--frontends 3`).
///
/// 1. From 1 s `frontend-3` is cut off from the coordinator: it keeps the
///    views it holds and learns no newer one.
/// 2. From 2 s `order-1`, the order group's first primary, is cut off from
///    `order-2` and from the other two front ends. They find it down and
///    make `order-2` the primary of a new view, which acknowledges buys
///    through them; `frontend-3` still sends order reads to `order-1`,
///    which it tells, in every heartbeat, that it is the primary still.
/// 3. From 4 s every client (the one host [`CLIENTS`](crate::run::CLIENTS)
///    runs them all) is cut off from `frontend` and `frontend-2`,
///    so all of them end up on `frontend-3` (a client moves on when its
///    front end gives no answer) and read the orders acknowledged since
///    2 s there. (Clients move away from `frontend-3` whenever a buy
///    fails there, so without this few order reads reach it.) Without
///    its tenure `order-1` answers them from its old ledger: "no such
///    order"; with it, it declines once `order-2` has stopped fetching
///    for a lease period.
/// 4. Everything is repaired at 8.5 s.
pub fn deposed_order_primary() -> Schedule {
    deposed_primary("order-1", &["order-2", "frontend", "frontend-2"], &[])
}

/// A deposed catalog primary that a front end with stale views still
/// reaches, and clients that read the catalog there: the schedule of the
/// untenured-catalog-reads test (`tests/broken.rs`, `pygmy-sim
/// --deposed-catalog-primary`; the node names assume `--frontends 3`).
/// [`deposed_order_primary`]'s, with `catalog-1` for `order-1`, cut off
/// from every node but `frontend-3` at 2 s (the order replicas too, so
/// reservations go to the new primary only), and `frontend-3` cut off from
/// `catalog-2` too: else `catalog-2` grants it a lease and pushes it
/// invalidations, whose lsns raise its marks above anything `catalog-1`
/// has, and `catalog-1` holds every read until it catches up, which it
/// never does. From 4 s the clients move to `frontend-3`, whose lease
/// `catalog-1` can no longer renew: every read there is a miss sent to
/// `catalog-1`. Without the check that every backup still follows it,
/// `catalog-1` answers them from its old state, older than the buys and
/// admin changes `catalog-2` acknowledged through the other front ends
/// since its takeover ended (about 3.7 s); with it, it declines once
/// `catalog-2` has stopped fetching for a lease period. Few seeds show
/// it: a client gives up on a front end only after its 4 s exchange
/// timeout (twice over from `frontend`, whose next is `frontend-2`), so
/// reads reach `frontend-3` only from about 8 s, and those of items the
/// clients bought there wait for marks `catalog-1` never reaches.
pub fn deposed_catalog_primary() -> Schedule {
    deposed_primary(
        "catalog-1",
        &["catalog-2", "order-1", "order-2", "frontend", "frontend-2"],
        &["catalog-2"],
    )
}

/// `frontend-3` cut off from the coordinator from 1 s, `old` from
/// `others` and `frontend-3` from `stale_also` from 2 s, every client from
/// `frontend` and `frontend-2` from 4 s; all repaired at 8.5 s.
fn deposed_primary(old: &str, others: &[&str], stale_also: &[&str]) -> Schedule {
    let at = Duration::from_millis;
    let (stale, old) = ("frontend-3".to_string(), old.to_string());
    let coordinator = "coordinator".to_string();
    let mut cuts: Vec<(Duration, String, String)> = vec![(at(1_000), stale.clone(), coordinator)];
    for other in others {
        cuts.push((at(2_000), old.clone(), (*other).to_string()));
    }
    for other in stale_also {
        cuts.push((at(2_000), stale.clone(), (*other).to_string()));
    }
    // Every client is a task of the one host `CLIENTS`.
    for fe in ["frontend", "frontend-2"] {
        cuts.push((at(4_000), crate::run::CLIENTS.to_string(), fe.to_string()));
    }
    let mut events: Vec<(Duration, Fault)> = cuts
        .iter()
        .map(|(t, a, b)| (*t, Fault::Partition(a.clone(), b.clone())))
        .collect();
    events.extend(
        cuts.into_iter()
            .map(|(_, a, b)| (at(8_500), Fault::Repair(a, b))),
    );
    Schedule { events }
}

/// The gap between the two crashes of [`confirmation_race`]: one
/// heartbeat round of the simulation's front ends (100 ms), so that,
/// whatever the rounds' phase, exactly one probe falls between the crashes
/// and the two groups are found down in consecutive rounds. (Measured on
/// seeds 3000..3040 with three front ends and `--break blind-views`: gaps
/// of 20 to 100 ms caught all 40, 120 and 140 ms none, as the order group
/// was then found down two rounds later.)
pub const CONFIRMATION_RACE_GAP: Duration = Duration::from_millis(100);

/// How many slow links [`add_slow_links`] draws: none on about one seed in
/// five (so plain schedules stay in every range), else one to three.
const SLOW_LINKS: [usize; 5] = [0, 1, 2, 2, 3];

/// Adds slow links drawn from the seed to `schedule` (see the module docs):
/// each a `SlowLink` of 15 to 50 ms on one pair, from a time in `window`
/// for 2 to 7 s (ending by `window.end`), undone by its `FastLink`. Two
/// slow links never share a pair at once, so each `FastLink` undoes its
/// own. `frontends` are the front ends' names, `groups` each group's
/// replicas, the catalog's first: half the slow links are a front end's
/// link to a catalog replica, one in six a front end's link to any
/// replica, one in three the link between two replicas of a group.
pub fn add_slow_links(
    schedule: &mut Schedule,
    seed: u64,
    frontends: &[String],
    groups: &[Vec<String>],
    window: (Duration, Duration),
) {
    // A stream of its own, so the other faults a seed draws stay as they
    // were without slow links.
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5105_11a1_c0de);
    let replicas: Vec<&String> = groups.iter().flatten().collect();
    if frontends.is_empty() || replicas.is_empty() {
        return;
    }
    let (start, end) = (window.0.as_millis() as u64, window.1.as_millis() as u64);
    // Slow links already in the schedule (a congested run's slow path):
    // none drawn here overlaps them on their pair.
    let mut taken: Vec<(u64, u64, String, String)> = Vec::new();
    for (i, (at, f)) in schedule.events.iter().enumerate() {
        if let Fault::SlowLink(a, b, _) = f {
            let until = schedule.events[i..]
                .iter()
                .find(|(_, g)| *g == Fault::FastLink(a.clone(), b.clone()))
                .map_or(end, |(t, _)| t.as_millis() as u64);
            taken.push((at.as_millis() as u64, until, a.clone(), b.clone()));
        }
    }
    let mut drawn: Vec<(u64, u64, u64, String, String)> = Vec::new();
    for _ in 0..SLOW_LINKS[rng.gen_range(0..SLOW_LINKS.len())] {
        let at = rng.gen_range(start..end);
        let until = (at + rng.gen_range(2_000..7_000)).min(end);
        let ms = rng.gen_range(15..=50);
        let pairs_of_replicas = groups.iter().filter(|g| g.len() > 1).count();
        let roll = rng.gen_range(0..6);
        let (a, b) = if roll < 3 || (roll < 4 && pairs_of_replicas == 0) {
            // A front end's link to a replica of the first group (the
            // catalog: its replicas answer lookups and searches, and its
            // primary sends the cache's invalidations).
            let fe = &frontends[rng.gen_range(0..frontends.len())];
            let group = groups.iter().find(|g| !g.is_empty()).expect("replicas");
            (fe.clone(), group[rng.gen_range(0..group.len())].clone())
        } else if roll < 4 || pairs_of_replicas == 0 {
            let fe = &frontends[rng.gen_range(0..frontends.len())];
            (
                fe.clone(),
                replicas[rng.gen_range(0..replicas.len())].clone(),
            )
        } else {
            // A slow replica: its link to another member of its group.
            let group = groups
                .iter()
                .filter(|g| g.len() > 1)
                .nth(rng.gen_range(0..pairs_of_replicas))
                .expect("counted above");
            let i = rng.gen_range(0..group.len());
            let j = (i + rng.gen_range(1..group.len())) % group.len();
            (group[i].clone(), group[j].clone())
        };
        let overlap = |s: u64, e: u64, x: &String, y: &String| {
            let same = (x == &a && y == &b) || (x == &b && y == &a);
            same && at <= e && s <= until
        };
        let overlaps = drawn.iter().any(|(s, e, _, x, y)| overlap(*s, *e, x, y))
            || taken.iter().any(|(s, e, x, y)| overlap(*s, *e, x, y));
        if overlaps || until <= at {
            continue;
        }
        drawn.push((at, until, ms, a, b));
    }
    for (at, until, ms, a, b) in drawn {
        schedule.events.push((
            Duration::from_millis(at),
            Fault::SlowLink(a.clone(), b.clone(), ms),
        ));
        schedule
            .events
            .push((Duration::from_millis(until), Fault::FastLink(a, b)));
    }
    // Stable sort: the other faults keep their order.
    schedule.events.sort_by_key(|(at, _)| *at);
}

/// Draws a schedule: `count` faults, each starting in `window` and lasting
/// a random while (ending by `window.end`).
pub fn draw(seed: u64, nodes: &[String], window: (Duration, Duration), count: usize) -> Schedule {
    // A stream of its own, so the schedule does not shift when the
    // simulation's own use of randomness changes.
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_fa17);
    let (start, end) = (window.0.as_millis() as u64, window.1.as_millis() as u64);
    let mut events = Vec::new();
    for _ in 0..count {
        let at = rng.gen_range(start..end);
        let until = (at + rng.gen_range(200..3000)).min(end);
        let (at, until) = (Duration::from_millis(at), Duration::from_millis(until));
        let a = nodes[rng.gen_range(0..nodes.len())].clone();
        let mut b = nodes[rng.gen_range(0..nodes.len())].clone();
        if a == b {
            b = nodes[(nodes.iter().position(|n| n == &a).unwrap_or(0) + 1) % nodes.len()].clone();
        }
        match rng.gen_range(0..10) {
            0..=3 => {
                events.push((at, Fault::Crash(a.clone())));
                events.push((until, Fault::Restart(a)));
            }
            4..=5 => {
                events.push((at, Fault::Partition(a.clone(), b.clone())));
                events.push((until, Fault::Repair(a, b)));
            }
            6..=7 => {
                events.push((at, Fault::PartitionOneWay(a.clone(), b.clone())));
                events.push((until, Fault::Repair(a, b)));
            }
            8 => {
                events.push((at, Fault::Loss(rng.gen_range(0.0005..0.005))));
                events.push((until, Fault::Calm));
            }
            _ => {
                events.push((at, Fault::Latency(rng.gen_range(50..400))));
                events.push((until, Fault::Calm));
            }
        }
    }
    // Stable sort: simultaneous events keep the order they were drawn in.
    events.sort_by_key(|(at, _)| *at);
    Schedule { events }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<String> {
        ["frontend", "catalog-1", "catalog-2", "order-1", "order-2"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn the_same_seed_draws_the_same_schedule() {
        let w = (Duration::from_secs(1), Duration::from_secs(10));
        assert_eq!(draw(7, &nodes(), w, 6), draw(7, &nodes(), w, 6));
        assert_ne!(draw(7, &nodes(), w, 6), draw(8, &nodes(), w, 6));
    }

    #[test]
    fn the_slow_link_is_undone_and_only_slows_one_link() {
        let s = slow_link();
        let (_, first) = &s.events[0];
        let Fault::SlowLink(a, b, ms) = first else {
            panic!("the schedule starts with a slow link, not {first}");
        };
        assert!(*ms > 0 && a != b);
        assert_eq!(
            s.events.last().map(|(_, f)| f.clone()),
            Some(Fault::FastLink(a.clone(), b.clone()))
        );
    }

    #[test]
    fn the_confirmation_race_undoes_its_faults_and_crashes_one_round_apart() {
        let s = confirmation_race();
        assert!(s.events.windows(2).all(|p| p[0].0 <= p[1].0));
        let crashes: Vec<(Duration, &String)> = s
            .events
            .iter()
            .filter_map(|(at, f)| match f {
                Fault::Crash(n) => Some((*at, n)),
                _ => None,
            })
            .collect();
        assert_eq!(crashes.len(), 2);
        assert_eq!(crashes[1].0 - crashes[0].0, CONFIRMATION_RACE_GAP);
        for (at, n) in &crashes {
            assert!(
                s.events
                    .iter()
                    .any(|(t, f)| t > at && *f == Fault::Restart(n.to_string())),
                "{n} is restarted"
            );
        }
        // The cut from the coordinator is over before the crashes.
        let repaired = s
            .events
            .iter()
            .find(|(_, f)| matches!(f, Fault::Repair(..)))
            .map(|(t, _)| *t);
        assert!(repaired.is_some_and(|t| t < crashes[0].0));
    }

    #[test]
    fn slow_links_are_drawn_into_most_seeds_and_each_is_undone() {
        let w = (Duration::from_millis(1_500), Duration::from_secs(9));
        let frontends = vec!["frontend".to_string()];
        let groups: Vec<Vec<String>> = vec![
            vec!["catalog-1".into(), "catalog-2".into()],
            vec!["order-1".into(), "order-2".into()],
        ];
        let mut with_slow_links = 0;
        let mut between_replicas = 0;
        for seed in 0..200 {
            let plain = draw(seed, &nodes(), w, 5);
            let mut s = plain.clone();
            add_slow_links(&mut s, seed, &frontends, &groups, w);
            // The other faults are left as they were, in their order.
            let others: Vec<_> = s
                .events
                .iter()
                .filter(|(_, f)| !matches!(f, Fault::SlowLink(..) | Fault::FastLink(..)))
                .cloned()
                .collect();
            assert_eq!(others, plain.events, "seed {seed}");
            assert!(s.events.windows(2).all(|p| p[0].0 <= p[1].0));
            // Each slow link is undone, by its own pair's `FastLink`, before
            // that pair is slowed again.
            let mut slow: Vec<(String, String)> = Vec::new();
            for (at, f) in &s.events {
                match f {
                    Fault::SlowLink(a, b, ms) => {
                        assert!(*at >= w.0 && *at <= w.1 && (15..=50).contains(ms));
                        assert!(!slow.contains(&(a.clone(), b.clone())), "seed {seed}");
                        slow.push((a.clone(), b.clone()));
                        if !a.starts_with("frontend") {
                            between_replicas += 1;
                        }
                    }
                    Fault::FastLink(a, b) => {
                        assert!(*at <= w.1);
                        let i = slow.iter().position(|p| *p == (a.clone(), b.clone()));
                        slow.remove(i.expect("a slow link undone"));
                    }
                    _ => {}
                }
            }
            assert!(slow.is_empty(), "seed {seed}: a slow link left slow");
            if s.events.len() > plain.events.len() {
                with_slow_links += 1;
            }
        }
        // About four seeds in five get slow links; replicas' links too.
        assert!((120..=190).contains(&with_slow_links), "{with_slow_links}");
        assert!(between_replicas > 0);
    }

    #[test]
    fn every_fault_is_undone_inside_the_window() {
        let w = (Duration::from_secs(1), Duration::from_secs(10));
        for seed in 0..100 {
            let s = draw(seed, &nodes(), w, 6);
            assert_eq!(s.events.len(), 12);
            assert!(s.events.iter().all(|(at, _)| *at >= w.0 && *at <= w.1));
            let crashes = s
                .events
                .iter()
                .filter(|(_, f)| matches!(f, Fault::Crash(_)))
                .count();
            let restarts = s
                .events
                .iter()
                .filter(|(_, f)| matches!(f, Fault::Restart(_)))
                .count();
            assert_eq!(crashes, restarts);
        }
    }
}
