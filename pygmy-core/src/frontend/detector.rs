//! The heartbeat failure detector: which replicas are live.
//!
//! The front end probes every replica once per heartbeat interval (1 s by
//! default, as the original's) and reports each probe's result here with
//! [`Detector::record`]. Reads are routed, and views chosen, only among the
//! nodes this detector holds up.
//!
//! # Rules
//!
//! - A node starts **down** (unknown): nothing is sent to it before it has
//!   answered a probe once.
//! - One answered probe makes a node **up**, and resets its count of missed
//!   probes.
//! - `misses_for_down` (k) probes missed *in a row* make an up node
//!   **down**. One slow answer does not evict a replica; k in a row does.
//!   k is at least 1.
//! - `record` returns the transition a probe caused, if any, so each
//!   up/down change is reported (and logged by the caller) exactly once.
//!
//! # Guarantees
//!
//! - `is_up(n)` is true exactly when `n` answered some probe and has missed
//!   fewer than k probes since its last answer.
//! - Transitions alternate per node (`Up`, `Down`, `Up`, …) starting with
//!   `Up`, and one is returned exactly when `is_up` changes.
//! - Deterministic; the detector keeps no clock: "k missed probes" means k
//!   heartbeat rounds, so detection takes between k−1 and k intervals plus
//!   one probe timeout.
//!
//! # Caveats
//!
//! - A detector can be wrong: a slow or partitioned replica is declared
//!   down while it still runs. Pygmy's safety never depends on it (epochs
//!   fence a deposed primary); only availability and the speed of failover
//!   do.
//! - A node that restarts between two probes is never seen down. The view
//!   service recognises a restarted primary from its status instead.

use crate::types::NodeId;
use std::collections::BTreeMap;

/// A change of a node's liveness, caused by one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    Up(NodeId),
    Down(NodeId),
}

/// What the detector knows of one node.
#[derive(Clone, Copy, Debug, Default)]
struct Liveness {
    up: bool,
    /// Probes missed since the last answered one.
    misses: u32,
}

/// Heartbeat failure detection over a fixed set of nodes (see the module docs).
pub struct Detector {
    misses_for_down: u32,
    nodes: BTreeMap<NodeId, Liveness>,
}

impl Detector {
    /// Tracks `nodes`, all down until they answer; `misses_for_down` is
    /// raised to 1 if 0.
    pub fn new(nodes: impl IntoIterator<Item = NodeId>, misses_for_down: u32) -> Self {
        Detector {
            misses_for_down: misses_for_down.max(1),
            nodes: nodes
                .into_iter()
                .map(|n| (n, Liveness::default()))
                .collect(),
        }
    }

    /// The number of probes in a row a node must miss to be down.
    pub fn misses_for_down(&self) -> u32 {
        self.misses_for_down
    }

    /// Records one probe of `node`: `ok` if it answered in time. An unknown
    /// node is tracked from now on. Returns the transition it caused.
    pub fn record(&mut self, node: &NodeId, ok: bool) -> Option<Transition> {
        let k = self.misses_for_down;
        let l = match self.nodes.get_mut(node) {
            Some(l) => l,
            None => self.nodes.entry(node.clone()).or_default(),
        };
        if ok {
            l.misses = 0;
            if l.up {
                return None;
            }
            l.up = true;
            return Some(Transition::Up(node.clone()));
        }
        l.misses = l.misses.saturating_add(1);
        if l.up && l.misses >= k {
            l.up = false;
            return Some(Transition::Down(node.clone()));
        }
        None
    }

    /// True when `node` is live (see the module docs); false if unknown.
    pub fn is_up(&self, node: &NodeId) -> bool {
        self.nodes.get(node).is_some_and(|l| l.up)
    }

    /// The live nodes, in name order.
    pub fn up_nodes(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, l)| l.up)
            .map(|(n, _)| n.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(name: &str) -> NodeId {
        NodeId::new(name)
    }

    #[test]
    fn a_node_is_down_until_it_answers_then_down_after_k_misses_in_a_row() {
        let mut d = Detector::new([n("a"), n("b")], 2);
        assert!(!d.is_up(&n("a")) && d.up_nodes().is_empty());
        assert_eq!(d.record(&n("a"), false), None, "never up: no transition");
        assert_eq!(d.record(&n("a"), true), Some(Transition::Up(n("a"))));
        assert_eq!(d.record(&n("a"), true), None);
        assert_eq!(d.record(&n("a"), false), None, "one miss is tolerated");
        assert!(d.is_up(&n("a")));
        assert_eq!(d.record(&n("a"), true), None, "an answer resets the count");
        assert_eq!(d.record(&n("a"), false), None);
        assert_eq!(d.record(&n("a"), false), Some(Transition::Down(n("a"))));
        assert_eq!(d.record(&n("a"), false), None, "reported once");
        assert!(!d.is_up(&n("a")));
        assert_eq!(d.record(&n("a"), true), Some(Transition::Up(n("a"))));
        assert_eq!(d.up_nodes(), vec![n("a")]);
    }

    #[test]
    fn zero_misses_for_down_means_one() {
        let mut d = Detector::new([n("a")], 0);
        assert_eq!(d.misses_for_down(), 1);
        d.record(&n("a"), true);
        assert_eq!(d.record(&n("a"), false), Some(Transition::Down(n("a"))));
    }

    #[test]
    fn an_unknown_node_is_down_and_tracked_once_probed() {
        let mut d = Detector::new([], 3);
        assert!(!d.is_up(&n("x")));
        assert_eq!(d.record(&n("x"), true), Some(Transition::Up(n("x"))));
        assert!(d.is_up(&n("x")));
    }

    proptest! {
        /// For any probe results, a node is up exactly when it answered once
        /// and missed fewer than k probes since its last answer, and a
        /// transition is reported exactly when that changes, alternating
        /// Up, Down, Up, ….
        #[test]
        fn liveness_follows_the_last_k_probes(
            k in 0..5u32,
            probes in proptest::collection::vec((0..3usize, any::<bool>()), 1..200),
        ) {
            let names = [n("a"), n("b"), n("c")];
            let mut d = Detector::new(names.clone(), k);
            let k = k.max(1);
            let mut answered = [false; 3];
            let mut misses = [0u32; 3];
            let mut last: [Option<Transition>; 3] = [None, None, None];
            for (i, ok) in probes {
                let before = d.is_up(&names[i]);
                let t = d.record(&names[i], ok);
                if ok {
                    answered[i] = true;
                    misses[i] = 0;
                } else {
                    misses[i] += 1;
                }
                let expected = answered[i] && misses[i] < k;
                prop_assert_eq!(d.is_up(&names[i]), expected);
                match &t {
                    None => prop_assert_eq!(before, expected),
                    Some(Transition::Up(m)) => {
                        prop_assert!(!before && expected && *m == names[i]);
                        prop_assert!(!matches!(last[i], Some(Transition::Up(_))));
                    }
                    Some(Transition::Down(m)) => {
                        prop_assert!(before && !expected && *m == names[i]);
                        prop_assert!(matches!(last[i], Some(Transition::Up(_))));
                    }
                }
                if t.is_some() {
                    last[i] = t;
                }
            }
            let up: Vec<_> = (0..3).filter(|i| answered[*i] && misses[*i] < k)
                .map(|i| names[i].clone()).collect();
            prop_assert_eq!(d.up_nodes(), up);
        }
    }
}
