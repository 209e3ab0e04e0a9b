//! STAND-IN (lead) until helper H3 lands the real module.
use crate::types::NodeId;
use std::collections::BTreeMap;
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Policy {
    #[default]
    RoundRobin,
    LeastOutstanding,
}
pub struct Balancer {
    policy: Policy,
    next: usize,
    out: BTreeMap<NodeId, usize>,
}
impl Balancer {
    pub fn new(policy: Policy) -> Self {
        Balancer {
            policy,
            next: 0,
            out: BTreeMap::new(),
        }
    }
    pub fn policy(&self) -> Policy {
        self.policy
    }
    pub fn pick(&mut self, candidates: &[NodeId], exclude: &[NodeId]) -> Option<NodeId> {
        let allowed: Vec<&NodeId> = candidates.iter().filter(|c| !exclude.contains(c)).collect();
        if allowed.is_empty() {
            return None;
        }
        self.next = self.next.wrapping_add(1);
        let start = self.next % allowed.len();
        match self.policy {
            Policy::RoundRobin => Some(allowed[start].clone()),
            Policy::LeastOutstanding => {
                let n = allowed.len();
                (0..n)
                    .map(|i| allowed[(start + i) % n])
                    .min_by_key(|c| self.outstanding(c))
                    .cloned()
            }
        }
    }
    pub fn start(&mut self, node: &NodeId) {
        *self.out.entry(node.clone()).or_default() += 1;
    }
    pub fn finish(&mut self, node: &NodeId) {
        if let Some(n) = self.out.get_mut(node) {
            *n = n.saturating_sub(1);
        }
    }
    pub fn outstanding(&self, node: &NodeId) -> usize {
        self.out.get(node).copied().unwrap_or(0)
    }
}
