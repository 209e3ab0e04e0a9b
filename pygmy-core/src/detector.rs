//! STAND-IN (lead) until helper H3 lands the real module.
use crate::types::NodeId;
use std::collections::BTreeMap;
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    Up(NodeId),
    Down(NodeId),
}
pub struct Detector {
    k: u32,
    nodes: BTreeMap<NodeId, (u32, bool)>,
}
impl Detector {
    pub fn new(nodes: impl IntoIterator<Item = NodeId>, misses_for_down: u32) -> Self {
        Detector {
            k: misses_for_down.max(1),
            nodes: nodes.into_iter().map(|n| (n, (0, false))).collect(),
        }
    }
    pub fn record(&mut self, node: &NodeId, ok: bool) -> Option<Transition> {
        let k = self.k;
        let e = self.nodes.entry(node.clone()).or_insert((0, false));
        if ok {
            e.0 = 0;
            if !e.1 {
                e.1 = true;
                return Some(Transition::Up(node.clone()));
            }
            return None;
        }
        e.0 += 1;
        if e.1 && e.0 >= k {
            e.1 = false;
            return Some(Transition::Down(node.clone()));
        }
        None
    }
    pub fn is_up(&self, node: &NodeId) -> bool {
        self.nodes.get(node).is_some_and(|e| e.1)
    }
    pub fn up_nodes(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, e)| e.1)
            .map(|(n, _)| n.clone())
            .collect()
    }
}
