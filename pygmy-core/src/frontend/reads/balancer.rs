//! The read balancer: which live member of a view serves the next read.
//!
//! The front end hands [`Balancer::pick`] the members of a group's current
//! view that the failure detector holds live, and the members this request
//! already tried and saw fail; the balancer returns one of the rest. It
//! tracks two things per node: when it was last picked, and how many reads
//! are outstanding on it (`start` when a read is sent, `finish` when its
//! answer or error is back).
//!
//! # Policies
//!
//! - [`Policy::RoundRobin`], as in the original: take turns. The node picked
//!   is the allowed candidate picked *least recently* (never-picked nodes
//!   first, ties broken by candidate order). With a fixed candidate list
//!   that is exactly a rotation, and because the turn is kept per node
//!   rather than as one shared counter, reads of one group do not shift
//!   the rotation of the other, and a node coming back or a retry that
//!   skips a node does not make the rotation favour anyone.
//! - [`Policy::LeastOutstanding`]: the allowed candidate with the fewest
//!   reads in flight, ties broken by the round-robin rule. Under light load
//!   (every count 0) it is round robin; under load it steers reads away
//!   from a slow replica, which a plain rotation keeps feeding.
//!
//! # Guarantees
//!
//! - **Only allowed nodes.** `pick` returns a member of `candidates` that is
//!   not in `exclude`, and `None` exactly when there is none. The balancer
//!   knows nothing of liveness itself: the caller passes live members only.
//! - **Fair rotation.** Under round robin, for a fixed candidate list of `n`
//!   distinct nodes and any `m` picks from it (interleaved with any picks
//!   over other, disjoint lists), every node is picked `⌊m/n⌋` or `⌈m/n⌉`
//!   times.
//! - **Least outstanding.** Under that policy the node picked has the
//!   lowest outstanding count among the allowed candidates.
//! - Deterministic: no clock, no randomness; equal inputs give equal picks.
//!
//! # Caveats
//!
//! - Counts are only as good as the caller's `start`/`finish` pairing: a
//!   read that is dropped without `finish` leaves its node looking busy.
//! - State is kept for every node ever picked; nodes come from the cluster
//!   configuration, so that is a handful.

use crate::types::NodeId;
use std::collections::BTreeMap;

/// How `pick` chooses among the allowed candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Policy {
    /// Take turns, as the original did.
    #[default]
    RoundRobin,
    /// The fewest reads in flight; turns break ties.
    LeastOutstanding,
}

/// Per-node bookkeeping.
#[derive(Clone, Copy, Debug, Default)]
struct Load {
    /// The `tick` of the last pick of this node (0: never picked).
    picked: u64,
    /// Reads sent and not yet finished.
    outstanding: usize,
}

/// Chooses the member of a view a read goes to (see the module docs).
pub struct Balancer {
    policy: Policy,
    /// Counts picks; the last pick of a node is its turn marker.
    tick: u64,
    nodes: BTreeMap<NodeId, Load>,
}

impl Balancer {
    pub fn new(policy: Policy) -> Self {
        Balancer {
            policy,
            tick: 0,
            nodes: BTreeMap::new(),
        }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// A member of `candidates` not in `exclude`, chosen by the policy, or
    /// `None` if every candidate is excluded. Counts as that node's turn.
    pub fn pick<'a>(
        &mut self,
        candidates: impl IntoIterator<Item = &'a NodeId>,
        exclude: &[NodeId],
    ) -> Option<NodeId> {
        let load = |n: &NodeId| self.nodes.get(n).copied().unwrap_or_default();
        // `min_by_key` keeps the first of equal keys: candidate order breaks ties.
        let chosen = candidates
            .into_iter()
            .filter(|c| !exclude.contains(c))
            .min_by_key(|c| {
                let l = load(c);
                match self.policy {
                    Policy::RoundRobin => (0, l.picked),
                    Policy::LeastOutstanding => (l.outstanding, l.picked),
                }
            })?
            .clone();
        self.tick += 1;
        let tick = self.tick;
        self.update(&chosen, |l| l.picked = tick);
        Some(chosen)
    }

    /// A read was sent to `node`.
    pub fn start(&mut self, node: &NodeId) {
        self.update(node, |l| l.outstanding += 1);
    }

    /// Changes `node`'s record, made on first use. Looked up before
    /// inserting: the name is cloned once per node, not on every read.
    fn update(&mut self, node: &NodeId, change: impl FnOnce(&mut Load)) {
        match self.nodes.get_mut(node) {
            Some(load) => change(load),
            None => {
                let mut load = Load::default();
                change(&mut load);
                self.nodes.insert(node.clone(), load);
            }
        }
    }

    /// A read sent to `node` is over (answered or failed).
    pub fn finish(&mut self, node: &NodeId) {
        if let Some(l) = self.nodes.get_mut(node) {
            l.outstanding = l.outstanding.saturating_sub(1);
        }
    }

    /// Reads in flight on `node`.
    pub fn outstanding(&self, node: &NodeId) -> usize {
        self.nodes.get(node).map_or(0, |l| l.outstanding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn nodes(names: &[&str]) -> Vec<NodeId> {
        names.iter().map(|n| NodeId::new(*n)).collect()
    }

    #[test]
    fn round_robin_alternates_between_two_replicas() {
        let mut b = Balancer::new(Policy::RoundRobin);
        let c = nodes(&["a", "b"]);
        let picks: Vec<_> = (0..6).map(|_| b.pick(&c, &[]).unwrap().0).collect();
        assert_eq!(picks, ["a", "b", "a", "b", "a", "b"]);
    }

    #[test]
    fn round_robin_of_one_group_is_not_shifted_by_the_other() {
        // With one shared counter, strictly alternating catalog and order
        // reads would send every catalog read to the same replica.
        let mut b = Balancer::new(Policy::RoundRobin);
        let catalog = nodes(&["c1", "c2"]);
        let order = nodes(&["o1", "o2"]);
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(b.pick(&catalog, &[]).unwrap().0);
            b.pick(&order, &[]).unwrap();
        }
        assert_eq!(got, ["c1", "c2", "c1", "c2"]);
    }

    #[test]
    fn a_retry_skips_the_failed_node_and_the_rotation_stays_fair() {
        let mut b = Balancer::new(Policy::RoundRobin);
        let c = nodes(&["a", "b"]);
        let failed = b.pick(&c, &[]).unwrap();
        assert_eq!(failed.0, "a");
        assert_eq!(b.pick(&c, std::slice::from_ref(&failed)).unwrap().0, "b");
        // Both just had a turn; `a` had it longer ago.
        assert_eq!(b.pick(&c, &[]).unwrap().0, "a");
        assert_eq!(b.pick(&c, &c), None, "everything excluded");
        assert_eq!(b.pick(&[], &[]), None, "no live member");
    }

    #[test]
    fn least_outstanding_avoids_the_busy_replica_and_rotates_when_idle() {
        let mut b = Balancer::new(Policy::LeastOutstanding);
        assert_eq!(b.policy(), Policy::LeastOutstanding);
        let c = nodes(&["a", "b", "c"]);
        let first = b.pick(&c, &[]).unwrap();
        b.start(&first);
        b.start(&first);
        assert_eq!(b.outstanding(&first), 2);
        for _ in 0..4 {
            let n = b.pick(&c, &[]).unwrap();
            assert_ne!(n, first, "the busy node is avoided");
        }
        b.finish(&first);
        b.finish(&first);
        b.finish(&first); // an extra finish does not underflow
        assert_eq!(b.outstanding(&first), 0);
        let idle: Vec<_> = (0..3).map(|_| b.pick(&c, &[]).unwrap().0).collect();
        assert_eq!(idle, ["a", "b", "c"], "idle: least recently picked first");
    }

    proptest! {
        /// Round robin is fair: over any run of picks from one list of
        /// replicas, interleaved with picks from another group's list, the
        /// counts of the first list's nodes differ by at most one.
        #[test]
        fn round_robin_is_fair(
            n in 1..5usize,
            steps in proptest::collection::vec(any::<bool>(), 1..200),
        ) {
            let mut b = Balancer::new(Policy::RoundRobin);
            let group: Vec<NodeId> = (0..n).map(|i| NodeId(format!("c{i}"))).collect();
            let other = nodes(&["o1", "o2", "o3"]);
            let mut count: BTreeMap<NodeId, u64> = BTreeMap::new();
            for mine in steps {
                if !mine {
                    b.pick(&other, &[]).unwrap();
                    continue;
                }
                let picked = b.pick(&group, &[]).unwrap();
                *count.entry(picked).or_default() += 1;
                let total: u64 = count.values().sum();
                let (lo, hi) = (total / n as u64, total.div_ceil(n as u64));
                for node in &group {
                    let got = count.get(node).copied().unwrap_or(0);
                    prop_assert!(lo <= got && got <= hi,
                        "{} picked {} times of {} over {} nodes", node, got, total, n);
                }
            }
        }

        /// Whatever came before (retries excluding nodes, the other group's
        /// reads), `pick` returns only allowed nodes, `None` exactly when
        /// all are excluded, and the next `n` picks from a list of `n` give
        /// every node one turn.
        #[test]
        fn picks_only_allowed_nodes_and_every_node_gets_a_turn(
            policy in prop_oneof![Just(Policy::RoundRobin), Just(Policy::LeastOutstanding)],
            history in proptest::collection::vec((0..3u8, 0..5usize), 0..100),
        ) {
            let mut b = Balancer::new(policy);
            let group = nodes(&["a", "b", "c", "d"]);
            let other = nodes(&["o1", "o2"]);
            for (kind, x) in history {
                let (list, exclude) = match kind {
                    0 => (&other, Vec::new()),
                    _ => (&group, group.iter().skip(x % 3).take(x).cloned().collect()),
                };
                let allowed: Vec<_> = list.iter().filter(|n| !exclude.contains(n)).collect();
                match b.pick(list, &exclude) {
                    Some(p) => prop_assert!(allowed.contains(&&p), "{} not allowed", p),
                    None => prop_assert!(allowed.is_empty()),
                }
            }
            let mut turns: Vec<_> = (0..group.len()).map(|_| b.pick(&group, &[]).unwrap()).collect();
            turns.sort();
            prop_assert_eq!(turns, group);
        }

        /// Least outstanding always picks an allowed candidate with the
        /// lowest count of reads in flight.
        #[test]
        fn least_outstanding_picks_a_least_loaded_allowed_node(
            steps in proptest::collection::vec((0..3u8, 0..4usize), 1..200),
        ) {
            let mut b = Balancer::new(Policy::LeastOutstanding);
            let group = nodes(&["a", "b", "c", "d"]);
            let mut model: BTreeMap<NodeId, usize> = BTreeMap::new();
            for (kind, x) in steps {
                match kind {
                    0 => {
                        let exclude = vec![group[x].clone()];
                        let picked = b.pick(&group, &exclude).unwrap();
                        prop_assert!(picked != exclude[0]);
                        let load = |n: &NodeId| model.get(n).copied().unwrap_or(0);
                        let least = group.iter().filter(|g| **g != exclude[0])
                            .map(load).min().unwrap();
                        prop_assert_eq!(load(&picked), least);
                        b.start(&picked);
                        *model.entry(picked).or_default() += 1;
                    }
                    _ => {
                        let node = &group[x];
                        b.finish(node);
                        if let Some(m) = model.get_mut(node) {
                            *m = m.saturating_sub(1);
                        }
                    }
                }
                for g in &group {
                    prop_assert_eq!(b.outstanding(g), model.get(g).copied().unwrap_or(0));
                }
            }
        }
    }
}
