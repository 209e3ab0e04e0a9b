//! STAND-IN (lead) until helper H3 lands the real module.
use crate::message::ReplicaStatus;
use crate::types::{Group, NodeId};
use crate::view::{GroupRecord, View};
use std::collections::BTreeMap;
pub const JOIN_SLACK: u64 = 64;
pub fn next_view(
    record: Option<&GroupRecord>,
    group: Group,
    members: &[NodeId],
    status: &BTreeMap<NodeId, Option<ReplicaStatus>>,
) -> Option<View> {
    let alive = |n: &NodeId| status.get(n).and_then(|s| s.as_ref());
    let Some(record) = record else {
        if members
            .iter()
            .any(|m| alive(m).is_some_and(|s| s.epoch > 0))
        {
            return None;
        }
        if !members.iter().all(|m| alive(m).is_some()) {
            return None;
        }
        return Some(View {
            group,
            epoch: 1,
            primary: members[0].clone(),
            backups: members[1..].to_vec(),
        });
    };
    let cur = &record.current;
    let base = record.confirmed.as_ref().unwrap_or(cur);
    let candidates: Vec<&NodeId> = members
        .iter()
        .filter(|m| base.contains(m) && alive(m).is_some())
        .collect();
    let p = alive(&cur.primary);
    let replace = match p {
        None => true,
        Some(s) => {
            s.epoch > cur.epoch || (record.is_confirmed() && s.epoch == cur.epoch && !s.serving)
        }
    };
    if replace {
        let best = candidates.iter().max_by(|a, b| {
            let ea = alive(a).map(|s| s.end);
            let eb = alive(b).map(|s| s.end);
            ea.cmp(&eb).then_with(|| {
                let ia = members.iter().position(|m| m == **a);
                let ib = members.iter().position(|m| m == **b);
                ib.cmp(&ia)
            })
        })?;
        let primary = (*best).clone();
        let backups = candidates
            .iter()
            .filter(|c| ***c != primary)
            .map(|c| (*c).clone())
            .collect();
        return Some(View {
            group,
            epoch: cur.epoch + 1,
            primary,
            backups,
        });
    }
    if cur.backups.iter().any(|b| alive(b).is_none()) {
        let backups = cur
            .backups
            .iter()
            .filter(|b| alive(b).is_some())
            .cloned()
            .collect();
        return Some(View {
            group,
            epoch: cur.epoch + 1,
            primary: cur.primary.clone(),
            backups,
        });
    }
    if record.is_confirmed() {
        let commit = p.map_or(0, |s| s.commit);
        let joiners: Vec<&NodeId> = members
            .iter()
            .filter(|m| {
                !cur.contains(m)
                    && alive(m).is_some_and(|s| s.ready && s.end.lsn + JOIN_SLACK >= commit)
            })
            .collect();
        if !joiners.is_empty() {
            let backups = members
                .iter()
                .filter(|m| cur.backups.contains(m) || joiners.contains(m))
                .cloned()
                .collect();
            return Some(View {
                group,
                epoch: cur.epoch + 1,
                primary: cur.primary.clone(),
                backups,
            });
        }
    }
    None
}
